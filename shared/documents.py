"""Documents: upload requests, status, listing, deletion and re-indexing (the user-facing half)."""

from __future__ import annotations

import logging
import os
from typing import Any
from uuid import UUID, uuid4

from shared import access, audit, billing
from shared.config import Settings
from shared.db import Database
from shared.errors import Conflict, Invalid, NotFound, Unavailable
from shared.jobs import IndexJob
from shared.ports import BlobStore
from shared.storage import BlobMissing, BlobRef
from shared.tenancy import Caller, Role

_log = logging.getLogger(__name__)

# What users may upload, by extension and declared type. The indexer decides by content again.
ALLOWED_TYPES: dict[str, frozenset[str]] = {
    ".pdf": frozenset({"application/pdf"}),
    ".docx": frozenset({"application/vnd.openxmlformats-officedocument.wordprocessingml.document"}),
    ".html": frozenset({"text/html"}),
    ".htm": frozenset({"text/html"}),
    ".md": frozenset({"text/markdown", "text/x-markdown", "text/plain"}),
    ".markdown": frozenset({"text/markdown", "text/x-markdown", "text/plain"}),
    ".txt": frozenset({"text/plain"}),
    ".pptx": frozenset({"application/vnd.openxmlformats-officedocument.presentationml.presentation"}),
    ".xlsx": frozenset({"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}),
    ".csv": frozenset({"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"}),
    ".tsv": frozenset({"text/tab-separated-values", "text/plain"}),
}
# Scans as images: read by OCR (Azure AI Document Intelligence), so accepted only where it is configured.
OCR_TYPES: dict[str, frozenset[str]] = {
    ".png": frozenset({"image/png"}),
    ".jpg": frozenset({"image/jpeg"}),
    ".jpeg": frozenset({"image/jpeg"}),
    ".tif": frozenset({"image/tiff"}),
    ".tiff": frozenset({"image/tiff"}),
}
# Browsers send these when they do not know better; the extension then decides.
_GENERIC_TYPES = frozenset({"", "application/octet-stream"})


def _check_upload(filename: str, content_type: str, size: int, max_bytes: int, *, ocr: bool = False) -> str:
    if "/" in filename or "\\" in filename or filename in {".", ".."}:
        raise Invalid("Field 'filename' must be a file name, not a path.", fields=["filename"])
    extension = os.path.splitext(filename)[1].lower()
    allowed = {**ALLOWED_TYPES, **OCR_TYPES} if ocr else ALLOWED_TYPES
    if extension in OCR_TYPES and not ocr:
        raise Invalid(
            f"Images ({extension}) are read with OCR (Azure AI Document Intelligence), which this deployment "
            "has not set up (setting DOCUMENT_INTELLIGENCE_ENDPOINT); upload the document as PDF with text, "
            "DOCX, PPTX, XLSX, CSV, HTML, Markdown or plain text.",
            fields=["filename"],
        )
    if extension not in allowed:
        raise Invalid(
            f"Files of type {extension or '(none)'!r} are not supported; upload PDF, DOCX, PPTX, XLSX, CSV, "
            f"HTML, Markdown{', plain text or an image (PNG, JPEG, TIFF)' if ocr else ' or plain text'}.",
            fields=["filename"],
        )
    declared = content_type.split(";")[0].strip().lower()
    if declared not in _GENERIC_TYPES and declared not in allowed[extension]:
        raise Invalid(f"Content type {declared!r} does not match a {extension} file.", fields=["contentType"])
    if size <= 0:
        raise Invalid("Field 'size' must be positive; empty files cannot be indexed.", fields=["size"])
    if size > max_bytes:
        raise Invalid(
            f"The file is {size} bytes; the limit is {max_bytes} bytes.", fields=["size"], limit="maxUploadBytes"
        )
    return declared or "application/octet-stream"


def request_upload(
    db: Database,
    blobs: BlobStore,
    caller: Caller,
    collection_id: UUID,
    *,
    filename: str,
    content_type: str,
    size: int,
    settings: Settings,
) -> dict[str, Any]:
    """Create the document row and a short-lived URL the browser PUTs the file to."""
    caller.require(Role.MEMBER)
    declared = _check_upload(
        filename, content_type, size, settings.max_upload_bytes, ocr=bool(settings.document_intelligence_endpoint)
    )
    document_id = uuid4()
    ref = BlobRef(caller.tenant_id, collection_id, document_id)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)
        if not conn.execute(
            f"SELECT 1 FROM collections c WHERE c.tenant_id = %s AND c.collection_id = %s AND {access.VISIBLE}",
            (caller.tenant_id, collection_id),
        ).fetchone():
            raise NotFound("No such collection.")
        # 402 past the plan's documents or storage, counted over every collection, restricted ones too.
        with access.whole_workspace(conn, caller):
            billing.check_upload(conn, caller, size, settings=settings)
        conn.execute(
            "INSERT INTO documents (tenant_id, document_id, collection_id, filename, content_type, size_bytes,"
            " blob_path, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (caller.tenant_id, document_id, collection_id, filename, declared, size, ref.name, caller.user_id),
        )
        audit.record(conn, caller, "document.upload_requested", "document", document_id, filename=filename, size=size)
    upload = blobs.upload_url(ref)
    return {
        "documentId": str(document_id),
        "uploadUrl": upload.url,
        "expiresAt": upload.expires_at.isoformat(),
        "method": "PUT",
        "headers": {"x-ms-blob-type": "BlockBlob", "Content-Type": declared},
    }


_COLUMNS = (
    "document_id, collection_id, filename, content_type, size_bytes, status, error, retryable, pages, chunk_count,"
    " created_at, updated_at, indexed_at"
)


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": str(row["document_id"]),
        "collectionId": str(row["collection_id"]),
        "filename": row["filename"],
        "contentType": row["content_type"],
        "size": row["size_bytes"],
        "status": row["status"],
        "error": row["error"],
        # Only for a failed document: whether re-indexing it could succeed (false: upload the file again).
        "retryable": row["retryable"] if row["status"] == "failed" else None,
        "pages": row["pages"],
        "chunks": row["chunk_count"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "indexedAt": iso(row["indexed_at"]),
    }


def get_document(db: Database, caller: Caller, document_id: UUID) -> dict[str, Any]:
    """The document's status; a deleted document is not found, as it is for every other call."""
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM documents WHERE tenant_id = %s AND document_id = %s",
            (caller.tenant_id, document_id),
        ).fetchone()
    if row is None or row["status"] == "deleted":
        raise NotFound("No such document.")
    return _shape(row)


def list_documents(
    db: Database, caller: Caller, collection_id: UUID, *, limit: int = 100, include_deleted: bool = False
) -> list[dict[str, Any]]:
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)
        if not conn.execute(
            f"SELECT 1 FROM collections c WHERE c.tenant_id = %s AND c.collection_id = %s AND {access.VISIBLE}",
            (caller.tenant_id, collection_id),
        ).fetchone():
            raise NotFound("No such collection.")
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM documents WHERE tenant_id = %s AND collection_id = %s"
            " AND (%s OR status <> 'deleted') ORDER BY created_at DESC, document_id LIMIT %s",
            (caller.tenant_id, collection_id, include_deleted, limit),
        ).fetchall()
    return [_shape(r) for r in rows]


def delete_document(db: Database, blobs: BlobStore, caller: Caller, document_id: UUID) -> None:
    """Marks the document deleted and deletes its blob (breaking any lease on it).

    The row is committed first, so the deletion stands even if Blob Storage fails now: the blob
    then has no live document and the orphan sweep (shared/blob_sweep.py) removes it later.
    """
    caller.require(Role.MEMBER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)
        row = conn.execute(
            "UPDATE documents SET status = 'deleted', error = NULL, chunk_count = 0, updated_at = now()"
            " WHERE tenant_id = %s AND document_id = %s AND status <> 'deleted' RETURNING collection_id",
            (caller.tenant_id, document_id),
        ).fetchone()
        if row is None:
            raise NotFound("No such document.")
        # Search never shows chunks of a deleted document, even before the removal job runs.
        conn.execute("DELETE FROM chunks WHERE tenant_id = %s AND document_id = %s", (caller.tenant_id, document_id))
        audit.record(conn, caller, "document.delete", "document", document_id)
    try:
        blobs.delete(BlobRef(caller.tenant_id, row["collection_id"], document_id))
    except Unavailable:
        _log.warning("document %s deleted; its blob is left to the orphan sweep", document_id, exc_info=True)


def reindex_document(
    db: Database, queue: Any, caller: Caller, document_id: UUID, blobs: BlobStore | None = None
) -> dict[str, Any]:
    """Queue the current blob version again (e.g. after a failure or a parser upgrade).

    A failure marked not retryable (a refused file, a plan limit, a file no longer stored) is a 409:
    re-indexing the same file cannot succeed. With ``blobs``, a document whose file is gone (an
    upload refused for its size is deleted) is a 409 asking for a new upload, instead of a job that
    can only fail again.
    """
    caller.require(Role.MEMBER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        access.scope(conn, caller)
        row = conn.execute(
            "SELECT collection_id, status, retryable, blob_etag, blob_sequencer FROM documents"
            " WHERE tenant_id = %s AND document_id = %s FOR UPDATE",
            (caller.tenant_id, document_id),
        ).fetchone()
        if row is None or row["status"] == "deleted":
            raise NotFound("No such document.")
        if row["blob_etag"] is None:
            raise Conflict("The document has not been uploaded yet.")
        if row["status"] in ("queued", "processing"):
            raise Conflict(f"The document is already {row['status']}.")
        if row["status"] == "failed" and not row["retryable"]:
            raise Conflict(
                "Indexing this file again would fail the same way; upload the file again"
                " (corrected, or once the plan allows it)."
            )
        if blobs is not None:
            try:
                blobs.properties(BlobRef(caller.tenant_id, row["collection_id"], document_id))
            except BlobMissing:
                raise Conflict(
                    "The uploaded file is no longer stored, so it cannot be indexed again; upload it again."
                ) from None
        conn.execute(
            "UPDATE documents SET status = 'queued', error = NULL, indexed_etag = NULL, updated_at = now()"
            " WHERE tenant_id = %s AND document_id = %s",
            (caller.tenant_id, document_id),
        )
        audit.record(conn, caller, "document.reindex", "document", document_id)
    job = IndexJob(
        "index",
        caller.tenant_id,
        row["collection_id"],
        document_id,
        row["blob_etag"],
        row["blob_sequencer"],
        attempt_tag=str(uuid4()),
    )
    queue.send(job.message_id, job.to_body())
    return get_document(db, caller, document_id)
