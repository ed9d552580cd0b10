"""Dependency checks behind GET /api/health."""

from __future__ import annotations

import time
from typing import Any

from shared.config import Settings
from shared.db import Database
from shared.errors import FolioError


def check(settings: Settings, db: Database) -> tuple[bool, dict[str, Any]]:
    """Each dependency's status; healthy only when every required one is up."""
    checks = {"database": _database(db)}
    healthy = all(c["status"] == "ok" for c in checks.values())
    return healthy, {"status": "ok" if healthy else "unavailable", "environment": settings.environment,
                     "checks": checks}


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
        "rowLevelSecurity": "bypassed" if row["bypasses_rls"] else "enforced",
        "migrated": row["embedding_dim"] is not None,
    }
