"""The index-job queue: Service Bus in Azure, a PostgreSQL table with the same semantics locally.

Senders see one method, :meth:`JobQueue.send`, keyed by a message id so duplicate sends collapse
(Service Bus duplicate detection; a primary key locally). Only the local host receives from the
PostgreSQL queue; in Azure the Functions host's Service Bus trigger does the receiving.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg.types.json import Jsonb

from shared.config import Settings, get_settings
from shared.lazy import ProcessSingleton
from shared.db import Database
from shared.errors import ConfigError, Unavailable


class JobQueue(Protocol):
    def send(self, message_id: str, body: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    body: dict[str, Any]
    delivery_count: int
    lock_token: str
    enqueued_at: dt.datetime
    sequence_number: int


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: dict[str, Any]
    delivery_count: int
    reason: str | None
    description: str | None
    enqueued_at: dt.datetime


class PostgresQueue:
    """A durable queue with Service Bus peek-lock semantics, for the local host and tests."""

    def __init__(self, db: Database, name: str, *, max_delivery: int = 5, dedupe_window_s: float = 3600) -> None:
        self._db = db
        self.name = name
        self.max_delivery = max_delivery
        self._dedupe_window = dt.timedelta(seconds=dedupe_window_s)

    def send(self, message_id: str, body: dict[str, Any]) -> None:
        with self._db.transaction() as conn:
            # Like Service Bus duplicate detection: a second send of a recent id is dropped.
            conn.execute(
                "DELETE FROM local_queue WHERE queue_name = %s AND message_id = %s AND state = 'completed'"
                " AND settled_at < now() - %s",
                (self.name, message_id, self._dedupe_window),
            )
            conn.execute(
                "INSERT INTO local_queue (queue_name, message_id, body) VALUES (%s, %s, %s)"
                " ON CONFLICT (queue_name, message_id) DO NOTHING",
                (self.name, message_id, Jsonb(body)),
            )

    def receive(self, max_messages: int = 1, lock_s: float = 60.0) -> list[ReceivedMessage]:
        """Lock up to ``max_messages`` ready messages; an expired lock makes a message ready again."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "UPDATE local_queue q SET lock_token = gen_random_uuid(),"
                " locked_until = clock_timestamp() + %s, delivery_count = q.delivery_count + 1"
                " WHERE (queue_name, message_id) IN ("
                "   SELECT queue_name, message_id FROM local_queue WHERE queue_name = %s AND state = 'active'"
                "   AND (locked_until IS NULL OR locked_until < clock_timestamp())"
                "   ORDER BY sequence_number FOR UPDATE SKIP LOCKED LIMIT %s)"
                " RETURNING message_id, body, delivery_count, lock_token, enqueued_at, sequence_number",
                (dt.timedelta(seconds=lock_s), self.name, max_messages),
            ).fetchall()
        received = [ReceivedMessage(r["message_id"], r["body"], r["delivery_count"], str(r["lock_token"]),
                                    r["enqueued_at"], r["sequence_number"]) for r in rows]
        # A message whose lock expired on its last allowed delivery goes to the dead-letter state.
        for message in [m for m in received if m.delivery_count > self.max_delivery]:
            self._settle(message, "deadlettered", "MaxDeliveryCountExceeded",
                         f"delivered {message.delivery_count - 1} times without completing")
        return [m for m in received if m.delivery_count <= self.max_delivery]

    def complete(self, message: ReceivedMessage) -> bool:
        return self._settle(message, "completed")

    def abandon(self, message: ReceivedMessage, error: str | None = None) -> None:
        """Unlock for redelivery, or dead-letter once the max delivery count is reached."""
        if message.delivery_count >= self.max_delivery:
            self._settle(message, "deadlettered", "MaxDeliveryCountExceeded", error)
            return
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE local_queue SET lock_token = NULL, locked_until = NULL"
                " WHERE queue_name = %s AND message_id = %s AND lock_token = %s",
                (self.name, message.message_id, message.lock_token),
            )

    def _settle(self, message: ReceivedMessage, state: str, reason: str | None = None,
                description: str | None = None) -> bool:
        with self._db.transaction() as conn:
            # The lock token must still be ours: a message whose lock expired was redelivered.
            row = conn.execute(
                "UPDATE local_queue SET state = %s, settled_at = now(), lock_token = NULL, locked_until = NULL,"
                " dead_letter_reason = %s, dead_letter_description = %s"
                " WHERE queue_name = %s AND message_id = %s AND lock_token = %s RETURNING message_id",
                (state, reason, (description or "")[:1000] or None, self.name, message.message_id,
                 message.lock_token),
            ).fetchone()
        return row is not None

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT message_id, body, delivery_count, dead_letter_reason, dead_letter_description, enqueued_at"
                " FROM local_queue WHERE queue_name = %s AND state = 'deadlettered' ORDER BY sequence_number"
                " LIMIT %s",
                (self.name, limit),
            ).fetchall()
        return [DeadLetter(r["message_id"], r["body"], r["delivery_count"], r["dead_letter_reason"],
                           r["dead_letter_description"], r["enqueued_at"]) for r in rows]

    def replay(self, message_id: str) -> bool:
        """Move a dead-lettered message back to the queue with a fresh delivery count."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE local_queue SET state = 'active', delivery_count = 0, dead_letter_reason = NULL,"
                " dead_letter_description = NULL, settled_at = NULL"
                " WHERE queue_name = %s AND message_id = %s AND state = 'deadlettered' RETURNING message_id",
                (self.name, message_id),
            ).fetchone()
        return row is not None

    def active_count(self) -> int:
        with self._db.transaction() as conn:
            return conn.execute(
                "SELECT count(*) AS n FROM local_queue WHERE queue_name = %s AND state = 'active'", (self.name,)
            ).fetchone()["n"]


class ServiceBusQueue:
    """Sends to the Service Bus queue with the managed identity; message id = duplicate-detection key."""

    def __init__(self, namespace: str, queue_name: str, client_id: str | None) -> None:
        self._namespace = namespace
        self._queue_name = queue_name
        self._client_id = client_id
        self._sender: Any = None
        self._lock = threading.Lock()

    def _get_sender(self) -> Any:
        if self._sender is None:
            with self._lock:
                if self._sender is None:
                    from azure.servicebus import ServiceBusClient

                    from shared.azure_credential import get_credential

                    client = ServiceBusClient(self._namespace, credential=get_credential(self._client_id))
                    self._sender = client.get_queue_sender(self._queue_name)
        return self._sender

    def send(self, message_id: str, body: dict[str, Any]) -> None:
        from azure.servicebus import ServiceBusMessage
        from azure.servicebus.exceptions import ServiceBusError

        message = ServiceBusMessage(json.dumps(body), message_id=message_id, content_type="application/json")
        try:
            self._get_sender().send_messages(message)
        except ServiceBusError as exc:
            raise Unavailable("The index queue is unavailable.") from exc

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        from azure.servicebus import ServiceBusClient, ServiceBusSubQueue

        from shared.azure_credential import get_credential

        with ServiceBusClient(self._namespace, credential=get_credential(self._client_id)) as client, \
                client.get_queue_receiver(self._queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver:
            peeked = receiver.peek_messages(max_message_count=limit)
        return [DeadLetter(str(m.message_id), json.loads(str(m)), m.delivery_count or 0, m.dead_letter_reason,
                           m.dead_letter_error_description, m.enqueued_time_utc) for m in peeked]

    def replay(self, message_id: str) -> bool:
        """Re-send a dead-lettered message (new delivery count) and remove it from the DLQ."""
        from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue

        from shared.azure_credential import get_credential

        with ServiceBusClient(self._namespace, credential=get_credential(self._client_id)) as client, \
                client.get_queue_receiver(self._queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER,
                                          max_wait_time=5) as receiver, \
                client.get_queue_sender(self._queue_name) as sender:
            for message in receiver:
                if str(message.message_id) == message_id:
                    # A fresh id: the original is still inside the duplicate-detection window.
                    sender.send_messages(ServiceBusMessage(str(message), message_id=f"{message_id}:replay",
                                                           content_type="application/json"))
                    receiver.complete_message(message)
                    return True
                receiver.abandon_message(message)
        return False


def _build_queue() -> Any:
    from shared.db import get_database

    settings = get_settings()
    if settings.index_queue_backend == "servicebus":
        namespace = settings.require("servicebus_namespace")
        return ServiceBusQueue(namespace, settings.index_queue_name, settings.azure_client_id)
    if settings.index_queue_backend == "postgres":
        return PostgresQueue(get_database(), settings.index_queue_name, max_delivery=settings.index_max_delivery)
    raise ConfigError("INDEX_QUEUE_BACKEND must be 'servicebus' or 'postgres'.")


_queue: ProcessSingleton[Any] = ProcessSingleton(_build_queue)
reset_job_queue = _queue.reset


def get_job_queue(settings: Settings | None = None, db: Database | None = None) -> Any:
    """The configured queue, created once per process."""
    return _queue.get()
