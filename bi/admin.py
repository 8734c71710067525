"""Creates Superset's admin user, or sets its password, from BI_USER / BI_PASSWORD.

Run by bi/up.sh with the venv's Python (SUPERSET_CONFIG_PATH set). The password comes from the
environment, never from the command line, and is never printed.
"""
import os
import sys

from werkzeug.security import check_password_hash

from superset.app import create_app


def main() -> int:
    username = os.environ.get("BI_USER", "admin")
    password = os.environ["BI_PASSWORD"]
    app = create_app()
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.find_user(username=username)
        if user is None:
            role = sm.find_role("Admin")
            if role is None:
                print("the Admin role is missing: run `superset init` first", file=sys.stderr)
                return 1
            if not sm.add_user(username, "Superset", "Admin", f"{username}@localhost", role, password=password):
                print(f"could not create the user {username}", file=sys.stderr)
                return 1
            print(f"created the Superset user {username} (role Admin)", file=sys.stderr)
        elif not user.password or not check_password_hash(user.password, password):
            sm.reset_password(user.id, password)
            print(f"set the password of the Superset user {username} from BI_PASSWORD", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
