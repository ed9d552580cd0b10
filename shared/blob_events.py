"""Blob events from Event Grid: record the blob version on its document and queue the work.

Event Grid delivers at least once and out of order. Per blob, the event's ``sequencer`` orders
versions: an event older than what the document already recorded is a no-op, and a repeat of
the current version only re-sends its job (same message id, so the queue drops the duplicate).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from shared.config import Settings
from shared.db import Database
from shared.errors import Invalid
from shared.jobs import IndexJob
from shared.ports import BlobStore, JobQueue
from shared.storage import BlobRef

_log = logging.getLogger(__name__)

CREATED = "Microsoft.Storage.BlobCreated"
DELETED = "Microsoft.Storage.BlobDeleted"
_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<name>.+)$")


@dataclass(frozen=True)
class BlobEvent:
    event_id: str
    event_type: str
    container: str
    name: str
    etag: str | None
    sequencer: str
    size: int | None


def parse_event(event_id: str, event_type: str, subject: str, data: Any) -> BlobEvent | None:
    """A blob event we handle, or None for event types we ignore. Malformed events raise Invalid."""
    if event_type not in (CREATED, DELETED):
        return None
    match = _SUBJECT.match(subject or "")
    if not match:
        raise Invalid(f"Unexpected event subject {subject[:200]!r}.")
    if not isinstance(data, dict) or not isinstance(data.get("sequencer"), str) or not data["sequencer"]:
        raise Invalid("Blob event without a sequencer.")
    etag = data.get("eTag") if isinstance(data.get("eTag"), str) else None
    if event_type == CREATED and not etag:
        raise Invalid("BlobCreated event without an eTag.")
    size = data.get("contentLength") if isinstance(data.get("contentLength"), int) else None
    return BlobEvent(event_id, event_type, match["container"], match["name"], etag, data["sequencer"], size)


def sequencer_key(sequencer: str | None) -> tuple[int, str]:
    """Sequencers are fixed-width hex in practice; order by length first in case widths ever differ."""
    return (-1, "") if sequencer is None else (len(sequencer), sequencer.lower())


def _etag_key(etag: str | None) -> str | None:
    return None if etag is None else etag.strip('"')


def handle_blob_event(
    db: Database, queue: JobQueue, event: BlobEvent, *, settings: Settings, blobs: BlobStore | None = None
) -> str:
    """Apply one event; returns what happened (for logs and tests). Raises only for transient errors.

    A SAS URL cannot cap the size of what is uploaded, so a blob larger than the size declared
    when its URL was issued is checked again here: past ``max_bytes`` or past the plan's storage
    quota, the document fails with the reason and the blob is deleted. A blob whose document was
    deleted (or never existed) is deleted too: an upload URL stays valid for a few minutes after
    its document is gone, and what it writes must not stay unbilled.
    """
    container, max_bytes = settings.upload_container, settings.max_upload_bytes
    if event.container != container:
        _log.warning("ignoring blob event for container %s", event.container)
        return "ignored:container"
    try:
        ref = BlobRef.parse(event.name)
    except Invalid:
        _log.warning("ignoring blob event outside the <tenant>/<collection>/<document> layout")
        return "ignored:path"
    with db.transaction(tenant_id=ref.tenant_id) as conn:
        row = conn.execute(
            "SELECT status, blob_etag, blob_sequencer, size_bytes FROM documents"
            " WHERE tenant_id = %s AND collection_id = %s AND document_id = %s FOR UPDATE",
            (ref.tenant_id, ref.collection_id, ref.document_id),
        ).fetchone()
        newer = row is not None and sequencer_key(event.sequencer) > sequencer_key(row["blob_sequencer"])
        if row is None:
            if event.event_type == DELETED:
                return "ignored:unknown-document"
            # Its document (or collection) was deleted while the upload URL was still valid: keep nothing.
            _log.warning("blob created for a document that no longer exists; removing it")
            outcome, job = "removed:unknown-document", None
        elif not newer and event.sequencer != row["blob_sequencer"]:
            return "stale"
        elif event.event_type == DELETED:
            outcome, job = (
                _deleted(conn, ref, event, newer),
                IndexJob("remove", ref.tenant_id, ref.collection_id, ref.document_id, None, event.sequencer),
            )
        elif row["status"] == "deleted":
            outcome, job = "removed:deleted", None
        elif newer and (reason := _oversize(conn, ref, event, row["size_bytes"], max_bytes, settings)):
            _refuse(conn, ref, event, reason)
            outcome, job = "refused:oversize", None
        else:
            outcome, job = (
                _created(conn, ref, event, newer),
                IndexJob(
                    "index", ref.tenant_id, ref.collection_id, ref.document_id, _etag_key(event.etag), event.sequencer
                ),
            )
    if job is None:
        if blobs is not None:
            blobs.delete(ref)
        return outcome
    # Sent after the version is committed. If sending fails, the event is retried; the retry is a
    # "same" event that re-sends the identical message id.
    queue.send(job.message_id, job.to_body())
    return outcome


def _deleted(conn: Any, ref: BlobRef, event: BlobEvent, newer: bool) -> str:
    if newer:
        # A failed document stays failed, with its reason, when its blob goes (an oversize upload).
        conn.execute(
            "UPDATE documents SET status = CASE WHEN status = 'failed' THEN status ELSE 'deleted' END,"
            " blob_sequencer = %s, updated_at = now() WHERE tenant_id = %s AND document_id = %s",
            (event.sequencer, ref.tenant_id, ref.document_id),
        )
    return "deleted"


def _created(conn: Any, ref: BlobRef, event: BlobEvent, newer: bool) -> str:
    if not newer:
        return "requeued"
    conn.execute(
        "UPDATE documents SET blob_etag = %s, blob_sequencer = %s, status = 'queued', error = NULL,"
        " size_bytes = coalesce(%s, size_bytes), updated_at = now() WHERE tenant_id = %s AND document_id = %s",
        (_etag_key(event.etag), event.sequencer, event.size, ref.tenant_id, ref.document_id),
    )
    return "queued"


def _oversize(
    conn: Any, ref: BlobRef, event: BlobEvent, declared: int | None, max_bytes: int | None, settings: Settings
) -> str | None:
    """Why this blob must be refused for its size, or None."""
    if event.size is None or declared is None or event.size <= declared:
        return None
    if max_bytes is not None and event.size > max_bytes:
        return f"The uploaded file is {event.size:,} bytes; the limit is {max_bytes:,} bytes."
    from shared import billing
    from shared.errors import QuotaExceeded

    try:
        billing.check_storage_growth(conn, ref.tenant_id, event.size - declared, settings=settings)
    except QuotaExceeded as exc:
        return exc.detail
    return None


def _refuse(conn: Any, ref: BlobRef, event: BlobEvent, reason: str) -> None:
    conn.execute(
        "UPDATE documents SET blob_etag = %s, blob_sequencer = %s, status = 'failed', error = %s, retryable = false, updated_at = now()"
        " WHERE tenant_id = %s AND document_id = %s",
        (_etag_key(event.etag), event.sequencer, reason, ref.tenant_id, ref.document_id),
    )
