"""Local Event Grid: turns blob writes in Azurite into BlobCreated/BlobDeleted events for the app.

Azurite raises no events, so the container is polled and diffed. Events carry the real schema
(subject, eTag, contentLength, sequencer, url), so the function under test is the one Azure runs.
Two writes between polls produce one event for the newest version, which is also a legal
Event Grid outcome as far as the handler is concerned.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from typing import Any

import azure.functions as func

from devhost.functions import Registration
from devhost.http_server import invoke

_log = logging.getLogger("devhost.eventgrid")


class BlobEventSource:
    def __init__(
        self,
        container_client: Any,
        registration: Registration,
        *,
        account: str = "devstoreaccount1",
        interval_s: float = 0.3,
    ) -> None:
        self._container = container_client
        self._registration = registration
        self._account = account
        self._interval = interval_s
        self._known: dict[str, str] = {}
        self._last_sequencer = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered: list[func.EventGridEvent] = []

    def _sequencer(self) -> str:
        # Strictly increasing across restarts: based on the clock, bumped when calls are closer than 1 ns.
        self._last_sequencer = max(self._last_sequencer + 1, time.time_ns())
        return f"{self._last_sequencer:032x}"

    def make_event(self, event_type: str, name: str, props: dict[str, Any] | None) -> func.EventGridEvent:
        container = self._container.container_name
        data: dict[str, Any] = {
            "api": "PutBlob" if event_type.endswith("Created") else "DeleteBlob",
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "contentType": (props or {}).get("content_type") or "application/octet-stream",
            "blobType": "BlockBlob",
            "url": f"{self._container.url}/{name}",
            "sequencer": self._sequencer(),
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        }
        if props is not None:
            data["eTag"] = props["etag"]
            data["contentLength"] = props["size"]
        return func.EventGridEvent(
            id=str(uuid.uuid4()),
            data=data,
            topic=f"/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/"
            f"{self._account}",
            subject=f"/blobServices/default/containers/{container}/blobs/{name}",
            event_type=event_type,
            event_time=dt.datetime.now(dt.UTC),
            data_version="",
        )

    def poll_once(self) -> int:
        """Diff the container against the last listing and deliver an event per change."""
        current: dict[str, dict[str, Any]] = {}
        for blob in self._container.list_blobs():
            current[blob.name] = {
                "etag": str(blob.etag).strip('"'),
                "size": blob.size,
                "content_type": blob.content_settings.content_type,
            }
        events = []
        for name, props in current.items():
            if self._known.get(name) != props["etag"]:
                events.append(self.make_event("Microsoft.Storage.BlobCreated", name, props))
        for name in set(self._known) - set(current):
            events.append(self.make_event("Microsoft.Storage.BlobDeleted", name, None))
        for event in events:
            self.deliver(event)
        # Only remember what was delivered: a failed delivery is retried on the next poll.
        self._known = {name: props["etag"] for name, props in current.items()}
        return len(events)

    def deliver(self, event: func.EventGridEvent) -> None:
        for attempt in range(1, 6):  # Event Grid retries failed deliveries with backoff
            try:
                invoke(self._registration, event)
                self.delivered.append(event)
                return
            except Exception:
                _log.exception("event delivery %s failed (attempt %s)", event.id, attempt)
                time.sleep(min(2**attempt * 0.1, 2))
        _log.error("event %s dropped after 5 attempts (Event Grid would dead-letter it)", event.id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="devhost-eventgrid", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                _log.exception("polling Azurite failed")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
