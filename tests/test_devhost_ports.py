"""The local stack's ports are settings, and a port in use stops `make dev` with a clear message (issue #17 item 11)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devhost import ports

ROOT = Path(__file__).resolve().parent.parent


def test_ports_come_from_settings_with_defaults() -> None:
    assert ports.port("FOLIO_PORT", {}) == 7071
    assert ports.port("FOLIO_PORT", {"FOLIO_PORT": "7171"}) == 7171
    assert ports.port("FOLIO_PG_PORT", {"FOLIO_PG_PORT": " "}) == 54329
    with pytest.raises(ports.PortInUse, match="FOLIO_WEB_PORT='web' is not a port number"):
        ports.port("FOLIO_WEB_PORT", {"FOLIO_WEB_PORT": "web"})


def test_a_taken_port_names_its_holder_and_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        number = taken.getsockname()[1]
        with pytest.raises(ports.PortInUse) as caught:
            ports.ensure_free(number, "FOLIO_PORT")
    assert str(caught.value).startswith(f"port {number} is in use (by pid {os.getpid()}, ")
    assert str(caught.value).endswith("; set FOLIO_PORT to another port")


def test_a_second_make_dev_stops_with_a_message_not_a_traceback() -> None:
    """What a user saw was a raw traceback from the HTTP server; now the start stops before anything runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        number = taken.getsockname()[1]
        env = {**os.environ, "FOLIO_PORT": str(number), "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
        done = subprocess.run(
            [sys.executable, "-m", "devhost", "--no-web", "--no-azurite", "--no-cosmos"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"port {number} is in use (by pid {os.getpid()}, " in done.stderr
    assert "set FOLIO_PORT to another port" in done.stderr
    assert "Traceback" not in done.stderr


def test_moved_ports_carry_into_the_sample_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """FOLIO_PG_PORT / FOLIO_AZURITE_PORT rewrite the settings that name the default local ports, nothing else."""
    from devhost import stack

    monkeypatch.setenv("DATABASE_URL", "postgresql://folio_app@127.0.0.1:54329/folio")
    monkeypatch.setenv("DATABASE_ADMIN_URL", "postgresql://postgres@db.example.com:54329/folio")
    monkeypatch.setenv("STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    stack.point_settings_at_ports(pg_port=55555, azurite_port=20000)
    assert os.environ["DATABASE_URL"] == "postgresql://folio_app@127.0.0.1:55555/folio"
    assert os.environ["DATABASE_ADMIN_URL"] == "postgresql://postgres@db.example.com:54329/folio"  # not ours
    assert "BlobEndpoint=http://127.0.0.1:20000/devstoreaccount1;" in os.environ["STORAGE_CONNECTION_STRING"]
