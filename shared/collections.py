"""Collections: named groups of documents inside a workspace."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

import psycopg

from shared import access, audit
from shared.config import Settings
from shared.db import Conn, Database, one
from shared.errors import Conflict, Invalid, NotFound, Unavailable
from shared.ports import BlobStore
from shared.storage import BlobRef
from shared.tenancy import Caller, Role

_log = logging.getLogger(__name__)

# Restricted collections the caller may not read are not there for them (migration 0013).
VISIBLE = access.VISIBLE
_COLUMNS = (
    "c.collection_id, c.name, c.description, c.created_at, c.access,"
    " (SELECT count(*) FROM documents d WHERE d.tenant_id = c.tenant_id AND d.collection_id = c.collection_id"
    "  AND d.status <> 'deleted') AS documents"
)


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["collection_id"]),
        "name": row["name"],
        "description": row["description"],
        "createdAt": row["created_at"].isoformat(),
        "documents": row["documents"],
        "access": row["access"],
    }


def create_collection(
    db: Database, caller: Caller, name: str, description: str = "", *, settings: Settings
) -> dict[str, Any]:
    caller.require(Role.MEMBER)
    collection_id = uuid4()
    try:
        with db.transaction(caller.tenant_id, caller.user_id) as conn:
            # The tenant row serialises concurrent creations, so the cap holds exactly.
            conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s FOR UPDATE", (caller.tenant_id,))
            count = one(
                conn.execute(
                    "SELECT count(*) AS n FROM collections WHERE tenant_id = %s", (caller.tenant_id,)
                ).fetchone()
            )["n"]
            if count >= settings.max_collections:
                raise Conflict(
                    f"This workspace has {count} collections, the most it may have; delete one first.",
                    limit="maxCollections",
                )
            conn.execute(
                "INSERT INTO collections (tenant_id, collection_id, name, description, created_by)"
                " VALUES (%s, %s, %s, %s, %s)",
                (caller.tenant_id, collection_id, name, description, caller.user_id),
            )
            audit.record(conn, caller, "collection.create", "collection", collection_id, name=name)
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"A collection named {name!r} already exists in this workspace.") from None
    return get_collection(db, caller, collection_id)


def list_collections(db: Database, caller: Caller) -> list[dict[str, Any]]:
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM collections c WHERE c.tenant_id = %s AND {VISIBLE} ORDER BY c.name, c.collection_id",
            (caller.tenant_id,),
        ).fetchall()
    return [_shape(r) for r in rows]


def get_collection(db: Database, caller: Caller, collection_id: UUID) -> dict[str, Any]:
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM collections c WHERE c.tenant_id = %s AND c.collection_id = %s AND {VISIBLE}",
            (caller.tenant_id, collection_id),
        ).fetchone()
    if row is None:
        raise NotFound("No such collection.")
    return _shape(row)


def delete_collection(db: Database, blobs: BlobStore, caller: Caller, collection_id: UUID) -> int:
    """Deletes the collection with its documents, chunks and blobs; returns how many blobs went.

    The rows go first, in one transaction. A blob that cannot be deleted now has no document any
    more, so the orphan sweep (shared/blob_sweep.py) removes it later; an upload still in flight
    for one of these documents is removed by its own BlobCreated event.
    """
    caller.require(Role.MEMBER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)
        documents = conn.execute(
            "SELECT document_id FROM documents WHERE tenant_id = %s AND collection_id = %s",
            (caller.tenant_id, collection_id),
        ).fetchall()
        row = conn.execute(
            f"DELETE FROM collections c WHERE c.tenant_id = %s AND c.collection_id = %s AND {VISIBLE} RETURNING name",
            (caller.tenant_id, collection_id),
        ).fetchone()
        if row is None:
            raise NotFound("No such collection.")
        audit.record(
            conn, caller, "collection.delete", "collection", collection_id, name=row["name"], documents=len(documents)
        )
    refs = [BlobRef(caller.tenant_id, collection_id, d["document_id"]) for d in documents]
    return _delete_blobs(blobs, refs)


def _delete_blobs(blobs: BlobStore, refs: list[BlobRef]) -> int:
    def delete(ref: BlobRef) -> bool:
        try:
            return blobs.delete(ref)
        except Unavailable:
            _log.warning("blob %s of a deleted collection is left to the orphan sweep", ref.name, exc_info=True)
            return False

    if not refs:
        return 0
    with ThreadPoolExecutor(max_workers=min(8, len(refs)), thread_name_prefix="folio-blob-delete") as pool:
        return sum(pool.map(delete, refs))


# --- who may read a collection (owners only) ---------------------------------------------------

MAX_MEMBER_GRANTS = 500
MAX_GROUP_GRANTS = 200


def get_access(db: Database, caller: Caller, collection_id: UUID) -> dict[str, Any]:
    """Whether the collection is open or restricted, and to whom. Owners only."""
    caller.require(Role.OWNER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        return _access(conn, caller, collection_id)


def set_access(
    db: Database,
    caller: Caller,
    collection_id: UUID,
    *,
    mode: str,
    members: list[UUID],
    groups: list[UUID],
    group_labels: list[str] | None = None,
) -> dict[str, Any]:
    """Replace the collection's access: ``mode`` open or restricted, the members and groups it names.

    The grants are kept whatever the mode (an open collection ignores them), so opening a collection
    and restricting it again restores who could read it. Takes effect for the next statement of
    every caller: the database computes access per statement. Owners only.
    """
    caller.require(Role.OWNER)
    if mode not in ("open", "restricted"):
        raise Invalid("Field 'mode' must be open or restricted.", fields=["mode"])
    member_ids = sorted(set(members))
    if group_labels and len(group_labels) != len(groups):
        # Each list is well formed on its own (400s are for that); together they disagree.
        raise Conflict(
            f"'groupLabels' has {len(group_labels)} labels for {len(groups)} groups; give none, or one per group."
        )
    labels = dict(zip(groups, group_labels or [""] * len(groups), strict=True))
    if len(member_ids) > MAX_MEMBER_GRANTS or len(labels) > MAX_GROUP_GRANTS:
        raise Invalid(f"A collection names at most {MAX_MEMBER_GRANTS} members and {MAX_GROUP_GRANTS} groups.")
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        row = conn.execute(
            "SELECT access FROM collections WHERE tenant_id = %s AND collection_id = %s FOR UPDATE",
            (caller.tenant_id, collection_id),
        ).fetchone()
        if row is None:
            raise NotFound("No such collection.")
        known = {
            r["user_id"]
            for r in conn.execute(
                "SELECT user_id FROM memberships WHERE tenant_id = %s AND user_id = ANY(%s)",
                (caller.tenant_id, member_ids),
            )
        }
        unknown = [str(m) for m in member_ids if m not in known]
        if unknown:  # a state, not a malformed request: they may have left the workspace meanwhile
            raise Conflict(f"Not members of this workspace: {', '.join(unknown)}.")
        conn.execute(
            "UPDATE collections SET access = %s WHERE tenant_id = %s AND collection_id = %s",
            (mode, caller.tenant_id, collection_id),
        )
        conn.execute(
            "DELETE FROM collection_members WHERE tenant_id = %s AND collection_id = %s",
            (caller.tenant_id, collection_id),
        )
        conn.execute(
            "DELETE FROM collection_groups WHERE tenant_id = %s AND collection_id = %s",
            (caller.tenant_id, collection_id),
        )
        if member_ids:
            conn.execute(
                "INSERT INTO collection_members (tenant_id, collection_id, user_id, granted_by)"
                " SELECT %s, %s, u, %s FROM unnest(%s::uuid[]) AS u",
                (caller.tenant_id, collection_id, caller.user_id, member_ids),
            )
        if labels:
            conn.execute(
                "INSERT INTO collection_groups (tenant_id, collection_id, group_id, label, granted_by)"
                " SELECT %s, %s, g, l, %s FROM unnest(%s::uuid[], %s::text[]) AS x(g, l)",
                (
                    caller.tenant_id,
                    collection_id,
                    caller.user_id,
                    list(labels),
                    list(labels.values()),
                ),
            )
        audit.record(
            conn,
            caller,
            "collection.access",
            "collection",
            collection_id,
            previous=row["access"],
            access=mode,
            members=[str(m) for m in member_ids],
            groups=[str(g) for g in labels],
        )
        return _access(conn, caller, collection_id)


def _access(conn: Conn, caller: Caller, collection_id: UUID) -> dict[str, Any]:
    row = conn.execute(
        "SELECT access FROM collections WHERE tenant_id = %s AND collection_id = %s", (caller.tenant_id, collection_id)
    ).fetchone()
    if row is None:
        raise NotFound("No such collection.")
    members = conn.execute(
        "SELECT m.user_id, w.email, w.display_name, w.role FROM collection_members m"
        " LEFT JOIN workspace_members w ON w.user_id = m.user_id"
        " WHERE m.tenant_id = %s AND m.collection_id = %s ORDER BY lower(w.email), m.user_id",
        (caller.tenant_id, collection_id),
    ).fetchall()
    groups = conn.execute(
        "SELECT group_id, label FROM collection_groups WHERE tenant_id = %s AND collection_id = %s"
        " ORDER BY lower(label), group_id",
        (caller.tenant_id, collection_id),
    ).fetchall()
    return {
        "collectionId": str(collection_id),
        "mode": row["access"],
        "members": [
            {"userId": str(m["user_id"]), "email": m["email"], "name": m["display_name"], "role": m["role"]}
            for m in members
        ],
        "groups": [{"id": str(g["group_id"]), "label": g["label"]} for g in groups],
    }
