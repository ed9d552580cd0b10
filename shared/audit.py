"""The audit trail: one row per mutating action, written in the same transaction as the action."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from shared.db import Conn
from shared.telemetry import current_invocation_id
from shared.tenancy import Caller


def record(
    conn: Conn, caller: Caller, action: str, target_type: str, target_id: object | None = None, **details: Any
) -> None:
    """Append an audit row. Details must never hold secrets (keys, tokens, document text)."""
    conn.execute(
        "INSERT INTO audit_log (tenant_id, actor_type, actor_id, action, target_type, target_id, details,"
        " invocation_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            caller.tenant_id,
            caller.actor_type,
            caller.actor_id,
            action,
            target_type,
            None if target_id is None else str(target_id),
            Jsonb(details),
            current_invocation_id(),
        ),
    )


def list_entries(conn: Conn, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT audit_id, occurred_at, actor_type, actor_id, action, target_type, target_id, details, invocation_id"
        " FROM audit_log WHERE tenant_id = folio_current_tenant() AND (%s::bigint IS NULL OR audit_id < %s)"
        " ORDER BY audit_id DESC LIMIT %s",
        (before, before, limit),
    ).fetchall()
    return [dict(r) for r in rows]
