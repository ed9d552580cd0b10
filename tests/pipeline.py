"""The ingestion pipeline as the local host runs it: Azurite → Event Grid stand-in → queue → indexer."""

from __future__ import annotations

from dataclasses import dataclass

import function_app
from devhost.eventgrid import BlobEventSource
from devhost.functions import registrations
from devhost.servicebus import QueueWorker
from shared.config import get_settings
from shared.db import get_database
from shared.queue import PostgresQueue
from shared.storage import get_blob_store


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
    settings = get_settings()
    regs = {r.trigger_type: r for r in registrations(function_app.app)}
    queue = PostgresQueue(get_database(), settings.index_queue_name, max_delivery=settings.index_max_delivery)
    events = BlobEventSource(get_blob_store(settings).container, regs["eventGridTrigger"])
    return Pipeline(events, QueueWorker(queue, regs["serviceBusTrigger"], lock_s=60))
