"""Local Service Bus trigger: drives the app's queue-triggered function from devhost's PostgreSQL queue.

Same contract as the Functions host: peek-lock a message, call the function, complete on return,
abandon on exception (redelivered with delivery_count + 1), dead-letter after the maximum.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

from azure.functions.servicebus import ServiceBusMessage

from devhost.functions import Registration
from devhost.http_server import invoke
from devhost.local_queue import PostgresQueue, ReceivedMessage

_log = logging.getLogger("devhost.servicebus")


def to_function_message(message: ReceivedMessage, lock_s: float) -> ServiceBusMessage:
    now = dt.datetime.now(dt.UTC)
    return ServiceBusMessage(
        body=json.dumps(message.body).encode(),
        message_id=message.message_id,
        delivery_count=message.delivery_count,
        lock_token=message.lock_token,
        locked_until=now + dt.timedelta(seconds=lock_s),
        enqueued_time_utc=message.enqueued_at,
        sequence_number=message.sequence_number,
        content_type="application/json",
        application_properties={},
        user_properties={},
    )


class QueueWorker:
    def __init__(
        self, queue: PostgresQueue, registration: Registration, *, lock_s: float = 600.0, idle_wait_s: float = 0.2
    ) -> None:
        self.queue = queue
        self._registration = registration
        self._lock_s = lock_s  # at least the function timeout, so a slow job is not redelivered meanwhile
        self._idle_wait = idle_wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def process_one(self) -> bool:
        received = self.queue.receive(1, self._lock_s)
        if not received:
            return False
        message = received[0]
        try:
            invoke(self._registration, to_function_message(message, self._lock_s))
        except Exception as exc:
            _log.warning(
                "message %s failed on delivery %s: %s",
                message.message_id,
                message.delivery_count,
                type(exc).__name__,
                exc_info=True,
            )
            self.queue.abandon(message, f"{type(exc).__name__}: {str(exc)[:500]}")
        else:
            self.queue.complete(message)
        return True

    def drain(self, timeout_s: float = 60.0) -> None:
        """Process until the queue has nothing ready (tests use this instead of sleeping)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.process_one() and self.queue.active_count() == 0:
                return
        raise TimeoutError("queue did not drain")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="devhost-servicebus", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.process_one():
                    self._stop.wait(self._idle_wait)
            except Exception:
                _log.exception("queue worker error")
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
