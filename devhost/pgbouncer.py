"""Debian's PgBouncer in transaction mode in front of the embedded PostgreSQL: how production connects.

Azure Database for PostgreSQL Flexible Server's built-in PgBouncer pools in transaction mode, so a
session setting, a prepared statement or a session advisory lock does not outlive a transaction.
``python -m devhost.pgbouncer -- <command>`` runs ``<command>`` (``make test-pgbouncer``: the test
suite) with the app connecting through PgBouncer:

* FOLIO_TEST_APP_URL goes through PgBouncer (``pool_mode = transaction``), with
  DATABASE_SERVER_PREPARE=false, as the app is configured behind Flexible Server's PgBouncer;
* FOLIO_TEST_ADMIN_URL goes to PostgreSQL directly, as migrations do in Azure (they hold a session
  advisory lock, which a transaction pooler cannot keep).

With FOLIO_TEST_ADMIN_URL set, tests that need scratch databases of their own skip (they create
them on the embedded server). PgBouncer and the database end with the command; the server is held
as a test run holds it (devhost.postgres.held).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devhost import postgres
from devhost.stack import LOCAL, ChildProcess

TEST_PG_PORT = int(os.environ.get("FOLIO_TEST_PG_PORT", "54330"))
APP_ROLE = "folio_app"


@dataclass
class PgBouncer(ChildProcess):
    port: int
    directory: Path

    def url(self, user: str, database: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"


def binary() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if not found:
        raise RuntimeError("pgbouncer is not installed; `make test-pgbouncer` installs Debian's package")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config(upstream_port: int, port: int, directory: Path, users: tuple[str, ...]) -> str:
    """pgbouncer.ini: every database of the upstream server, transaction pooling, trust on loopback."""
    return "\n".join(
        [
            "[databases]",
            f"* = host=127.0.0.1 port={upstream_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {directory / 'userlist.txt'}",
            "pool_mode = transaction",
            "max_client_conn = 500",
            "default_pool_size = 40",
            "server_reset_query =",
            "ignore_startup_parameters = extra_float_digits,options",
            f"logfile = {directory / 'pgbouncer.log'}",
            f"pidfile = {directory / 'pgbouncer.pid'}",
            f"admin_users = {users[0]}",
            "",
        ]
    )


def start(upstream: postgres.LocalPostgres, directory: Path, *, port: int | None = None) -> PgBouncer:
    """Start PgBouncer for ``upstream`` on ``port`` (a free one by default); it refuses to run as root,
    so as root it runs as the embedded server's own OS user."""
    port = port or _free_port()
    directory.mkdir(parents=True, exist_ok=True)
    users = (postgres.ADMIN_USER, APP_ROLE)
    (directory / "pgbouncer.ini").write_text(config(upstream.port, port, directory, users))
    (directory / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
    (directory / "pgbouncer.pid").unlink(missing_ok=True)
    uid = gid = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam("pgserver")  # created by devhost.postgres.start when run as root
        for path in (directory, *directory.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        uid, gid = entry.pw_uid, entry.pw_gid
    process = subprocess.Popen(
        [binary(), str(directory / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=uid,
        group=gid,
    )
    bouncer = PgBouncer(process, port, directory)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return bouncer
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                bouncer.stop()
                raise RuntimeError(f"PgBouncer did not start; see {directory / 'pgbouncer.log'}") from None
            time.sleep(0.1)


def run(command: list[str]) -> int:
    """Run ``command`` with FOLIO_TEST_*_URL set as the module docstring says; its exit code."""
    database = f"folio_pgbouncer_{os.getpid()}"
    with postgres.held(LOCAL / "pg-test", TEST_PG_PORT) as pg:
        postgres.ensure_database(pg, database, app_role=APP_ROLE, recreate=True)
        bouncer = start(pg, LOCAL / f"pgbouncer-{os.getpid()}")
        try:
            env = {
                **os.environ,
                "FOLIO_TEST_ADMIN_URL": pg.url(database=database),
                "FOLIO_TEST_APP_URL": bouncer.url(APP_ROLE, database),
                "DATABASE_SERVER_PREPARE": "false",
            }
            print(f"PgBouncer (transaction mode) on 127.0.0.1:{bouncer.port} -> PostgreSQL :{pg.port}", flush=True)
            return subprocess.call(command, env=env)
        finally:
            bouncer.stop()
            shutil.rmtree(bouncer.directory, ignore_errors=True)
            postgres.drop_database(pg, database)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.pgbouncer", description=__doc__)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
