"""Invitations: owners invite by email; only the invitee accepts or declines (membership by consent).

Inviting never reveals whether an address has an account: every invitation is answered the same
way (202, ``status: invited``). The invitee sees the invitations addressed to their verified email
(``GET /api/invitations``) and answers each; nothing joins them to a workspace without that answer.
The database side is migration 0008 (``folio_my_invitations``, ``folio_answer_invitation``).
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from shared import audit
from shared.config import Settings
from shared.db import Database, one
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.tenancy import Caller, Role

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def invite(db: Database, caller: Caller, email: str, role: str, *, settings: Settings) -> dict[str, Any]:
    """Invite ``email`` at ``role`` (a repeat renews the invitation with the new role)."""
    caller.require(Role.OWNER)
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise Invalid("Field 'email' must be an email address.", fields=["email"])
    role_value = str(Role.parse(role))
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        # The owner sees their members anyway, so saying "already a member" reveals nothing new.
        if conn.execute("SELECT 1 FROM workspace_members WHERE lower(email) = %s LIMIT 1", (email,)).fetchone():
            raise Conflict("Someone with that email is already a member of this workspace.")
        conn.execute("DELETE FROM invitations WHERE tenant_id = %s AND expires_at <= now()", (caller.tenant_id,))
        pending = one(
            conn.execute(
                "SELECT count(*) AS n, bool_or(email = %s) AS renewing FROM invitations WHERE tenant_id = %s",
                (email, caller.tenant_id),
            ).fetchone()
        )
        if pending["n"] >= settings.max_pending_invitations and not pending["renewing"]:
            raise Conflict(
                f"This workspace has {pending['n']} invitations waiting for an answer, the most it may have;"
                " withdraw some first.",
                limit="maxPendingInvitations",
            )
        row = one(
            conn.execute(
                "INSERT INTO invitations (tenant_id, email, role, invited_by) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (tenant_id, email) DO UPDATE SET role = EXCLUDED.role,"
                " invited_by = EXCLUDED.invited_by, created_at = now(), expires_at = now() + interval '30 days'"
                " RETURNING invitation_id, expires_at",
                (caller.tenant_id, email, role_value, caller.user_id),
            ).fetchone()
        )
        audit.record(conn, caller, "member.invite", "invitation", row["invitation_id"], email=email, role=role_value)
    return {
        "invitationId": str(row["invitation_id"]),
        "email": email,
        "role": role_value,
        "status": "invited",
        "expiresAt": row["expires_at"].isoformat(),
    }


def pending_for_workspace(conn: Any, tenant_id: UUID) -> list[dict[str, Any]]:
    """The workspace's unanswered invitations, for its owners."""
    rows = conn.execute(
        "SELECT invitation_id, email, role, created_at, expires_at FROM invitations"
        " WHERE tenant_id = %s AND expires_at > now() ORDER BY created_at",
        (tenant_id,),
    ).fetchall()
    return [
        {
            "id": str(r["invitation_id"]),
            "email": r["email"],
            "role": r["role"],
            "invitedAt": r["created_at"].isoformat(),
            "expiresAt": r["expires_at"].isoformat(),
        }
        for r in rows
    ]


def withdraw(db: Database, caller: Caller, invitation_id: UUID) -> None:
    """An owner takes an invitation back before it is answered."""
    caller.require(Role.OWNER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        row = conn.execute(
            "DELETE FROM invitations WHERE tenant_id = %s AND invitation_id = %s RETURNING email",
            (caller.tenant_id, invitation_id),
        ).fetchone()
        if row is None:
            raise NotFound("No such invitation.")
        audit.record(conn, caller, "member.invite_withdrawn", "invitation", invitation_id, email=row["email"])


def _person(caller: Caller) -> UUID:
    if caller.user_id is None:
        raise Forbidden("Only a signed-in person has invitations; an API key cannot answer one.")
    return caller.user_id


def mine(db: Database, caller: Caller) -> list[dict[str, Any]]:
    """Invitations addressed to the caller's verified email, in any workspace."""
    user_id = _person(caller)
    with db.transaction(user_id=user_id) as conn:
        rows = conn.execute(
            "SELECT invitation_id, tenant_id, workspace, role, invited_at, expires_at FROM folio_my_invitations()"
        ).fetchall()
    return [
        {
            "id": str(r["invitation_id"]),
            "workspace": {"id": str(r["tenant_id"]), "name": r["workspace"]},
            "role": r["role"],
            "invitedAt": r["invited_at"].isoformat(),
            "expiresAt": r["expires_at"].isoformat(),
        }
        for r in rows
    ]


def answer(db: Database, caller: Caller, invitation_id: UUID, *, accept: bool) -> dict[str, Any]:
    """Accept (join at the invited role) or decline one of the caller's invitations."""
    user_id = _person(caller)
    with db.transaction(user_id=user_id) as conn:
        row = conn.execute(
            "SELECT tenant_id, role, joined FROM folio_answer_invitation(%s, %s)", (invitation_id, accept)
        ).fetchone()
    if row is None:
        raise NotFound("No such invitation.")
    tenant_id, role = row["tenant_id"], Role.parse(row["role"])
    # Recorded in the inviting workspace, whose owners want to know the answer.
    with db.transaction(tenant_id, user_id) as conn:
        audit.record(
            conn,
            Caller(tenant_id, role, "user", str(user_id), user_id),
            "member.join" if accept else "member.invite_declined",
            "invitation",
            invitation_id,
            role=str(role),
        )
    return {"workspace": {"id": str(tenant_id)}, "role": str(role), "status": "joined" if accept else "declined"}
