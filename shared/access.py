"""Who may read a collection inside a workspace: the caller's access context in the database (migration 0013).

The database decides (``folio_hidden_collections()``); this module only gives it what it cannot know
by itself: that a transaction is an API key's (open collections only), and the Entra groups of a
user's latest token. A user's role and named grants it reads from its own tables.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from uuid import UUID

from shared.db import Conn, enter_tenant
from shared.identity.principal import Principal

if TYPE_CHECKING:
    from shared.tenancy import Caller

# SQL: collection ``c`` is one the transaction may read (folio_hidden_collections() runs once per statement).
VISIBLE = "c.collection_id <> ALL ((SELECT folio_hidden_collections())::uuid[])"
API_KEY = "api_key"  # app.access of an API key's transactions: open collections only
# A user's groups are recorded again after this long even when unchanged in this process, so a
# record written meanwhile by another instance (from another of the user's tokens) does not last.
_RECORD_EVERY_S = 60.0


def scope(conn: Conn, caller: Caller) -> None:
    """Narrow the open transaction to what ``caller`` may read, where the database cannot tell by itself.

    A user's transaction needs nothing (the database reads their role and grants); an API key's is
    marked, signed, so that it sees open collections only. Call it first in every transaction that
    reads or writes documents or chunks for a caller.
    """
    if caller.actor_type != "user":
        enter_tenant(conn, caller.tenant_id, None, access=API_KEY)


@contextmanager
def whole_workspace(conn: Conn, caller: Caller) -> Iterator[None]:
    """Within the block the transaction reads the whole workspace, as the system does; then ``caller``'s view again.

    For what the workspace as a whole is charged for (the plan's documents and storage are every
    collection's, also those the caller may not read): nothing read here may reach the caller.
    """
    enter_tenant(conn, caller.tenant_id, None)
    try:
        yield
    finally:
        enter_tenant(conn, caller.tenant_id, caller.user_id, access="" if caller.actor_type == "user" else API_KEY)


def groups_claim(groups: frozenset[str], overage: bool) -> str:
    """``app.access`` while recording groups: exactly what folio_record_groups() accepts."""
    ordered = sorted(str(UUID(g)) for g in groups)
    return f"groups:{1 if overage else 0}:{','.join(ordered)}"


class _Recorded:
    """(tenant, user) -> the groups claim this process last recorded, and when."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._claims: dict[tuple[UUID, UUID], tuple[str, float]] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def fresh(self, key: tuple[UUID, UUID], claim: str) -> bool:
        found = self._claims.get(key)
        return found is not None and found[0] == claim and time.monotonic() - found[1] < _RECORD_EVERY_S

    def put(self, key: tuple[UUID, UUID], claim: str) -> None:
        with self._lock:
            if len(self._claims) >= self._capacity:
                self._claims.clear()
            self._claims[key] = (claim, time.monotonic())


_recorded = _Recorded()


def record_groups(conn: Conn, tenant_id: UUID, user_id: UUID, principal: Principal) -> None:
    """Keep the groups of ``principal``'s token as the user's groups in this workspace.

    Runs in the caller's resolving transaction; writes only when the groups differ from what this
    process recorded in the last minute (and the database writes only when they differ from its row).
    """
    claim = groups_claim(principal.groups, principal.groups_overage)
    key = (tenant_id, user_id)
    if _recorded.fresh(key, claim):
        return
    # Signed as this transaction's access: the function takes exactly these groups for this user. The
    # caller's transaction ends right after, so the mark does not outlive the call.
    enter_tenant(conn, tenant_id, user_id, access=claim)
    conn.execute(
        "SELECT folio_record_groups(%s::uuid[], %s)",
        ([str(UUID(g)) for g in principal.groups], principal.groups_overage),
    )
    _recorded.put(key, claim)
