"""The ingestion pipeline as the local host runs it: Azurite → Event Grid stand-in → queue → indexer."""

from __future__ import annotations

from dataclasses import dataclass

import function_app
from devhost.eventgrid import BlobEventSource
from devhost.functions import registrations
from devhost.servicebus import QueueWorker
from shared.bootstrap import services


@dataclass
class Pipeline:
    events: BlobEventSource
    worker: QueueWorker

    def settle(self, rounds: int = 5) -> None:
        """Deliver blob events and run queued jobs until nothing changes."""
        for _ in range(rounds):
            delivered = self.events.poll_once()
            self.worker.drain()
            if delivered == 0:
                return


def build_pipeline() -> Pipeline:
    parts = services()
    regs = {r.trigger_type: r for r in registrations(function_app.app)}
    # The local host's queue (its composition: devhost/services.py) is the one the app sends to.
    events = BlobEventSource(parts.blobs.container, regs["eventGridTrigger"])  # type: ignore[attr-defined]
    return Pipeline(events, QueueWorker(parts.job_queue, regs["serviceBusTrigger"], lock_s=60))  # type: ignore[arg-type]
