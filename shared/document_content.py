"""A document's original file: a short-lived, read-only URL for exactly its blob (the viewer of citations)."""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote
from uuid import UUID

from shared import documents
from shared.db import Database
from shared.errors import Conflict
from shared.storage import BlobMissing, BlobRef, BlobVersion, ReadUrl
from shared.tenancy import Caller

READ_URL_MINUTES = 5  # long enough to open and render one file; a link copied out of the app soon dies

# What the web app does with a file, by its extension (the name the upload was checked against).
FORMATS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".csv": "text",  # shown as the file's own lines; the chunks' table rows match them line by line
    ".tsv": "text",
}
# What the blob is served as. Text formats (HTML included) are plain text: the app renders them as
# text, and even a tab opened on the URL itself never runs a document's HTML or script.
_SERVED_AS = {"pdf": "application/pdf", "html": "text/plain; charset=utf-8"}
_SERVED_AS.update(markdown=_SERVED_AS["html"], text=_SERVED_AS["html"])
_UNSAFE_IN_QUOTES = re.compile(r'[^\x20-\x7e]|["\\%;]')


@runtime_checkable
class ReadableBlobs(Protocol):
    """What this needs from the upload container (``AzureBlobStore`` has it)."""

    def properties(self, ref: BlobRef) -> BlobVersion: ...

    def read_url(
        self, ref: BlobRef, *, minutes: int, content_type: str, disposition: str, now: dt.datetime | None = None
    ) -> ReadUrl: ...


def document_format(filename: str) -> str:
    """``pdf``, ``docx``, ``html``, ``markdown``, ``text``, or ``other`` (a format the viewer only offers to download)."""
    return FORMATS.get(os.path.splitext(filename)[1].lower(), "other")


def attachment(filename: str) -> str:
    """``Content-Disposition: attachment`` with the user's file name (RFC 6266: an ASCII fallback, then UTF-8)."""
    fallback = _UNSAFE_IN_QUOTES.sub("_", filename)[:150] or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def content_url(db: Database, blobs: ReadableBlobs, caller: Caller, document_id: UUID) -> dict[str, Any]:
    """A read-only URL of the document's original, valid for :data:`READ_URL_MINUTES`, with its name and type.

    The document is read exactly as ``GET /api/documents/{id}`` reads it (the caller's workspace, in SQL
    and by row-level security), so another workspace's document, a deleted one or an unknown id are the
    same 404. A document whose file never arrived, failed to index, or is no longer stored is a 409 that
    says so.
    """
    document = documents.get_document(db, caller, document_id)
    if document["status"] == "awaiting_upload":
        raise Conflict("The document's file has not been uploaded yet.")
    if document["status"] == "failed":
        reason = document["error"] or "no reason was recorded"
        raise Conflict(f"The document could not be indexed, so its original is not offered ({reason}).")
    ref = BlobRef(caller.tenant_id, UUID(document["collectionId"]), document_id)
    try:
        stored = blobs.properties(ref)
    except BlobMissing:
        raise Conflict("The document's file is no longer stored; upload it again.") from None
    kind = document_format(document["filename"])
    read = blobs.read_url(
        ref,
        minutes=READ_URL_MINUTES,
        content_type=_SERVED_AS.get(kind, "application/octet-stream"),
        disposition=attachment(document["filename"]),
    )
    return {
        "documentId": document["id"],
        "url": read.url,
        "expiresAt": read.expires_at.isoformat(),
        "filename": document["filename"],
        "contentType": document["contentType"],
        "format": kind,
        "size": stored.size,
        "pages": document["pages"],
    }
