"""What the benchmarks share: a scratch PostgreSQL database with Folio's schema, and a tenant in it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
BENCH_PG_PORT = int(os.environ.get("FOLIO_BENCH_PG_PORT", "54331"))


if TYPE_CHECKING:
    from shared.db import Database


def scratch_database(name: str, *, embedding_dim: int = 384, embedding_model: str = "all-MiniLM-L6-v2") -> dict:
    """A fresh database on the embedded server (or BENCH_ADMIN_URL/BENCH_APP_URL if given), migrated."""
    from shared.db.migrate import migrate

    if os.environ.get("BENCH_ADMIN_URL"):
        urls = {"admin": os.environ["BENCH_ADMIN_URL"], "app": os.environ["BENCH_APP_URL"]}
    else:
        urls = bench_database(name, recreate=True)
    migrate(urls["admin"], app_role="folio_app", embedding_model=embedding_model, embedding_dim=embedding_dim)
    return urls


def bench_database(name: str, *, recreate: bool = False) -> dict[str, str]:
    """The admin and app URLs of database ``name`` on the embedded server, which starts if need be
    and stops when this run ends; ``recreate`` drops and creates the database first (empty)."""
    from devhost import postgres as local_pg

    pg = local_pg.held_for_process(ROOT / ".local" / "pg-bench", BENCH_PG_PORT)
    if recreate:
        local_pg.ensure_database(pg, name, app_role="folio_app", recreate=True)
    return {"admin": pg.url(database=name), "app": pg.url("folio_app", name)}


def app_database(url: str, *, max_size: int = 2) -> Database:
    """The app role's pool as the app builds it: signed tenant context (DATABASE_CONTEXT_KEY) and
    server-side prepares (off behind PgBouncer) as the settings say."""
    from shared.config import get_settings
    from shared.db import Database

    settings = get_settings()
    key = settings.database_context_key
    return Database(
        url,
        max_size=max_size,
        server_prepare=settings.database_server_prepare,
        context_key=key.reveal().encode() if key is not None and key.is_set() else None,
    )


def create_tenant(admin_url: str, name: str = "bench") -> tuple[uuid.UUID, uuid.UUID]:
    """A tenant with one collection, created as the owner (benchmarks skip the sign-in flow)."""
    import psycopg

    tenant, collection = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        conn.execute("INSERT INTO tenants (tenant_id, name) VALUES (%s, %s)", (tenant, name))
        conn.execute(
            "INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, %s)", (tenant, collection, name)
        )
    return tenant, collection
