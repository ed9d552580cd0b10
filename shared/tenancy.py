"""From principal to caller: the workspace (tenant) a request acts in, and the role it has there."""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from enum import IntEnum
from uuid import UUID

from shared import access
from shared.db import Database, identity_claim, one
from shared.errors import Forbidden, Invalid, NotFound, Unauthenticated
from shared.identity import apikeys
from shared.identity.principal import ApiKeyCredential, Principal


class Role(IntEnum):
    """Ordered so that ``role >= Role.MEMBER`` reads as "at least a member"."""

    VIEWER = 1
    MEMBER = 2
    OWNER = 3

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.upper()]
        except KeyError:
            raise Invalid(f"Unknown role {value!r}; use owner, member or viewer.") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Caller:
    """Who is acting, in which workspace, with which role. Every service call takes one."""

    tenant_id: UUID
    role: Role
    actor_type: str  # "user" | "api_key"
    actor_id: str
    user_id: UUID | None = None

    def require(self, role: Role) -> None:
        if self.role < role:
            raise Forbidden(f"This action needs the {role} role; you are {self.role}.")


class _UserIds:
    """(idp, subject) -> user id. Immutable once assigned, so caching it is safe."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._ids: dict[tuple[str, str], UUID] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> UUID | None:
        return self._ids.get(key)

    def put(self, key: tuple[str, str], user_id: UUID) -> None:
        with self._lock:
            if len(self._ids) >= self._capacity:
                self._ids.clear()
            self._ids[key] = user_id


_user_ids = _UserIds()


def resolve_caller(db: Database, who: Principal | ApiKeyCredential, workspace: str | None = None) -> Caller:
    """The caller for this request. ``workspace`` (a header) picks among the user's memberships."""
    if isinstance(who, ApiKeyCredential):
        return _api_key_caller(db, who)
    user_id = _user_id(db, who)
    wanted = _parse_workspace(workspace)
    with db.transaction(user_id=user_id) as conn:
        if wanted is None:
            # Default workspace: the user's personal one, else the oldest membership.
            row = conn.execute(
                "SELECT tenant_id, role FROM memberships"
                " WHERE user_id = %s ORDER BY personal DESC, created_at, tenant_id LIMIT 1",
                (user_id,),
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT tenant_id, role FROM memberships WHERE user_id = %s AND tenant_id = %s", (user_id, wanted)
            ).fetchone()
        if row is not None:
            # The token's groups, for restricted collections that grant by group (migration 0013).
            access.record_groups(conn, row["tenant_id"], user_id, who)
    if row is None:
        # Same answer whether the workspace exists or not.
        raise NotFound("No such workspace.") if wanted else Forbidden("You are not a member of any workspace.")
    return Caller(row["tenant_id"], Role.parse(row["role"]), "user", str(user_id), user_id)


def _parse_workspace(value: str | None) -> UUID | None:
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise Invalid("The X-Folio-Workspace header must be a workspace id.") from None


def _user_id(db: Database, principal: Principal) -> UUID:
    key = (principal.idp, principal.subject)
    cached = _user_ids.get(key)
    if cached is not None:
        return cached
    # Signed for this identity (migration 0009): folio_sign_in may write only the user it names.
    identity = identity_claim(principal.idp, principal.subject, principal.email, principal.email_verified)
    with db.transaction(identity=identity) as conn:
        row = conn.execute("SELECT folio_find_user(%s, %s) AS user_id", key).fetchone()
        user_id = row["user_id"] if row else None
        if user_id is None:
            user_id = one(
                conn.execute(
                    "SELECT folio_sign_in(%s, %s, %s, %s, %s) AS user_id",
                    (*key, principal.email, principal.name, principal.email_verified),
                ).fetchone()
            )["user_id"]
    _user_ids.put(key, user_id)
    return UUID(str(user_id))


def _api_key_caller(db: Database, credential: ApiKeyCredential) -> Caller:
    with db.transaction(tenant_id=credential.tenant_id) as conn:
        row = conn.execute(
            "SELECT secret_hash, role, last_used_at > now() - interval '1 minute' AS fresh FROM api_keys"
            " WHERE tenant_id = %s AND key_id = %s AND revoked_at IS NULL",
            (credential.tenant_id, credential.key_id),
        ).fetchone()
        if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), apikeys.hash_secret(credential.secret)):
            raise Unauthenticated("The API key is not valid or has been revoked.")
        if not row["fresh"]:  # record use at most once a minute: no write per request
            conn.execute(
                "UPDATE api_keys SET last_used_at = now() WHERE tenant_id = %s AND key_id = %s",
                (credential.tenant_id, credential.key_id),
            )
    return Caller(credential.tenant_id, Role.parse(row["role"]), "api_key", str(credential.key_id))
