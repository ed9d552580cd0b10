"""Brings up the local stack: settings, embedded PostgreSQL, Azurite, migrations, the Functions host."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
DEV_PG_PORT = 54329

_log = logging.getLogger("devhost")


def load_local_settings(root: Path = ROOT) -> dict[str, Any]:
    """local.settings.json if present, else the checked-in sample (what `func start` would read)."""
    for name in ("local.settings.json", "local.settings.sample.json"):
        path = root / name
        if path.exists():
            return json.loads(path.read_text())
    return {"Values": {}}


def apply_settings(values: dict[str, str]) -> dict[str, str]:
    """Copy Values into the environment; variables already exported win, as with Core Tools."""
    applied = {}
    for key, value in values.items():
        if key not in os.environ:
            os.environ[key] = str(value)
            applied[key] = str(value)
    return applied


def point_settings_at_ports(*, pg_port: int, azurite_port: int) -> None:
    """Follow FOLIO_PG_PORT / FOLIO_AZURITE_PORT in the settings that name the default local ports
    (local.settings.sample.json's database URLs and UseDevelopmentStorage); others are left alone."""
    for name in ("DATABASE_URL", "DATABASE_ADMIN_URL"):
        value = os.environ.get(name, "")
        if f"@127.0.0.1:{DEV_PG_PORT}/" in value and pg_port != DEV_PG_PORT:
            os.environ[name] = value.replace(f"@127.0.0.1:{DEV_PG_PORT}/", f"@127.0.0.1:{pg_port}/")
    if azurite_port != 10000:
        explicit = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + AZURITE_KEY + ";"
            f"BlobEndpoint=http://127.0.0.1:{azurite_port}/devstoreaccount1;"
            f"QueueEndpoint=http://127.0.0.1:{azurite_port + 1}/devstoreaccount1;"
            f"TableEndpoint=http://127.0.0.1:{azurite_port + 2}/devstoreaccount1;"
        )
        for name in ("STORAGE_CONNECTION_STRING", "AzureWebJobsStorage"):
            if os.environ.get(name) == "UseDevelopmentStorage=true":
                os.environ[name] = explicit


# Azurite's published development account key (not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class ChildProcess:
    """A process the local stack started (an emulator, PgBouncer); stop() ends it, forcefully if it does not exit."""

    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@dataclass
class Azurite(ChildProcess):
    blob_port: int


def start_azurite(
    location: Path, *, blob_port: int = 10000, queue_port: int = 10001, table_port: int = 10002, log: Path | None = None
) -> Azurite:
    """Azurite from node_modules. --skipApiVersionCheck: current azure-storage-blob sends newer
    API versions than Azurite knows and would be rejected otherwise."""
    binary = ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise RuntimeError("Azurite is not installed; run `npm ci` (make dev and make test do).")
    location.mkdir(parents=True, exist_ok=True)
    with open(log or (location / "azurite.log"), "ab") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [
                str(binary),
                "--location",
                str(location),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(blob_port),
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                str(queue_port),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(table_port),
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--loose",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{blob_port}/devstoreaccount1?comp=list", timeout=1)
        except urllib.error.HTTPError:
            break  # it answered (403 without auth): it is up
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not start; see {out.name}") from None
            time.sleep(0.2)
        else:
            break
    return Azurite(process, blob_port)


# The Cosmos DB emulator's published, well-known key (not a secret); the local server accepts any key.
COSMOS_EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
DEV_COSMOS_PORT = 8081


@dataclass
class CosmosEmulator(ChildProcess):
    port: int

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def start_cosmos(port: int = DEV_COSMOS_PORT, *, log: Path | None = None) -> CosmosEmulator:
    """`@vercel/cosmosdb-server` from node_modules: HTTPS with a self-signed certificate, memory only.

    Differences from Cosmos DB that matter to Folio are in ARCHITECTURE.md (Local stack); the chat
    store's queries are written to work on both.
    """
    import ssl

    binary = ROOT / "node_modules" / ".bin" / "cosmosdb-server"
    if not binary.exists():
        raise RuntimeError("cosmosdb-server is not installed; run `npm ci` (make dev and make test do).")
    LOCAL.mkdir(parents=True, exist_ok=True)
    with open(log or (LOCAL / "cosmos.log"), "ab") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [str(binary), "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # the emulator's own self-signed certificate, on loopback only
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/", timeout=1, context=insecure)
            break
        except urllib.error.HTTPError:
            break  # it answered: it is up
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cosmosdb-server did not start; see {out.name}") from None
            time.sleep(0.2)
    return CosmosEmulator(process, port)


def node_available() -> bool:
    return shutil.which("node") is not None
