"""`make stop`: stop every local server this checkout started (`make dev`, PostgreSQL of dev, tests and benchmarks; PgBouncer).

Servers are found by where they keep their state under .local/, never by process name: `make dev`'s
host (devhost.pid: it stops what it started), a data directory with a postmaster.pid (stopped with
pg_ctl) and PgBouncer's pid file.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from devhost import postgres
from devhost.stack import LOCAL


def running_servers(local: Path = LOCAL) -> list[Path]:
    """Data directories under ``local`` whose PostgreSQL is running (it holds postmaster.pid)."""
    if not local.exists():
        return []
    return sorted(p.parent for p in local.glob("*/postmaster.pid"))


HOST_PIDFILE = "devhost.pid"


def _is_devhost(pid: int) -> bool:
    """Whether ``pid`` is still a `python -m devhost` (a stale pid file may name a reused pid)."""
    try:
        return b"devhost" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop_host(local: Path = LOCAL, *, wait_s: float = 60) -> str | None:
    """SIGTERM a running `make dev` host, which then stops what it started (Azurite, the Cosmos DB
    stand-in, its PostgreSQL); wait for it to end. What was stopped, or None."""
    pidfile = local / HOST_PIDFILE
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _is_devhost(pid):
        pidfile.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while _is_devhost(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return f"the local Functions host (pid {pid}) and what it started"


def stop_all(local: Path = LOCAL) -> list[str]:
    """Stop them all; what was stopped, one line each."""
    stopped = [host] if local.exists() and (host := stop_host(local)) else []
    for pidfile in sorted(local.glob("pgbouncer-*/pgbouncer.pid")) if local.exists() else []:
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            stopped.append(f"PgBouncer (pid {pid}, {pidfile.parent.name})")
        except (OSError, ValueError, IndexError):
            pass
    for data_dir in running_servers(local):
        postgres.stop(data_dir)
        stopped.append(f"PostgreSQL ({data_dir.relative_to(local.parent)})")
    return stopped


def main() -> int:
    stopped = stop_all()
    print("\n".join(f"stopped {s}" for s in stopped) if stopped else "no local server was running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
