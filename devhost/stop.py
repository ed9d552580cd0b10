"""`make stop`: stop every local server this checkout started (PostgreSQL of dev, tests and benchmarks; PgBouncer).

Servers are found by where they keep their state under .local/, never by process name: a data
directory with a postmaster.pid (stopped with pg_ctl) and PgBouncer's pid file.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from devhost import postgres
from devhost.stack import LOCAL


def running_servers(local: Path = LOCAL) -> list[Path]:
    """Data directories under ``local`` whose PostgreSQL is running (it holds postmaster.pid)."""
    if not local.exists():
        return []
    return sorted(p.parent for p in local.glob("*/postmaster.pid"))


def stop_all(local: Path = LOCAL) -> list[str]:
    """Stop them all; what was stopped, one line each."""
    stopped = []
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
