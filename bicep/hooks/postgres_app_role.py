"""Create the app identity's PostgreSQL role once (azd postprovision; run as the Entra administrator).

Usage: postgres_app_role.py <libpq URL of the `postgres` database> <managed identity name>
The password is an Entra access token in PGPASSWORD. The role is a non-owner login role; the
migrations grant it what the app needs, so row-level security applies to every query it makes.
"""

from __future__ import annotations

import sys

import psycopg


def main(url: str, identity_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (identity_name,)).fetchone()
        if exists:
            print(f"PostgreSQL role {identity_name} exists")
            return 0
        # is_admin false, is_mfa false: a plain login role mapped to the managed identity by name.
        conn.execute("SELECT * FROM pgaadauth_create_principal(%s, false, false)", (identity_name,))
        print(f"PostgreSQL role {identity_name} created")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
