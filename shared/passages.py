"""Passages: one chunk of a document with its neighbours, to show a search hit or a citation in context."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared import access
from shared.db import Database
from shared.errors import Invalid, NotFound
from shared.tenancy import Caller

MAX_CONTEXT = 5  # neighbours on each side at most
_CHUNK_ID_MAX = 2**63 - 1


def parse_chunk_id(value: str) -> int:
    """A chunk id from a path; malformed ids are 'not found', as with every other id (ids are opaque)."""
    if not value.isascii() or not value.isdigit() or len(value) > 19 or not 0 < int(value) <= _CHUNK_ID_MAX:
        raise NotFound("No such passage.")
    return int(value)


def get_passage(db: Database, caller: Caller, document_id: UUID, chunk_id: int, *, context: int = 2) -> dict[str, Any]:
    """The chunk ``chunk_id`` of ``document_id`` and up to ``context`` chunks before and after it, in order.

    Scoped to the caller's workspace and the collections they may read by row-level security (and the
    workspace in SQL too); a chunk of another document, a deleted document, a collection the caller
    may not read or another workspace is the same 404.
    """
    if not 0 <= context <= MAX_CONTEXT:
        raise Invalid(f"Query parameter 'context' must be between 0 and {MAX_CONTEXT}.", fields=["context"])
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)  # a restricted collection's chunks are not there for this caller
        target = conn.execute(
            "SELECT c.ordinal, d.document_id, d.collection_id, d.filename, d.pages FROM chunks c"
            " JOIN documents d ON d.tenant_id = c.tenant_id AND d.document_id = c.document_id"
            " WHERE c.tenant_id = %s AND c.document_id = %s AND c.chunk_id = %s AND d.status <> 'deleted'",
            (caller.tenant_id, document_id, chunk_id),
        ).fetchone()
        if target is None:
            raise NotFound("No such passage.")
        rows = conn.execute(
            "SELECT chunk_id, ordinal, heading_path, body, page_start, page_end, char_start, char_end FROM chunks"
            " WHERE tenant_id = %s AND document_id = %s AND ordinal BETWEEN %s AND %s ORDER BY ordinal",
            (caller.tenant_id, document_id, target["ordinal"] - context, target["ordinal"] + context),
        ).fetchall()
    passages = [_shape(r) for r in rows]
    at = next(i for i, r in enumerate(rows) if r["chunk_id"] == chunk_id)
    return {
        "document": {
            "id": str(target["document_id"]),
            "collectionId": str(target["collection_id"]),
            "title": target["filename"],
            "pages": target["pages"],
        },
        "passage": passages[at],
        "before": passages[:at],
        "after": passages[at + 1 :],
    }


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "chunkId": str(row["chunk_id"]),
        "ordinal": row["ordinal"],
        "headingPath": row["heading_path"],
        "text": row["body"],
        "pages": None if row["page_start"] is None else {"start": row["page_start"], "end": row["page_end"]},
        "offsets": {"start": row["char_start"], "end": row["char_end"]},
    }
