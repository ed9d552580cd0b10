"""Collections: named groups of documents inside a workspace."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

import psycopg

from shared import audit
from shared.config import Settings
from shared.db import Database, one
from shared.errors import Conflict, NotFound, Unavailable
from shared.ports import BlobStore
from shared.storage import BlobRef
from shared.tenancy import Caller, Role

_log = logging.getLogger(__name__)

_COLUMNS = (
    "c.collection_id, c.name, c.description, c.created_at,"
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
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM collections c WHERE c.tenant_id = %s ORDER BY c.name, c.collection_id",
            (caller.tenant_id,),
        ).fetchall()
    return [_shape(r) for r in rows]


def get_collection(db: Database, caller: Caller, collection_id: UUID) -> dict[str, Any]:
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM collections c WHERE c.tenant_id = %s AND c.collection_id = %s",
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
        documents = conn.execute(
            "SELECT document_id FROM documents WHERE tenant_id = %s AND collection_id = %s",
            (caller.tenant_id, collection_id),
        ).fetchall()
        row = conn.execute(
            "DELETE FROM collections WHERE tenant_id = %s AND collection_id = %s RETURNING name",
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
