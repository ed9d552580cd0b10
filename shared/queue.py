"""The index-job queue on Azure Service Bus: send with duplicate detection, list and replay dead letters.

Senders see one method, :meth:`ServiceBusQueue.send`, keyed by a message id so that duplicate sends
collapse (the queue has duplicate detection on). In Azure the Functions host's Service Bus trigger
does the receiving; this module only reads the dead-letter sub-queue, for operators
(``python -m shared.cli deadletters``). The local host's stand-in, a PostgreSQL table with the same
semantics, is development-only and lives in ``devhost/local_queue.py``.

The SDK is imported on first use, never at import time (cold start).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from shared.errors import ConfigError, FolioError, Unavailable

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusSubQueue

    from shared.config import Settings

_log = logging.getLogger(__name__)

# What Service Bus asks of a client it reports busy: back off about 10 seconds before retrying.
_SERVER_BUSY_RETRY_AFTER_S = 10


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: dict[str, Any]
    delivery_count: int
    reason: str | None
    description: str | None
    enqueued_at: dt.datetime | None


# --- the part of azure.servicebus the adapter uses (tests hand in a fake with exactly this shape) -------


class ServiceBusSenderLike(Protocol):
    def send_messages(self, message: ServiceBusMessage, *, timeout: float | None = ...) -> None: ...

    def close(self) -> None: ...


class ServiceBusReceiverLike(Protocol):
    def peek_messages(
        self, max_message_count: int = ..., *, sequence_number: int = ..., timeout: float | None = ...
    ) -> list[ServiceBusReceivedMessage]: ...

    def receive_messages(
        self, max_message_count: int | None = ..., max_wait_time: float | None = ...
    ) -> list[ServiceBusReceivedMessage]: ...

    def complete_message(self, message: ServiceBusReceivedMessage) -> None: ...

    def abandon_message(self, message: ServiceBusReceivedMessage) -> None: ...

    def close(self) -> None: ...


class ServiceBusClientLike(Protocol):
    """What :class:`azure.servicebus.ServiceBusClient` offers and :class:`ServiceBusQueue` calls."""

    def get_queue_sender(self, queue_name: str) -> ServiceBusSenderLike: ...

    def get_queue_receiver(
        self, queue_name: str, *, sub_queue: ServiceBusSubQueue | None = ..., max_wait_time: float | None = ...
    ) -> ServiceBusReceiverLike: ...

    def close(self) -> None: ...


def _sdk_client(namespace: str, credential: TokenCredential) -> ServiceBusClientLike:
    from azure.servicebus import ServiceBusClient

    return ServiceBusClient(namespace, credential)


class ServiceBusQueue:
    """Index jobs on one Service Bus queue, reached with an Entra credential (the managed identity).

    ``client_factory`` replaces the SDK client (tests); otherwise ``credential`` is required. The
    client and its sender are created on first send and reused (one AMQP connection per process, as
    the SDK recommends); :meth:`close` releases them. Sends are serialised: the SDK's senders are
    not thread-safe and the Functions worker runs functions on several threads.
    """

    def __init__(
        self,
        namespace: str,
        queue_name: str,
        credential: TokenCredential | None = None,
        *,
        client_factory: Callable[[], ServiceBusClientLike] | None = None,
        operation_timeout_s: float = 30.0,
        receive_wait_s: float = 5.0,
        replay_scan_limit: int = 500,
    ) -> None:
        if client_factory is None:
            if credential is None:
                raise ValueError("ServiceBusQueue needs a credential or a client_factory")
            client_factory = functools.partial(_sdk_client, namespace, credential)
        self.namespace = namespace
        self.queue_name = queue_name
        self._client_factory = client_factory
        self._timeout = operation_timeout_s
        self._receive_wait = receive_wait_s
        self._scan_limit = replay_scan_limit
        self._lock = threading.Lock()
        self._client: ServiceBusClientLike | None = None
        self._sender: ServiceBusSenderLike | None = None

    # --- sending -------------------------------------------------------------------------------------

    def send(self, message_id: str, body: dict[str, Any]) -> None:
        """Enqueue a job; a second send of ``message_id`` within the duplicate-detection window is dropped."""
        from azure.servicebus import ServiceBusMessage

        self._send(ServiceBusMessage(json.dumps(body), message_id=message_id, content_type="application/json"))

    def _send(self, message: ServiceBusMessage) -> None:
        with self._lock:
            try:
                if self._sender is None:
                    self._sender = self._shared_client().get_queue_sender(self.queue_name)
                self._sender.send_messages(message, timeout=self._timeout)
            except Exception as exc:
                # The SDK has already retried (its retry policy): the next send starts on a new sender
                # (its own connection); the client stays, as a dead-letter receiver may be using it.
                sender, self._sender = self._sender, None
                _close_quietly(sender)
                _raise_translated(exc, self)

    def _shared_client(self) -> ServiceBusClientLike:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def close(self) -> None:
        """Close the sender and the client; the next call opens new ones."""
        with self._lock:
            sender, client, self._sender, self._client = self._sender, self._client, None, None
        _close_quietly(sender)
        _close_quietly(client)

    # --- the dead-letter sub-queue -------------------------------------------------------------------

    def _dead_letter_receiver(self) -> ServiceBusReceiverLike:
        from azure.servicebus import ServiceBusSubQueue

        with self._lock:
            client = self._shared_client()
        return client.get_queue_receiver(
            self.queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=self._receive_wait
        )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead-lettered jobs, oldest first, without locking or changing any of them."""
        try:
            receiver = self._dead_letter_receiver()
            try:
                peeked = self._peek(receiver, limit)
            finally:
                receiver.close()
        except Exception as exc:
            _raise_translated(exc, self)
        return [
            DeadLetter(
                str(m.message_id),
                _body_dict(m),
                m.delivery_count or 0,
                m.dead_letter_reason,
                m.dead_letter_error_description,
                m.enqueued_time_utc,
            )
            for m in peeked
        ]

    def _peek(self, receiver: ServiceBusReceiverLike, limit: int) -> list[ServiceBusReceivedMessage]:
        """Browse from the start of the sub-queue, page by page (a peek may return fewer than asked)."""
        peeked: list[ServiceBusReceivedMessage] = []
        next_sequence = 1
        while len(peeked) < limit:
            page = receiver.peek_messages(
                max_message_count=min(limit - len(peeked), 250), sequence_number=next_sequence, timeout=self._timeout
            )
            if not page:
                break
            peeked.extend(page)
            next_sequence = (page[-1].sequence_number or 0) + 1
        return peeked[:limit]

    def replay(self, message_id: str) -> bool:
        """Re-send one dead-lettered job under a fresh id and remove it from the dead-letter queue.

        Returns False, touching nothing, when no dead letter has that id among the first
        ``replay_scan_limit``.

        Why this cannot loop: the message is first located by peeking, which neither locks nor
        redelivers anything, so an unknown id ends there. Then messages are received in peek-lock
        mode and *held* (not abandoned) until the target is among them: an abandoned message is handed
        straight back by the next receive, which is how the previous version spun forever on the
        first dead letter. Each receive either adds new messages to the held set or ends the search
        (an empty receive; a sequence number already held, which means a held lock expired; or
        ``replay_scan_limit`` messages held), so there are at most that many receives. Only after the
        search are the received non-matching messages abandoned, once each. ``receive_deferred_messages`` cannot do
        this: it only returns messages that were deferred, and dead letters are not.
        """
        try:
            receiver = self._dead_letter_receiver()
            try:
                return self._replay(receiver, message_id)
            finally:
                receiver.close()
        except Exception as exc:
            _raise_translated(exc, self)

    def _replay(self, receiver: ServiceBusReceiverLike, message_id: str) -> bool:
        from azure.servicebus import ServiceBusMessage

        peeked = self._peek(receiver, self._scan_limit)
        position = next((i for i, m in enumerate(peeked) if str(m.message_id) == message_id), None)
        if position is None:
            return False
        target = peeked[position].sequence_number or 0
        held: dict[int, ServiceBusReceivedMessage] = {}
        released_early: list[ServiceBusReceivedMessage] = []  # second deliveries of held messages
        found: ServiceBusReceivedMessage | None = None
        try:
            while found is None and len(held) < self._scan_limit:
                # Ask for just enough to reach the target (dead letters come in sequence order), at least 1.
                wanted = max(1, min(position + 1 - len(held), self._scan_limit - len(held)))
                batch = receiver.receive_messages(max_message_count=wanted, max_wait_time=self._receive_wait)
                if not batch:
                    break  # gone: another replay took it, or its message expired
                for message in batch:
                    sequence = message.sequence_number or 0
                    if sequence in held:
                        released_early.append(message)  # a lock we held expired and it came back
                    else:
                        held[sequence] = message
                        if sequence == target:
                            found = message
                if released_early:
                    break  # locks are expiring faster than the search advances: stop rather than cycle
            if found is None:
                return False
            # A fresh id: the original is still inside the duplicate-detection window, so re-sending it
            # under its own id would be dropped. Earlier replay suffixes are replaced, not stacked.
            base = message_id.split(":replay:", 1)[0]
            self._send(
                ServiceBusMessage(
                    _body_bytes(found),
                    message_id=f"{base}:replay:{uuid.uuid4().hex[:12]}",
                    content_type=found.content_type or "application/json",
                )
            )
            receiver.complete_message(found)
            del held[target]
            return True
        finally:
            for message in [*released_early, *held.values()]:
                try:
                    receiver.abandon_message(message)
                except Exception:  # its lock expired already: it is back in the sub-queue either way
                    _log.debug("abandoning dead letter %s failed", message.sequence_number, exc_info=True)


def _close_quietly(handle: ServiceBusSenderLike | ServiceBusClientLike | None) -> None:
    if handle is not None:
        try:
            handle.close()
        except Exception:  # closing a broken link must not hide why it broke
            _log.debug("closing a Service Bus handle failed", exc_info=True)


def _body_bytes(message: ServiceBusReceivedMessage) -> bytes:
    body = message.body
    return body if isinstance(body, bytes) else b"".join(body)


def _body_dict(message: ServiceBusReceivedMessage) -> dict[str, Any]:
    """The job as sent; a body that is not a JSON object (a poison message) is shown as text."""
    text = _body_bytes(message).decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"unparsed": text[:1000]}


def _raise_translated(exc: Exception, queue: ServiceBusQueue) -> NoReturn:
    """Raise Folio's error for an SDK or identity failure (the SDK has already retried what it can);
    anything else (a bug) propagates as it is."""
    translated = _translate(exc, queue)
    if translated is exc:
        raise exc
    raise translated from exc


def _translate(exc: Exception, queue: ServiceBusQueue) -> Exception:
    from azure.core.exceptions import AzureError
    from azure.servicebus.exceptions import (
        MessagingEntityDisabledError,
        MessagingEntityNotFoundError,
        ServiceBusAuthorizationError,
        ServiceBusServerBusyError,
    )

    if isinstance(exc, FolioError):
        return exc
    if isinstance(exc, MessagingEntityNotFoundError | MessagingEntityDisabledError):
        return ConfigError(
            f"The Service Bus queue {queue.queue_name!r} (INDEX_QUEUE_NAME) does not exist "
            "or is disabled in SERVICEBUS_NAMESPACE."
        )
    if isinstance(exc, ServiceBusAuthorizationError):
        return ConfigError(
            "The app's identity may not use the index queue: it needs the Azure Service Bus "
            "Data Sender and Data Receiver roles on SERVICEBUS_NAMESPACE."
        )
    if isinstance(exc, ServiceBusServerBusyError):
        return Unavailable("The index queue is busy; try again shortly.", retryAfter=_SERVER_BUSY_RETRY_AFTER_S)
    if isinstance(exc, AzureError):
        return Unavailable("The index queue is unavailable.")
    return exc


def servicebus_queue_from_settings(settings: Settings, credential: TokenCredential) -> ServiceBusQueue:
    """The index queue named by ``INDEX_QUEUE_NAME`` in ``SERVICEBUS_NAMESPACE``, as ``credential``."""
    return ServiceBusQueue(settings.require("servicebus_namespace"), settings.index_queue_name, credential)
