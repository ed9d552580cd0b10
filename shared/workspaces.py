"""Workspace administration: who I am, members and invitations, and API keys for non-human callers."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared import audit, invitations
from shared.config import Settings
from shared.db import Database, one
from shared.errors import Conflict, Invalid, NotFound
from shared.identity import apikeys
from shared.tenancy import Caller, Role


def describe_caller(db: Database, caller: Caller) -> dict[str, Any]:
    """The caller, the workspace it acts in, and (for users) every workspace it may switch to."""
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        tenant = one(
            conn.execute("SELECT tenant_id, name FROM tenants WHERE tenant_id = %s", (caller.tenant_id,)).fetchone()
        )
        user = None
        workspaces: list[dict[str, Any]] = []
        if caller.user_id is not None:
            user = conn.execute(
                "SELECT user_id, email, display_name FROM workspace_members WHERE user_id = %s", (caller.user_id,)
            ).fetchone()
            workspaces = conn.execute(
                "SELECT t.tenant_id AS id, t.name, m.personal, m.role FROM memberships m"
                " JOIN tenants t ON t.tenant_id = m.tenant_id WHERE m.user_id = %s ORDER BY m.personal DESC, t.name",
                (caller.user_id,),
            ).fetchall()
    return {
        "actor": {"type": caller.actor_type, "id": caller.actor_id},
        "user": None
        if user is None
        else {"id": str(user["user_id"]), "email": user["email"], "name": user["display_name"]},
        "tenant": {"id": str(tenant["tenant_id"]), "name": tenant["name"]},
        "role": str(caller.role),
        "workspaces": [{**w, "id": str(w["id"])} for w in workspaces],
    }


# --- members ---------------------------------------------------------------------------------


def list_members(db: Database, caller: Caller) -> dict[str, Any]:
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        members = conn.execute(
            "SELECT user_id, email, display_name, role, created_at FROM workspace_members ORDER BY created_at"
        ).fetchall()
        invited = invitations.pending_for_workspace(conn, caller.tenant_id) if caller.role >= Role.OWNER else []
    return {
        "members": [
            {
                "userId": str(m["user_id"]),
                "email": m["email"],
                "name": m["display_name"],
                "role": m["role"],
                "since": m["created_at"].isoformat(),
            }
            for m in members
        ],
        "invitations": invited,
    }


def add_member(db: Database, caller: Caller, email: str, role: str, *, settings: Settings) -> dict[str, Any]:
    """Owners add people by sign-in email: always an invitation, which only the invitee can accept.

    The answer is the same whether or not the address has an account (see shared/invitations.py).
    """
    return invitations.invite(db, caller, email, role, settings=settings)


def remove_member(db: Database, caller: Caller, user_id: UUID) -> None:
    """Remove a member and revoke the API keys they created here (a key outliving its creator's
    access would keep it). The founder of a personal workspace cannot be removed from it."""
    caller.require(Role.OWNER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        # Lock the owners so two concurrent removals cannot leave a workspace with none.
        owners = conn.execute(
            "SELECT user_id FROM memberships WHERE tenant_id = %s AND role = 'owner' FOR UPDATE", (caller.tenant_id,)
        ).fetchall()
        row = conn.execute(
            "SELECT role, personal FROM memberships WHERE tenant_id = %s AND user_id = %s FOR UPDATE",
            (caller.tenant_id, user_id),
        ).fetchone()
        if row is None:
            raise NotFound("No such member.")
        if row["personal"]:
            raise Conflict("This is the founder's personal workspace; they cannot be removed from it.")
        if row["role"] == "owner" and len(owners) <= 1:
            raise Conflict("A workspace needs at least one owner.")
        conn.execute("DELETE FROM memberships WHERE tenant_id = %s AND user_id = %s", (caller.tenant_id, user_id))
        revoked = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = %s AND created_by = %s AND revoked_at IS NULL"
            " RETURNING key_id",
            (caller.tenant_id, user_id),
        ).fetchall()
        audit.record(conn, caller, "member.remove", "user", user_id, revokedApiKeys=[str(r["key_id"]) for r in revoked])


# --- API keys --------------------------------------------------------------------------------


def create_api_key(db: Database, caller: Caller, name: str, role: str, *, settings: Settings) -> dict[str, Any]:
    """A new key for this workspace. The key itself is returned here once and never stored."""
    caller.require(Role.OWNER)
    role_value = str(Role.parse(role))
    if role_value == "owner":
        raise Invalid("API keys can be 'member' or 'viewer', not 'owner'.", fields=["role"])
    key_id, key = apikeys.generate(caller.tenant_id)
    secret = apikeys.parse(key).secret
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        # The owners' rows serialise concurrent creations, so the cap holds exactly.
        conn.execute(
            "SELECT 1 FROM memberships WHERE tenant_id = %s AND role = 'owner' FOR UPDATE", (caller.tenant_id,)
        )
        active = one(
            conn.execute(
                "SELECT count(*) AS n FROM api_keys WHERE tenant_id = %s AND revoked_at IS NULL", (caller.tenant_id,)
            ).fetchone()
        )["n"]
        if active >= settings.max_api_keys:
            raise Conflict(
                f"This workspace has {active} API keys, the most it may have; revoke one first.", limit="maxApiKeys"
            )
        row = one(
            conn.execute(
                "INSERT INTO api_keys (tenant_id, key_id, name, role, secret_hash, created_by)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING created_at",
                (caller.tenant_id, key_id, name, role_value, apikeys.hash_secret(secret), caller.user_id),
            ).fetchone()
        )
        audit.record(conn, caller, "api_key.create", "api_key", key_id, name=name, role=role_value)
    return {"id": str(key_id), "name": name, "role": role_value, "createdAt": row["created_at"].isoformat(), "key": key}


def list_api_keys(db: Database, caller: Caller) -> list[dict[str, Any]]:
    caller.require(Role.OWNER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        rows = conn.execute(
            "SELECT key_id, name, role, created_at, revoked_at, last_used_at FROM api_keys"
            " WHERE tenant_id = %s ORDER BY created_at DESC",
            (caller.tenant_id,),
        ).fetchall()
    return [
        {
            "id": str(r["key_id"]),
            "name": r["name"],
            "role": r["role"],
            "createdAt": _iso(r["created_at"]),
            "revokedAt": _iso(r["revoked_at"]),
            "lastUsedAt": _iso(r["last_used_at"]),
        }
        for r in rows
    ]


def revoke_api_key(db: Database, caller: Caller, key_id: UUID) -> None:
    caller.require(Role.OWNER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        row = conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = %s AND key_id = %s"
            " RETURNING key_id",
            (caller.tenant_id, key_id),
        ).fetchone()
        if row is None:
            raise NotFound("No such API key.")
        audit.record(conn, caller, "api_key.revoke", "api_key", key_id)


def list_audit(db: Database, caller: Caller, limit: int, before: int | None) -> list[dict[str, Any]]:
    caller.require(Role.OWNER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        rows = audit.list_entries(conn, limit=limit, before=before)
    return [
        {
            "id": r["audit_id"],
            "at": _iso(r["occurred_at"]),
            "actor": {"type": r["actor_type"], "id": r["actor_id"]},
            "action": r["action"],
            "target": {"type": r["target_type"], "id": r["target_id"]},
            "details": r["details"],
            "invocationId": r["invocation_id"],
        }
        for r in rows
    ]


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
