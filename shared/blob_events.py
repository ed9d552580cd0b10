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

from shared.db import Database
from shared.errors import Invalid
from shared.jobs import IndexJob
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


def handle_blob_event(db: Database, queue: Any, event: BlobEvent, *, container: str) -> str:
    """Apply one event; returns what happened (for logs and tests). Raises only for transient errors."""
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
            "SELECT status, blob_etag, blob_sequencer FROM documents"
            " WHERE tenant_id = %s AND collection_id = %s AND document_id = %s FOR UPDATE",
            (ref.tenant_id, ref.collection_id, ref.document_id),
        ).fetchone()
        if row is None:
            _log.warning("blob event for an unknown document; ignored")
            return "ignored:unknown-document"
        newer = sequencer_key(event.sequencer) > sequencer_key(row["blob_sequencer"])
        same = event.sequencer == row["blob_sequencer"]
        if not newer and not same:
            return "stale"
        if event.event_type == DELETED:
            if newer:
                conn.execute(
                    "UPDATE documents SET status = 'deleted', blob_sequencer = %s, updated_at = now()"
                    " WHERE tenant_id = %s AND document_id = %s",
                    (event.sequencer, ref.tenant_id, ref.document_id),
                )
            job = IndexJob("remove", ref.tenant_id, ref.collection_id, ref.document_id, None, event.sequencer)
            outcome = "deleted"
        else:
            if row["status"] == "deleted":
                return "ignored:deleted"
            if newer:
                conn.execute(
                    "UPDATE documents SET blob_etag = %s, blob_sequencer = %s, status = 'queued', error = NULL,"
                    " size_bytes = coalesce(%s, size_bytes), updated_at = now()"
                    " WHERE tenant_id = %s AND document_id = %s",
                    (_etag_key(event.etag), event.sequencer, event.size, ref.tenant_id, ref.document_id),
                )
            job = IndexJob("index", ref.tenant_id, ref.collection_id, ref.document_id, _etag_key(event.etag),
                           event.sequencer)
            outcome = "queued" if newer else "requeued"
    # Sent after the version is committed. If sending fails, the event is retried; the retry is a
    # "same" event that re-sends the identical message id.
    queue.send(job.message_id, job.to_body())
    return outcome
