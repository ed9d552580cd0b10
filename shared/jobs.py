"""The index-job message: what the Event Grid handler enqueues and the indexer consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.errors import Invalid


@dataclass(frozen=True)
class IndexJob:
    kind: str  # "index" | "remove"
    tenant_id: UUID
    collection_id: UUID
    document_id: UUID
    etag: str | None
    sequencer: str | None
    attempt_tag: str | None = None  # set by an explicit re-index, so it is not a duplicate of the first

    @property
    def message_id(self) -> str:
        """Derived from blob + version: duplicate events produce the same id, and the queue drops them."""
        key = f"{self.kind}|{self.tenant_id}/{self.collection_id}/{self.document_id}|{self.etag}|{self.attempt_tag}"
        return hashlib.sha256(key.encode()).hexdigest()[:64]

    def to_body(self) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": self.kind,
            "tenantId": str(self.tenant_id),
            "collectionId": str(self.collection_id),
            "documentId": str(self.document_id),
            "etag": self.etag,
            "sequencer": self.sequencer,
            "attemptTag": self.attempt_tag,
        }

    @classmethod
    def from_body(cls, body: Any) -> IndexJob:
        if not isinstance(body, dict) or body.get("v") != 1 or body.get("kind") not in ("index", "remove"):
            raise Invalid("Not an index job message.")
        try:
            return cls(
                body["kind"],
                UUID(body["tenantId"]),
                UUID(body["collectionId"]),
                UUID(body["documentId"]),
                body.get("etag"),
                body.get("sequencer"),
                body.get("attemptTag"),
            )
        except (KeyError, TypeError, ValueError):
            raise Invalid("Malformed index job message.") from None
