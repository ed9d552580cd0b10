"""Servers the tests and benchmarks start stop when their run ends; `make stop` stops the rest (issue #17 item 10)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost import postgres, stop

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def local_dir() -> Iterator[Path]:
    """A .local-like directory of this test's own (not the one `make dev` or the test server use)."""
    import shutil
    import uuid

    path = ROOT / ".local" / "tmp-tests" / uuid.uuid4().hex[:8]
    path.mkdir(parents=True)
    yield path
    stop.stop_all(path)
    shutil.rmtree(path, ignore_errors=True)


def test_a_held_server_stops_when_its_only_run_ends(local_dir: Path) -> None:
    data = local_dir / "pg-test"
    with postgres.held(data, _free_port()) as pg:
        assert postgres.accepts(pg) and (data / "postmaster.pid").exists()
    assert not postgres.accepts(pg)
    assert not (data / "postmaster.pid").exists()


def test_a_held_server_stays_up_while_another_run_holds_it(local_dir: Path) -> None:
    data = local_dir / "pg-test"
    other = subprocess.Popen(["sleep", "60"])  # stands for a second pytest run on the same server
    try:
        with postgres.held(data, _free_port()) as pg:
            holders = data.parent / f".{data.name}.holders"
            (holders / str(other.pid)).touch()
        assert postgres.accepts(pg)  # the other run still uses it
        other.kill()
        other.wait()
        with postgres.held(data, pg.port):
            pass
        assert not postgres.accepts(pg)  # the other run is gone (its file is cleaned up): stopped
    finally:
        other.kill()


def test_make_stop_stops_every_server_under_local(local_dir: Path) -> None:
    first = postgres.start(local_dir / "pg", _free_port())
    second = postgres.start(local_dir / "pg-bench", _free_port())
    assert postgres.accepts(first) and postgres.accepts(second)
    stopped = stop.stop_all(local_dir)
    assert len(stopped) == 2 and all(line.startswith("PostgreSQL") for line in stopped)
    assert not postgres.accepts(first) and not postgres.accepts(second)
    assert stop.stop_all(local_dir) == []


def test_a_benchmark_process_that_started_the_server_stops_it_on_exit(local_dir: Path) -> None:
    """What `benchmarks.search` does (devhost.postgres.held_for_process): the server ends with the process."""
    import sys

    data, port = local_dir / "pg-bench", _free_port()
    code = (
        "import sys; from pathlib import Path; from devhost import postgres;"
        f"pg = postgres.held_for_process(Path({str(data)!r}), {port}); sys.exit(0 if postgres.accepts(pg) else 1)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0
    assert not postgres.accepts(postgres.LocalPostgres(data, port))


def test_make_stop_ends_a_running_make_dev_host(local_dir: Path) -> None:
    """`make dev` runs in another terminal: `make stop` sends it SIGTERM (it then stops what it started)
    and waits for it; a pid file naming some other process is left alone."""
    import sys
    import time

    # Stands for `python -m devhost`: the same name on its command line, the same SIGTERM handling.
    script = local_dir / "devhost_standin.py"
    ready = local_dir / "ready"
    script.write_text(
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "while True: time.sleep(0.1)\n"
    )
    host = subprocess.Popen([sys.executable, str(script)])
    try:
        for _ in range(200):  # until it handles SIGTERM, as the real host does once it is up
            if ready.exists():
                break
            time.sleep(0.05)
        (local_dir / stop.HOST_PIDFILE).write_text(f"{host.pid}\n")
        stopped = stop.stop_all(local_dir)
        assert stopped == [f"the local Functions host (pid {host.pid}) and what it started"]
        assert host.wait(timeout=10) == 0
    finally:
        host.kill()
    other = subprocess.Popen(["sleep", "60"])
    try:
        (local_dir / stop.HOST_PIDFILE).write_text(f"{other.pid}\n")
        assert stop.stop_all(local_dir) == []
        assert other.poll() is None  # not ours: still running
    finally:
        other.kill()
        other.wait()
