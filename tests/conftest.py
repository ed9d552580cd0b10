"""Shared fixtures: a real PostgreSQL with pgvector, the app's settings, and the local Functions host."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import Client

# The billing fixtures (`billing`, the session's loopback `stripe_stub`) for every test module that asks for them.
pytest_plugins = ["tests.stripe_events"]

if TYPE_CHECKING:
    from shared.db import Conn

ROOT = Path(__file__).resolve().parent.parent
TEST_PG_PORT = int(os.environ.get("FOLIO_TEST_PG_PORT", "54330"))
# One database per pytest process, so parallel runs on one machine never drop each other's data.
TEST_DB = f"folio_test_{os.getpid()}"
APP_ROLE = "folio_app"
TEST_CONTEXT_KEY = "folio-test-context-key-not-a-secret"


def restore_environment(saved: dict[str, str | None]) -> None:
    """Put back the variables a fixture changed (None: it was unset) and forget cached settings."""
    from shared.config import reset_settings

    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_settings()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """An embedded PostgreSQL 18 + pgvector, separate from `make dev`'s, with a fresh database."""
    from devhost import postgres as local_pg

    if os.environ.get("FOLIO_TEST_ADMIN_URL"):  # an existing server, e.g. one with PgBouncer in front
        yield None
        return
    # Held for this session: the server stops when the last run using it ends (issue #17 item 10).
    with local_pg.held(ROOT / ".local" / "pg-test", TEST_PG_PORT) as pg:
        local_pg.ensure_database(pg, TEST_DB, app_role=APP_ROLE, recreate=True)
        yield pg
        from shared import bootstrap

        process = bootstrap.install(None)
        if process is not None:
            process.close()
        local_pg.drop_database(pg, TEST_DB)


@pytest.fixture(scope="session")
def database_urls(postgres: object) -> dict[str, str]:
    from shared.db.migrate import migrate

    if postgres is None:
        urls = {"admin": os.environ["FOLIO_TEST_ADMIN_URL"], "app": os.environ["FOLIO_TEST_APP_URL"]}
    else:
        urls = {"admin": postgres.url(database=TEST_DB), "app": postgres.url(APP_ROLE, TEST_DB)}  # type: ignore[attr-defined]
    migrate(
        urls["admin"],
        app_role=APP_ROLE,
        embedding_model="all-MiniLM-L6-v2",
        embedding_dim=384,
        context_key=TEST_CONTEXT_KEY.encode(),
    )
    return urls


AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # public dev key
)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Azure Storage emulator (Azurite from npm) on free ports; yields a connection string."""
    from devhost import stack

    blob_port = _free_port()
    emulator = stack.start_azurite(
        tmp_path_factory.mktemp("azurite"), blob_port=blob_port, queue_port=_free_port(), table_port=_free_port()
    )
    yield (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob_port}/devstoreaccount1;"
    )
    emulator.stop()


@pytest.fixture(scope="session")
def app_environment(database_urls: dict[str, str], azurite: str) -> Iterator[dict[str, str]]:
    """The environment the app reads its settings from during tests, and the app's services built from it
    (the local host's: the PostgreSQL stand-in for Service Bus)."""
    from devhost.services import local_services
    from shared import bootstrap
    from shared.config import reset_settings

    env = {
        "FOLIO_ENVIRONMENT": "test",
        # The suite signs in as the local host does: the x-ms-client-principal header, trusted only in dev mode.
        "FOLIO_DEV_MODE": "true",
        "DATABASE_URL": database_urls["app"],
        "DATABASE_ADMIN_URL": database_urls["admin"],
        "DATABASE_POOL_MAX": "8",
        # Every transaction's tenant is signed, as in production (migration 0009): the whole suite runs
        # with row-level security that an unsigned set_config cannot steer.
        "DATABASE_CONTEXT_KEY": TEST_CONTEXT_KEY,
        "APP_CONFIG_ENDPOINT": "",
        "KEY_VAULT_URL": "",
        "STORAGE_CONNECTION_STRING": azurite,
        "UPLOAD_CONTAINER": "uploads",
        "INDEX_QUEUE_BACKEND": "postgres",
        "FOLIO_SERVICES_FACTORY": "devhost.services:local_services",
        "INDEX_QUEUE_NAME": "index-jobs-test",
        "INDEX_MAX_DELIVERY": "3",
        "EMBEDDING_PROVIDER": "local",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_settings()
    services = local_services()
    services.blobs.ensure_container()  # type: ignore[attr-defined]
    bootstrap.install(services)
    yield env
    bootstrap.install(None)
    services.close()
    restore_environment(saved)


@pytest.fixture
def settings_override(app_environment: dict[str, str]) -> Iterator[object]:
    """Change settings for one test: ``settings_override(FOLIO_DEV_MODE="false")``."""
    from shared.config import reset_settings

    changed: dict[str, str | None] = {}

    def apply(**values: str) -> None:
        for key, value in values.items():
            changed.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        reset_settings()

    yield apply
    restore_environment(changed)


@pytest.fixture(scope="session")
def host(app_environment: dict[str, str]) -> Iterator[str]:
    """The local Functions host serving function_app over real HTTP on a free port."""
    import function_app
    from devhost.functions import registrations
    from devhost.http_server import FunctionsHttpServer

    server = FunctionsHttpServer(
        ("127.0.0.1", 0), registrations(function_app.app), cors_origins=("http://127.0.0.1:4280",)
    )
    server.start_in_thread()
    yield server.base_url
    server.shutdown()


@pytest.fixture
def client(host: str) -> Client:
    return Client(host)


@pytest.fixture
def admin_conn(database_urls: dict[str, str]) -> Iterator[Conn]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(database_urls["admin"], autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def app_conn(database_urls: dict[str, str]) -> Iterator[Conn]:
    """A direct connection as the app role: what row-level security sees."""
    import psycopg
    from psycopg.rows import dict_row

    # Through PgBouncer in transaction mode (make test-pgbouncer) a prepared statement may not be there next time.
    prepare = None if os.environ.get("DATABASE_SERVER_PREPARE") == "false" else 5  # 5: psycopg's default
    with psycopg.connect(database_urls["app"], row_factory=dict_row, prepare_threshold=prepare) as conn:
        yield conn


@pytest.fixture(scope="session")
def cosmos(app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Cosmos DB emulator (cosmosdb-server from npm, HTTPS) on a free port, with the chat container.

    Also points chat's settings at it: the extractive provider and a private directory for users'
    own keys. Yields the endpoint.
    """
    from devhost import stack
    from devhost.cosmos import emulator_chat_store
    from shared.config import get_settings, reset_settings

    emulator = stack.start_cosmos(_free_port(), log=tmp_path_factory.mktemp("cosmos") / "cosmos.log")
    env = {
        "COSMOS_ENDPOINT": emulator.endpoint,
        "COSMOS_KEY": stack.COSMOS_EMULATOR_KEY,
        "COSMOS_DATABASE": "folio",
        "COSMOS_CHAT_CONTAINER": "chat",
        "CHAT_PROVIDER": "extractive",
        "CHAT_KEY_STORE": "local",
        "CHAT_LOCAL_SECRETS_DIR": str(tmp_path_factory.mktemp("secrets") / "keys"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_settings()
    emulator_chat_store(get_settings())  # creates the database and the container; the app builds its own store
    yield emulator.endpoint
    restore_environment(saved)
    emulator.stop()


# --- the ingestion pipeline, as the local host runs it ---------------------------------------


def _indexing_pipeline(*, background: bool) -> Iterator[Any]:
    """Blob events → queue → indexer with the fast hashing embedder: the tests that use this check
    behaviour, not ranking quality (benchmarks/retrieval.py does that with the real model)."""
    from tests.fakes_embedding import HashingEmbedder
    from tests.helpers import using
    from tests.pipeline import build_pipeline

    with using(embedder=HashingEmbedder(384)):
        built = build_pipeline()
        built.settle()  # absorb blobs left by earlier test modules
        if background:
            built.events.start()
            built.worker.start()
        yield built
        if background:
            built.events.stop()
            built.worker.stop()


@pytest.fixture(scope="module")
def pipeline(host: str) -> Iterator[Any]:
    """Driven by the test: ``pipeline.settle()`` delivers events and runs queued jobs."""
    yield from _indexing_pipeline(background=False)


@pytest.fixture(scope="module")
def running_pipeline(host: str) -> Iterator[Any]:
    """Running in the background, as `make dev` does."""
    yield from _indexing_pipeline(background=True)
