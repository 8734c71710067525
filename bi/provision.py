"""Provisions Superset through its REST API: the warehouse database (read-only `analyst` role),
datasets on orders_latest, orders_fact and pipeline_status, the Orders charts and the "Orders" dashboard.

Idempotent: every object is looked up first (database by name, datasets by table, charts by a
fixed UUID, the dashboard by its slug) and updated in place, never created twice.

Run by bi/up.sh with the Superset venv's Python. Environment: BI_URL, BI_USER, BI_PASSWORD,
ANALYST_DATABASE_URL (postgres://analyst:...@host:port/db). Exit codes: 0 done, 3 login refused
(bi/up.sh then resets the admin password and runs this again), 1 anything else.
"""
from __future__ import annotations

import json
import os
import re
import sys
import uuid
from typing import Any

import requests

DATABASE_NAME = "Warehouse (analyst, read-only)"
SCHEMA = "public"
DASHBOARD_SLUG = "orders"
DASHBOARD_TITLE = "Orders"
REFRESH_SECONDS = 5
# Charts get fixed UUIDs (derived from this namespace and their key), so a re-run finds them
# even after someone renamed one in the UI.
UUID_NAMESPACE = uuid.UUID("6f1d3c52-0b7e-4c1e-9a55-8d2f6b1c7a10")
LAST_HOUR = 'DATEADD(DATETIME("now"), -60, minute) : now'
# Today (UTC) and the 29 days before it.
LAST_30_DAYS = 'DATEADD(DATETIME("today"), -29, day) : DATEADD(DATETIME("today"), 1, day)'


class LoginRefused(Exception):
    pass


class ApiError(Exception):
    pass


# ---------------------------------------------------------------- REST client


def rison(value: Any) -> str:
    """Encodes a value as Rison, the format of Superset's `q` query parameter."""
    if value is None:
        return "!n"
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        if re.fullmatch(r"[A-Za-z_./~][A-Za-z0-9_./~-]*", value):
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, (list, tuple)):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    if isinstance(value, dict):
        return "(" + ",".join(f"{k}:{rison(v)}" for k, v in value.items()) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} as rison")


class Superset:
    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Referer"] = self.url + "/"
        r = self.http.post(
            f"{self.url}/api/v1/security/login",
            json={"username": user, "password": password, "provider": "db", "refresh": False},
            timeout=30,
        )
        if r.status_code == 401:
            raise LoginRefused(f"Superset refused the login of {user}")
        self._check(r, "POST", "/api/v1/security/login")
        self.http.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        self.http.headers["X-CSRFToken"] = self.call("GET", "/api/v1/security/csrf_token/")["result"]

    def _check(self, r: requests.Response, method: str, path: str) -> None:
        if r.status_code >= 400:
            raise ApiError(f"{method} {path}: HTTP {r.status_code}: {r.text[:500]}")

    def call(self, method: str, path: str, body: Any = None, q: Any = None) -> Any:
        params = {"q": rison(q)} if q is not None else None
        r = self.http.request(method, self.url + path, json=body, params=params, timeout=60)
        self._check(r, method, path)
        return r.json() if r.content else None

    def find(self, resource: str, filters: list[tuple[str, str, Any]]) -> list[dict]:
        q = {
            "filters": [{"col": c, "opr": o, "value": v} for c, o, v in filters],
            "page": 0,
            "page_size": 100,
        }
        # Oldest first: if duplicates were ever made by hand, the original is the one kept up to date.
        return sorted(self.call("GET", f"/api/v1/{resource}/", q=q)["result"], key=lambda o: o["id"])


def report(kind: str, name: str, obj_id: int, action: str) -> None:
    print(f"{kind} {name!r}: id {obj_id} ({action})", flush=True)


# ---------------------------------------------------------------- database and datasets


def sqlalchemy_uri(pg_url: str) -> str:
    m = re.match(r"^postgres(?:ql)?://(.*)$", pg_url)
    if not m:
        raise SystemExit("ANALYST_DATABASE_URL is not a postgres:// URL")
    return "postgresql+psycopg2://" + m.group(1)


def ensure_database(api: Superset, pg_url: str) -> int:
    body = {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": sqlalchemy_uri(pg_url),
        "expose_in_sqllab": True,
        # Read-only twice: Superset refuses DML/DDL before sending it (allow_dml), and the
        # analyst role has SELECT grants only and default_transaction_read_only=on.
        "allow_dml": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_file_upload": False,
        "allow_run_async": False,
        "extra": json.dumps(
            {
                # UTC sessions: Superset's time filters ("now") and day buckets are in UTC.
                "engine_params": {
                    "connect_args": {"options": "-c TimeZone=UTC", "application_name": "superset"},
                    "pool_pre_ping": True,
                },
                "metadata_params": {},
                "schemas_allowed_for_file_upload": [],
            }
        ),
    }
    found = api.find("database", [("database_name", "eq", DATABASE_NAME)])
    if found:
        db_id = found[0]["id"]
        api.call("PUT", f"/api/v1/database/{db_id}", body)
        report("database", DATABASE_NAME, db_id, "updated")
    else:
        db_id = api.call("POST", "/api/v1/database/", body)["id"]
        report("database", DATABASE_NAME, db_id, "created")
    return db_id


DATASETS = {
    "orders_latest": {
        "main_dttm_col": "created_at",
        "description": "The current version of every order (one row per order_id), kept up to date "
        "by the CDC pipeline. Deleted orders are gone from here; see orders_fact.",
    },
    "orders_fact": {
        "main_dttm_col": "source_ts",
        "description": "Every change of every order (one row per insert/update/delete: op c/u/d, "
        "r = initial snapshot), with its source commit time (source_ts) and warehouse write time "
        "(processed_at).",
    },
    "pipeline_status": {
        "main_dttm_col": "consistent_through",
        "description": "Per source (connector topic prefix): every source transaction committed at or before "
        "consistent_through is in the warehouse whole, in every table; lag_seconds is how far that is behind "
        "now. <table>_as_of(ts) answers for ts up to it.",
    },
}


def ensure_dataset(api: Superset, db_id: int, table: str) -> int:
    found = api.find(
        "dataset",
        [("table_name", "eq", table), ("schema", "eq", SCHEMA), ("database", "rel_o_m", db_id)],
    )
    if found:
        ds_id = found[0]["id"]
        # Pick up columns the processor added since (schema evolution).
        api.call("PUT", f"/api/v1/dataset/{ds_id}/refresh")
        action = "updated"
    else:
        ds_id = api.call("POST", "/api/v1/dataset/", {"database": db_id, "schema": SCHEMA, "table_name": table})["id"]
        action = "created"
    api.call("PUT", f"/api/v1/dataset/{ds_id}", DATASETS[table])
    report("dataset", f"{SCHEMA}.{table}", ds_id, action)
    return ds_id


# ---------------------------------------------------------------- charts


def metric(label: str, sql: str) -> dict:
    return {
        "expressionType": "SQL",
        "sqlExpression": sql,
        "label": label,
        "hasCustomLabel": True,
        "optionName": "metric_" + label,
    }


ORDERS = metric("orders", "COUNT(*)")
REVENUE = metric("revenue", "SUM(amount)")
ORDER_COUNT = metric("order_count", "COUNT(*)")
TOTAL_REVENUE = metric("total_revenue", "SUM(amount)")
CHANGES = metric("changes", "COUNT(*)")
# The "complete up to" tile: public.pipeline_status as it is (a view, one row per source).
STATUS_COLUMNS = ["source", "consistent_through", "lag_seconds", "transactions_pending"]
NEWEST_AGE = metric("newest_change_age_s", "EXTRACT(EPOCH FROM (NOW() - MAX(source_ts)))")


def latency(label: str, pct: float | None) -> dict:
    lag = "EXTRACT(EPOCH FROM (processed_at - source_ts))"
    sql = f"MAX({lag})" if pct is None else f"PERCENTILE_CONT({pct}) WITHIN GROUP (ORDER BY {lag})"
    return metric(label, sql)


def time_filter(column: str, time_range: str) -> dict:
    return {
        "expressionType": "SIMPLE",
        "clause": "WHERE",
        "subject": column,
        "operator": "TEMPORAL_RANGE",
        "comparator": time_range,
    }


def chart_specs(latest: int, fact: int, status: int) -> list[dict]:
    """Each chart: key (for its UUID), name, viz_type, dataset id, form data, and the query
    its saved query context runs (what GET /api/v1/chart/{id}/data returns)."""
    last_hour_fact = time_filter("source_ts", LAST_HOUR)
    last_hour_processed = time_filter("processed_at", LAST_HOUR)
    return [
        {
            "key": "orders-total",
            "name": "Orders",
            "viz": "big_number_total",
            "ds": latest,
            "description": "Current orders (orders_latest).",
            "form": {"metric": ORDERS, "adhoc_filters": [], "y_axis_format": ",d", "header_font_size": 0.4},
            "query": {"metrics": [ORDERS], "columns": []},
        },
        {
            "key": "revenue-total",
            "name": "Revenue",
            "viz": "big_number_total",
            "ds": latest,
            "description": "SUM(amount) over current orders (orders_latest).",
            "form": {"metric": REVENUE, "adhoc_filters": [], "y_axis_format": ",.2f", "header_font_size": 0.4},
            "query": {"metrics": [REVENUE], "columns": []},
        },
        {
            "key": "freshness-newest-change",
            "name": "Seconds since the newest change",
            "viz": "big_number_total",
            "ds": fact,
            "description": "Data freshness: NOW() minus the source commit time of the newest change in orders_fact.",
            "form": {"metric": NEWEST_AGE, "adhoc_filters": [], "y_axis_format": ",.1f", "header_font_size": 0.4},
            "query": {"metrics": [NEWEST_AGE], "columns": []},
        },
        {
            "key": "freshness-latency-p95",
            "name": "Source commit → warehouse commit, p95 last hour (s)",
            "viz": "big_number_total",
            "ds": fact,
            "description": "95th percentile of processed_at - source_ts over the changes written in the last hour.",
            "form": {
                "metric": latency("p95_s", 0.95),
                "adhoc_filters": [last_hour_processed],
                "y_axis_format": ",.3f",
                "header_font_size": 0.4,
            },
            "query": {"metrics": [latency("p95_s", 0.95)], "columns": [], "time_filter": ("processed_at", LAST_HOUR)},
        },
        {
            "key": "complete-up-to",
            "name": "Complete up to (whole source transactions)",
            "viz": "table",
            "ds": status,
            "description": "public.pipeline_status, per source: every source transaction committed at or before "
            "consistent_through is in the warehouse whole; lag_seconds is how far that is behind now. "
            "Ask <table>_as_of(ts) for a ts up to it.",
            "form": {
                "query_mode": "raw",
                "all_columns": STATUS_COLUMNS,
                "order_by_cols": [json.dumps(["source", True])],
                "percent_metrics": [],
                "adhoc_filters": [],
                "row_limit": 100,
                "server_page_length": 10,
                "table_timestamp_format": "%Y-%m-%d %H:%M:%S.%L",
                "show_cell_bars": False,
                "color_pn": False,
                "include_search": False,
                "column_config": {
                    "lag_seconds": {"d3NumberFormat": ",.1f"},
                    "transactions_pending": {"d3NumberFormat": ",d"},
                },
            },
            # Raw rows (no metrics: no GROUP BY), one per source.
            "query": {"metrics": None, "columns": STATUS_COLUMNS, "orderby": [["source", True]]},
        },
        {
            "key": "orders-by-status",
            "name": "Orders and revenue by status",
            "viz": "table",
            "ds": latest,
            "description": "The dashboard query: SELECT status, COUNT(*), SUM(amount) FROM orders_latest GROUP BY status.",
            "form": {
                "query_mode": "aggregate",
                "groupby": ["status"],
                "metrics": [ORDER_COUNT, TOTAL_REVENUE],
                "all_columns": [],
                "percent_metrics": [],
                "adhoc_filters": [],
                "timeseries_limit_metric": TOTAL_REVENUE,
                "order_desc": True,
                "row_limit": 1000,
                "server_page_length": 10,
                "table_timestamp_format": "smart_date",
                "show_cell_bars": True,
                "color_pn": False,
                "include_search": False,
                "column_config": {
                    "order_count": {"d3NumberFormat": ",d"},
                    "total_revenue": {"d3NumberFormat": ",.2f"},
                },
            },
            "query": {
                "metrics": [ORDER_COUNT, TOTAL_REVENUE],
                "columns": ["status"],
                "orderby": [[TOTAL_REVENUE, False]],
            },
        },
        {
            "key": "revenue-per-day",
            "name": "Revenue per day (last 30 days)",
            "viz": "echarts_timeseries_bar",
            "ds": latest,
            "description": "SUM(amount) of current orders by the UTC day they were created, over the last 30 days.",
            "form": {
                "x_axis": "created_at",
                "time_grain_sqla": "P1D",
                "metrics": [REVENUE],
                "groupby": [],
                "adhoc_filters": [time_filter("created_at", LAST_30_DAYS)],
                "row_limit": 10000,
                "orientation": "vertical",
                "x_axis_time_format": "%Y-%m-%d",
                "y_axis_format": ",.2f",
                "show_legend": False,
                "rich_tooltip": True,
                "color_scheme": "supersetColors",
            },
            "query": {
                "metrics": [REVENUE],
                "columns": [axis("created_at", "P1D")],
                "orderby": [[axis_label("created_at"), True]],
                "time_filter": ("created_at", LAST_30_DAYS),
            },
        },
        {
            "key": "changes-per-minute",
            "name": "Changes per minute by operation (last hour)",
            "viz": "echarts_timeseries_bar",
            "ds": fact,
            "description": "Rows added to orders_fact per minute of source commit time, by op: "
            "c insert, u update, d delete, r snapshot.",
            "form": {
                "x_axis": "source_ts",
                "time_grain_sqla": "PT1M",
                "metrics": [CHANGES],
                "groupby": ["op"],
                "adhoc_filters": [last_hour_fact],
                "row_limit": 10000,
                "stack": "Stack",
                "orientation": "vertical",
                "x_axis_time_format": "%H:%M",
                "y_axis_format": ",d",
                "show_legend": True,
                "legendType": "scroll",
                "legendOrientation": "top",
                "rich_tooltip": True,
                "color_scheme": "supersetColors",
            },
            "query": {
                "metrics": [CHANGES],
                "columns": [axis("source_ts", "PT1M"), "op"],
                "orderby": [[axis_label("source_ts"), True]],
                "time_filter": ("source_ts", LAST_HOUR),
            },
        },
        {
            "key": "latency-per-minute",
            "name": "Source commit → warehouse commit per minute (s)",
            "viz": "echarts_timeseries_line",
            "ds": fact,
            "description": "processed_at - source_ts of the changes written in each minute: median, p95 and max.",
            "form": {
                "x_axis": "processed_at",
                "time_grain_sqla": "PT1M",
                "metrics": [latency("p50_s", 0.5), latency("p95_s", 0.95), latency("max_s", None)],
                "groupby": [],
                "adhoc_filters": [last_hour_processed],
                "row_limit": 10000,
                "x_axis_time_format": "%H:%M",
                "y_axis_format": ",.3f",
                "show_legend": True,
                "legendType": "scroll",
                "legendOrientation": "top",
                "rich_tooltip": True,
                "markerEnabled": True,
                "color_scheme": "supersetColors",
            },
            "query": {
                "metrics": [latency("p50_s", 0.5), latency("p95_s", 0.95), latency("max_s", None)],
                "columns": [axis("processed_at", "PT1M")],
                "orderby": [[axis_label("processed_at"), True]],
                "time_filter": ("processed_at", LAST_HOUR),
            },
        },
    ]


def axis(column: str, grain: str) -> dict:
    return {
        "timeGrain": grain,
        "columnType": "BASE_AXIS",
        "sqlExpression": column,
        "label": axis_label(column),
        "expressionType": "SQL",
    }


def axis_label(column: str) -> str:
    return column


def query_context(ds_id: int, form: dict, query: dict) -> dict:
    q: dict[str, Any] = {
        "columns": query.get("columns", []),
        "metrics": query.get("metrics"),
        "orderby": query.get("orderby", []),
        "filters": [],
        "extras": {"having": "", "where": ""},
        "row_limit": form.get("row_limit", 10000),
        "annotation_layers": [],
        "applied_time_extras": {},
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }
    if "time_filter" in query:
        col, time_range = query["time_filter"]
        q["filters"].append({"col": col, "op": "TEMPORAL_RANGE", "val": time_range})
        q["time_range"] = time_range
    return {
        "datasource": {"id": ds_id, "type": "table"},
        "force": False,
        "queries": [q],
        "form_data": form,
        "result_format": "json",
        "result_type": "full",
    }


def ensure_chart(api: Superset, spec: dict, dashboard_id: int) -> int:
    chart_uuid = str(uuid.uuid5(UUID_NAMESPACE, spec["key"]))
    form = {"viz_type": spec["viz"], "datasource": f"{spec['ds']}__table", **spec["form"]}
    body = {
        "slice_name": spec["name"],
        "description": spec["description"],
        "viz_type": spec["viz"],
        "datasource_id": spec["ds"],
        "datasource_type": "table",
        "params": json.dumps(form),
        "query_context": json.dumps(query_context(spec["ds"], form, spec["query"])),
        "query_context_generation": True,
        "dashboards": [dashboard_id],
    }
    found = api.find("chart", [("uuid", "eq", chart_uuid)])
    if found:
        chart_id = found[0]["id"]
        api.call("PUT", f"/api/v1/chart/{chart_id}", body)
        action = "updated"
    else:
        chart_id = api.call("POST", "/api/v1/chart/", {**body, "uuid": chart_uuid})["id"]
        action = "created"
    report("chart", spec["name"], chart_id, action)
    return chart_id


# ---------------------------------------------------------------- dashboard

# Rows of (chart key, width in grid columns of 12, height in grid units of 8 px).
LAYOUT = [
    [("orders-total", 3, 26), ("revenue-total", 3, 26), ("freshness-newest-change", 3, 26), ("freshness-latency-p95", 3, 26)],
    [("complete-up-to", 12, 20)],
    [("orders-by-status", 5, 52), ("revenue-per-day", 7, 52)],
    [("changes-per-minute", 6, 56), ("latency-per-minute", 6, 56)],
]


def positions(chart_ids: dict[str, int], names: dict[str, str]) -> dict:
    pos: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": DASHBOARD_TITLE}},
    }
    for r, row in enumerate(LAYOUT, 1):
        row_id = f"ROW-{r}"
        pos["GRID_ID"]["children"].append(row_id)
        pos[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for key, width, height in row:
            cid = f"CHART-{key}"
            pos[row_id]["children"].append(cid)
            pos[cid] = {
                "type": "CHART",
                "id": cid,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {"width": width, "height": height, "chartId": chart_ids[key], "sliceName": names[key]},
            }
    return pos


def main() -> int:
    url, user, password = os.environ["BI_URL"], os.environ.get("BI_USER", "admin"), os.environ["BI_PASSWORD"]
    try:
        api = Superset(url, user, password)
    except LoginRefused as e:
        print(str(e), file=sys.stderr)
        return 3
    db_id = ensure_database(api, os.environ["ANALYST_DATABASE_URL"])
    latest = ensure_dataset(api, db_id, "orders_latest")
    fact = ensure_dataset(api, db_id, "orders_fact")
    status = ensure_dataset(api, db_id, "pipeline_status")

    found = api.find("dashboard", [("slug", "eq", DASHBOARD_SLUG)])
    if found:
        dash_id, action = found[0]["id"], "updated"
    else:
        dash_id = api.call(
            "POST", "/api/v1/dashboard/", {"dashboard_title": DASHBOARD_TITLE, "slug": DASHBOARD_SLUG, "published": True}
        )["id"]
        action = "created"

    specs = chart_specs(latest, fact, status)
    chart_ids = {s["key"]: ensure_chart(api, s, dash_id) for s in specs}
    names = {s["key"]: s["name"] for s in specs}
    metadata = {
        "refresh_frequency": REFRESH_SECONDS,
        "timed_refresh_immune_slices": [],
        "expanded_slices": {},
        "color_scheme": "supersetColors",
        "label_colors": {},
        "shared_label_colors": [],
        "color_scheme_domain": [],
        "cross_filters_enabled": False,
        "native_filter_configuration": [],
        "positions": positions(chart_ids, names),
    }
    api.call(
        "PUT",
        f"/api/v1/dashboard/{dash_id}",
        {
            "dashboard_title": DASHBOARD_TITLE,
            "slug": DASHBOARD_SLUG,
            "published": True,
            "json_metadata": json.dumps(metadata),
            "position_json": json.dumps(metadata["positions"]),
        },
    )
    report("dashboard", DASHBOARD_TITLE, dash_id, action + f", {len(chart_ids)} charts, refresh every {REFRESH_SECONDS} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ApiError, requests.RequestException) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
