"""An in-memory Service Bus namespace with the SDK's client surface, for testing ``shared.queue.ServiceBusQueue``.

No Service Bus emulator runs on these machines, so this fake stands in for the broker, and only for
the broker: the adapter under test builds real ``azure.servicebus.ServiceBusMessage`` objects, the fake
encodes each one to its AMQP wire bytes (with the SDK's own encoder) and keeps what a broker keeps,
and it hands back real ``ServiceBusReceivedMessage`` objects decoded from AMQP bytes that carry what
Service Bus puts on a delivery (sequence number, enqueued time, lock token and lock expiry, delivery
count, dead-letter reason and description). So the adapter reads messages through the SDK's own
property code.

Semantics modelled, as documented for Service Bus queues in peek-lock mode:

* sequence numbers, increasing per entity; receives hand out available messages in that order;
* a receive locks each message (``lock_duration_s``); complete removes it; abandon, or a lock
  that expires, makes it available again at its place (so it is the first one handed back) with
  its delivery count + 1; after ``max_delivery_count`` failed deliveries it moves to the
  dead-letter sub-queue with reason ``MaxDeliveryCountExceeded``; settling with a lost or unknown
  lock raises ``MessageLockLostError``;
* the dead-letter sub-queue (its own sequence numbers) has the same peek-lock behaviour but never
  dead-letters again;
* duplicate detection: a send whose message id was accepted within ``duplicate_window_s`` is
  accepted by the client and dropped by the broker;
* peek browses from a sequence number without locking anything, at most ``peek_page_size`` at a
  time, and a receive returns at most ``receive_batch_size`` messages (the service may return
  fewer than asked for).

Time is a manual clock (:meth:`FakeServiceBus.advance`). Receiving more than ``max_receive_calls``
times raises :class:`ReceiveLoop`, so a consumer that loops forever fails instead of hanging.
Not modelled: sessions, scheduled and deferred messages, time-to-live, transactions, prefetch.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusSubQueue
from azure.servicebus._pyamqp._encode import encode_payload  # the SDK's AMQP encoder (no public form)
from azure.servicebus._transport._pyamqp_transport import PyamqpTransport
from azure.servicebus.amqp import AmqpAnnotatedMessage, AmqpMessageHeader, AmqpMessageProperties
from azure.servicebus.exceptions import MessageLockLostError

_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class ReceiveLoop(AssertionError):
    """The consumer kept receiving past the fake's bound: on a real namespace it would not stop."""


def _wire(message: AmqpAnnotatedMessage) -> bytes:
    return bytes(encode_payload(bytearray(), PyamqpTransport.to_outgoing_amqp_message(message)))


@dataclass
class StoredMessage:
    """What the broker keeps of one message."""

    body: bytes
    message_id: str | None
    content_type: str | None
    sequence_number: int
    enqueued_s: float
    delivery_count: int = 0  # failed deliveries so far (abandoned or lock expired)
    lock_token: uuid.UUID | None = None
    locked_until_s: float = 0.0
    dead_letter_reason: str | None = None
    dead_letter_description: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Entity:
    dead_letter: bool
    messages: list[StoredMessage] = field(default_factory=list)  # in sequence order
    next_sequence: int = 1

    def add(self, message: StoredMessage) -> None:
        message.sequence_number, self.next_sequence = self.next_sequence, self.next_sequence + 1
        self.messages.append(message)


class FakeServiceBus:
    """One namespace: queues created on first use, each with its dead-letter sub-queue."""

    def __init__(
        self,
        *,
        lock_duration_s: float = 300.0,
        max_delivery_count: int = 5,
        duplicate_window_s: float = 3600.0,
        peek_page_size: int = 100,
        receive_batch_size: int = 100,
        max_receive_calls: int = 200,
    ) -> None:
        self.lock_duration_s = lock_duration_s
        self.max_delivery_count = max_delivery_count
        self.duplicate_window_s = duplicate_window_s
        self.peek_page_size = peek_page_size
        self.receive_batch_size = receive_batch_size
        self.max_receive_calls = max_receive_calls
        self.now_s = 0.0
        self.receive_calls = 0
        self.clients_opened = 0
        self.senders_opened = 0
        self.fail_next: list[Exception] = []  # raised, in order, by the next operations of any handle
        self._entities: dict[tuple[str, bool], _Entity] = {}
        self._accepted_ids: dict[tuple[str, str], float] = {}  # (queue, message id) -> when accepted

    # --- what the adapter gets ------------------------------------------------------------------------

    def client(self) -> FakeServiceBusClient:
        """The client factory to hand to ``ServiceBusQueue(client_factory=...)``."""
        self.clients_opened += 1
        return FakeServiceBusClient(self)

    # --- what tests look at and do ---------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        self.now_s += seconds

    def entity(self, queue: str, *, dead_letter: bool = False) -> _Entity:
        return self._entities.setdefault((queue, dead_letter), _Entity(dead_letter))

    def messages(self, queue: str, *, dead_letter: bool = False) -> list[StoredMessage]:
        return list(self.entity(queue, dead_letter=dead_letter).messages)

    def ids(self, queue: str, *, dead_letter: bool = False) -> list[str | None]:
        return [m.message_id for m in self.messages(queue, dead_letter=dead_letter)]

    def locked(self, queue: str, *, dead_letter: bool = False) -> list[StoredMessage]:
        return [m for m in self.messages(queue, dead_letter=dead_letter) if self._is_locked(m)]

    # --- the broker ------------------------------------------------------------------------------------

    def _check_failure(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _accept(self, queue: str, message: ServiceBusMessage) -> None:
        self._check_failure()
        # What goes over the wire, decoded as a receiver would: proves the message encodes and what it carries.
        sent = ServiceBusReceivedMessage.from_bytes(_wire(message.raw_amqp_message))
        body = sent.body if isinstance(sent.body, bytes) else b"".join(sent.body)
        if sent.message_id is not None:
            key = (queue, str(sent.message_id))
            accepted = self._accepted_ids.get(key)
            if accepted is not None and self.now_s - accepted < self.duplicate_window_s:
                return  # duplicate detection: the client hears success, the broker drops it
            self._accepted_ids[key] = self.now_s
        self.entity(queue).add(StoredMessage(body, sent.message_id, sent.content_type, 0, self.now_s))

    def _is_locked(self, message: StoredMessage) -> bool:
        return message.lock_token is not None and message.locked_until_s > self.now_s

    def _expire_locks(self, queue: str, entity: _Entity) -> None:
        for message in list(entity.messages):
            if message.lock_token is not None and message.locked_until_s <= self.now_s:
                self._release(queue, entity, message)  # an expired lock counts as a failed delivery

    def _release(self, queue: str, entity: _Entity, message: StoredMessage) -> None:
        message.lock_token, message.locked_until_s = None, 0.0
        message.delivery_count += 1
        if not entity.dead_letter and message.delivery_count >= self.max_delivery_count:
            self._move_to_dead_letter(
                queue,
                entity,
                message,
                "MaxDeliveryCountExceeded",
                f"Message could not be consumed after {message.delivery_count} delivery attempts.",
            )

    def _move_to_dead_letter(
        self, queue: str, entity: _Entity, message: StoredMessage, reason: str | None, description: str | None
    ) -> None:
        entity.messages.remove(message)
        message.lock_token, message.locked_until_s = None, 0.0
        message.dead_letter_reason, message.dead_letter_description = reason, description
        self.entity(queue, dead_letter=True).add(message)

    def _receive(self, queue: str, entity: _Entity, count: int) -> list[ServiceBusReceivedMessage]:
        self.receive_calls += 1
        if self.receive_calls > self.max_receive_calls:
            raise ReceiveLoop(f"more than {self.max_receive_calls} receives: the consumer is not terminating")
        self._check_failure()
        self._expire_locks(queue, entity)
        taken = [m for m in entity.messages if m.lock_token is None][: min(count, self.receive_batch_size)]
        for message in taken:
            message.lock_token, message.locked_until_s = uuid.uuid4(), self.now_s + self.lock_duration_s
        return [self._delivery(m) for m in taken]

    def _peek(self, entity: _Entity, count: int, from_sequence: int) -> list[ServiceBusReceivedMessage]:
        self._check_failure()
        found = [m for m in entity.messages if m.sequence_number >= max(from_sequence, 1)]
        return [self._delivery(m, peek=True) for m in found[: min(count, self.peek_page_size)]]

    def _settle(self, queue: str, entity: _Entity, received: ServiceBusReceivedMessage) -> StoredMessage:
        self._check_failure()
        self._expire_locks(queue, entity)
        token = received.lock_token
        for message in entity.messages:
            if token is not None and message.lock_token == token and self._is_locked(message):
                return message
        raise MessageLockLostError(
            message="The lock supplied is invalid: it expired, or the message was "
            "settled or received by another receiver."
        )

    def _delivery(self, message: StoredMessage, *, peek: bool = False) -> ServiceBusReceivedMessage:
        """The message as Service Bus delivers it, decoded by the SDK from AMQP bytes."""
        annotations: dict[Any, Any] = {
            b"x-opt-sequence-number": message.sequence_number,
            b"x-opt-enqueued-time": int((_EPOCH + dt.timedelta(seconds=message.enqueued_s)).timestamp() * 1000),
        }
        delivery_annotations: dict[Any, Any] = {}
        if message.lock_token is not None and not peek:
            until = _EPOCH + dt.timedelta(seconds=message.locked_until_s)
            annotations[b"x-opt-locked-until"] = int(until.timestamp() * 1000)
            delivery_annotations[b"x-opt-lock-token"] = message.lock_token
        properties: dict[Any, Any] = {}
        if message.dead_letter_reason is not None:
            properties[b"DeadLetterReason"] = message.dead_letter_reason.encode()
        if message.dead_letter_description is not None:
            properties[b"DeadLetterErrorDescription"] = message.dead_letter_description.encode()
        amqp = AmqpAnnotatedMessage(
            data_body=message.body,
            header=AmqpMessageHeader(delivery_count=message.delivery_count),
            properties=AmqpMessageProperties(message_id=message.message_id, content_type=message.content_type),
            annotations=annotations,
            delivery_annotations=delivery_annotations or None,
            application_properties=properties or None,
        )
        return ServiceBusReceivedMessage.from_bytes(_wire(amqp))


class _Handle:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this handler was closed")


class FakeServiceBusClient(_Handle):
    """Like ``azure.servicebus.ServiceBusClient``: hands out senders and receivers."""

    def __init__(self, bus: FakeServiceBus) -> None:
        super().__init__()
        self.bus = bus

    def get_queue_sender(self, queue_name: str) -> FakeSender:
        self._check_open()
        self.bus.senders_opened += 1
        return FakeSender(self.bus, queue_name)

    def get_queue_receiver(
        self, queue_name: str, *, sub_queue: ServiceBusSubQueue | None = None, max_wait_time: float | None = None
    ) -> FakeReceiver:
        self._check_open()
        return FakeReceiver(self.bus, queue_name, dead_letter=sub_queue == ServiceBusSubQueue.DEAD_LETTER)


class FakeSender(_Handle):
    def __init__(self, bus: FakeServiceBus, queue: str) -> None:
        super().__init__()
        self._bus, self._queue = bus, queue

    def send_messages(
        self, message: ServiceBusMessage | list[ServiceBusMessage], *, timeout: float | None = None
    ) -> None:
        self._check_open()
        for one in message if isinstance(message, list) else [message]:
            self._bus._accept(self._queue, one)


class FakeReceiver(_Handle):
    """Peek-lock receiver on a queue or on its dead-letter sub-queue."""

    def __init__(self, bus: FakeServiceBus, queue: str, *, dead_letter: bool) -> None:
        super().__init__()
        self._bus, self._queue = bus, queue
        self._entity = bus.entity(queue, dead_letter=dead_letter)

    def peek_messages(
        self, max_message_count: int = 1, *, sequence_number: int = 0, timeout: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        self._check_open()
        return self._bus._peek(self._entity, max_message_count, sequence_number)

    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        self._check_open()
        return self._bus._receive(self._queue, self._entity, max_message_count or 0)

    def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        self._check_open()
        self._entity.messages.remove(self._bus._settle(self._queue, self._entity, message))

    def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        self._check_open()
        self._bus._release(self._queue, self._entity, self._bus._settle(self._queue, self._entity, message))

    def dead_letter_message(
        self, message: ServiceBusReceivedMessage, reason: str | None = None, error_description: str | None = None
    ) -> None:
        self._check_open()
        if self._entity.dead_letter:
            raise ValueError("a message in the dead-letter sub-queue cannot be dead-lettered again")
        stored = self._bus._settle(self._queue, self._entity, message)
        self._bus._move_to_dead_letter(self._queue, self._entity, stored, reason, error_description)
