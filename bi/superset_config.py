# Superset configuration for `make bi` (named by SUPERSET_CONFIG_PATH in bi/lib.sh).
# Everything machine-specific comes from the environment that bi/lib.sh exports:
#   BI_HOME             folder for Superset's metadata (SQLite), under $DATA_DIR/bi
#   SUPERSET_SECRET_KEY generated once into $DATA_DIR/bi/secrets.env
import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]

# Superset's own metadata (users, datasets, charts, dashboards): SQLite under the data directory.
SQLALCHEMY_DATABASE_URI = "sqlite:///" + os.path.join(os.environ["BI_HOME"], "superset.db")
# SQLite metadata with a threaded server: wait for a writer rather than failing at once.
SQLALCHEMY_ENGINE_OPTIONS = {"connect_args": {"timeout": 30}}

# Superset's object cache in memory; chart data is never cached (NullCache, the default), so the
# dashboard always shows the warehouse as it is now.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

# Plain HTTP on the loopback interface: no HTTPS redirects or secure-only cookies. Talisman stays on
# for its security headers, with a content security policy that allows this server only: the
# browser then makes no outside requests (Superset's page embeds a usage-tracking pixel and web
# fonts from elsewhere; both are blocked, the system fonts are used).
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
SESSION_COOKIE_SECURE = False

# The Orders dashboard refreshes itself every 5 s (its json_metadata.refresh_frequency); offer
# that interval in the menu too, and re-run the queries (not only re-fetch cached results).
DASHBOARD_AUTO_REFRESH_MODE = "force"
DASHBOARD_AUTO_REFRESH_INTERVALS = [
    [0, "Don't refresh"],
    [5, "5 seconds"],
    [10, "10 seconds"],
    [30, "30 seconds"],
    [60, "1 minute"],
    [300, "5 minutes"],
    [1800, "30 minutes"],
    [3600, "1 hour"],
]
# No "stop refreshing after N hours" limit: a wall display keeps going.
SUPERSET_DASHBOARD_PERIODICAL_REFRESH_LIMIT = 0

# Superset 6.1 samples temporal columns to guess a date format when a dataset is created or
# refreshed, but passes the schema ("public") where the catalog (database) belongs, so every
# refresh logs "database "public" does not exist" tracebacks. Our columns are real timestamptz:
# nothing to guess.
DATASET_AUTO_DETECT_DATETIME_FORMATS = False
