"""The orphan sweep: delete upload blobs that no live document accounts for, and report each one.

Deletions normally happen with the document (shared/documents.py), the collection
(shared/collections.py) or the blob's own event (shared/blob_events.py). Whatever those miss
(Blob Storage was down at that moment, an event was lost) is found here. A blob is removed when

- ``no-document``: no document row has its name (the document or its collection is gone);
- ``deleted``: its document is marked deleted;
- ``unbilled``: its document failed and the blob is larger than the size the document counts
  for (an oversize upload that was refused but could not be deleted then).

Blobs younger than the grace period are left alone: an upload URL may still be writing them and
their event may not have arrived. Names outside Folio's ``<tenant>/<collection>/<document>``
layout are reported, never deleted: Folio did not make them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from shared.db import Database
from shared.errors import Invalid, Unavailable
from shared.storage import BlobRef, StoredBlob

_log = logging.getLogger(__name__)

_BATCH = 1000  # document ids looked up per statement
_LISTED = 100  # names a report lists per kind (the counts are complete)


@runtime_checkable
class SweepableBlobs(Protocol):
    """What the sweep needs from the upload container (``AzureBlobStore`` has it)."""

    def list_blobs(self) -> Iterable[StoredBlob]: ...

    def delete_name(self, name: str) -> bool: ...


@dataclass
class SweepReport:
    examined: int = 0
    too_new: int = 0
    foreign: list[str] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "tooNew": self.too_new,
            "removed": len(self.removed),
            "removedBytes": sum(r["size"] for r in self.removed),
            "removedBlobs": self.removed[:_LISTED],
            "foreign": self.foreign[:_LISTED],
            "failed": self.failed[:_LISTED],
        }


def grace_period(upload_sas_minutes: int) -> dt.timedelta:
    """Longer than an upload URL lives, plus an hour for its event to arrive."""
    return dt.timedelta(minutes=upload_sas_minutes + 60)


def sweep(db: Database, blobs: SweepableBlobs, *, grace: dt.timedelta, now: dt.datetime | None = None) -> SweepReport:
    """Delete orphaned blobs older than ``grace``; the report names each one and why."""
    now = now or dt.datetime.now(dt.UTC)
    report = SweepReport()
    by_tenant: dict[UUID, list[tuple[BlobRef, StoredBlob]]] = defaultdict(list)
    for blob in blobs.list_blobs():
        report.examined += 1
        if blob.last_modified > now - grace:
            report.too_new += 1
            continue
        try:
            ref = BlobRef.parse(blob.name)
        except Invalid:
            report.foreign.append(blob.name)
            continue
        by_tenant[ref.tenant_id].append((ref, blob))
    for tenant_id, found in by_tenant.items():
        for start in range(0, len(found), _BATCH):
            for ref, blob, reason in _orphans(db, tenant_id, found[start : start + _BATCH]):
                try:
                    blobs.delete_name(blob.name)
                except Unavailable:
                    report.failed.append(blob.name)
                    continue
                report.removed.append({"name": ref.name, "size": blob.size, "reason": reason})
    return report


def _orphans(
    db: Database, tenant_id: UUID, found: list[tuple[BlobRef, StoredBlob]]
) -> Iterable[tuple[BlobRef, StoredBlob, str]]:
    with db.transaction(tenant_id=tenant_id) as conn:
        rows = {
            row["document_id"]: row
            for row in conn.execute(
                "SELECT document_id, collection_id, status, size_bytes FROM documents"
                " WHERE tenant_id = %s AND document_id = ANY(%s)",
                (tenant_id, [ref.document_id for ref, _ in found]),
            )
        }
    for ref, blob in found:
        row = rows.get(ref.document_id)
        if row is None or row["collection_id"] != ref.collection_id:
            yield ref, blob, "no-document"
        elif row["status"] == "deleted":
            yield ref, blob, "deleted"
        elif row["status"] == "failed" and blob.size > (row["size_bytes"] or 0):
            yield ref, blob, "unbilled"
