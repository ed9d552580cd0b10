"""Dependency checks behind GET /api/health."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shared.bootstrap import Services
from shared.db import Database, one
from shared.errors import FolioError


def check(services: Services) -> tuple[bool, dict[str, Any]]:
    """Each dependency's status. Unhealthy (503) only when the database is down: without it nothing
    works; with Storage or Cosmos DB down, search still works, so the status is "degraded"."""
    settings = services.settings
    checks = {"database": _database(services.database)}
    if settings.storage_account_url or (
        settings.storage_connection_string and settings.storage_connection_string.is_set()
    ):
        checks["storage"] = _probe(lambda: services.blobs.ping())
    if settings.cosmos_endpoint:
        checks["cosmos"] = _probe(lambda: services.chat_store.ping())
    healthy = checks["database"]["status"] == "ok"
    degraded = healthy and any(c["status"] != "ok" for c in checks.values())
    status = "unavailable" if not healthy else "degraded" if degraded else "ok"
    return healthy, {"status": status, "environment": settings.environment, "checks": checks}


def _probe(ping: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        ping()
    except FolioError as exc:
        return {"status": "down", "error": exc.detail}
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "latencyMs": round((time.perf_counter() - started) * 1000, 1)}


def _database(db: Database) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with db.transaction() as conn:
            row = conn.execute(
                "SELECT r.rolsuper OR r.rolbypassrls AS bypasses_rls, (SELECT value FROM folio_index_settings WHERE key = 'embedding_dim') AS embedding_dim"
                " FROM pg_roles r WHERE r.rolname = current_user"
            ).fetchone()
    except FolioError as exc:
        return {"status": "down", "error": exc.detail}
    except Exception as exc:  # a missing migration shows up here too
        return {"status": "down", "error": type(exc).__name__}
    return {
        "status": "ok",
        "latencyMs": round((time.perf_counter() - started) * 1000, 1),
        # The app role must not bypass row-level security; say so loudly if it does.
        "rowLevelSecurity": "bypassed" if one(row)["bypasses_rls"] else "enforced",
        "migrated": one(row)["embedding_dim"] is not None,
    }
