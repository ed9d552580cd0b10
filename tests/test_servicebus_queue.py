"""The Service Bus index queue adapter against an in-memory broker with the SDK's client surface.

This is the one Azure integration not exercised at the wire: no Service Bus emulator runs here. The
adapter still builds real SDK messages and reads real SDK received messages (tests/fakes_servicebus.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus.exceptions import (
    MessagingEntityNotFoundError,
    ServiceBusConnectionError,
    ServiceBusServerBusyError,
)

from shared.config import load_settings
from shared.errors import ConfigError, Unavailable
from shared.queue import ServiceBusQueue, servicebus_queue_from_settings
from tests.fakes_servicebus import FakeServiceBus, FakeServiceBusClient, ReceiveLoop

NAMESPACE = "folio-test.servicebus.windows.net"
QUEUE = "index-jobs"


def _job(n: int) -> dict[str, Any]:
    return {"v": 1, "kind": "index", "documentId": f"doc-{n}"}


def _queue(bus: FakeServiceBus, **options: Any) -> ServiceBusQueue:
    return ServiceBusQueue(NAMESPACE, QUEUE, client_factory=bus.client, receive_wait_s=0.1, **options)


def _consumer(bus: FakeServiceBus) -> Any:
    """What the Functions host does with the main queue, on a client of its own."""
    return FakeServiceBusClient(bus).get_queue_receiver(QUEUE)


def _dead_letter(bus: FakeServiceBus, *ids: str) -> None:
    """Send ``ids`` and let each fail: the first by exhausting its deliveries, the others explicitly."""
    queue = _queue(bus)
    for message_id in ids:
        queue.send(message_id, {**_job(0), "id": message_id})
    receiver = _consumer(bus)
    first, *rest = receiver.receive_messages(max_message_count=len(ids))
    for message in rest:
        receiver.dead_letter_message(message, reason="Invalid", error_description=f"bad job {message.message_id}")
    receiver.abandon_message(first)
    for _ in range(bus.max_delivery_count - 1):
        (again,) = receiver.receive_messages(max_message_count=1)
        receiver.abandon_message(again)


def test_send_sets_message_id_and_json_content_type_and_duplicate_sends_collapse() -> None:
    bus = FakeServiceBus(duplicate_window_s=600)
    queue = _queue(bus)
    queue.send("job-1", _job(1))
    queue.send("job-1", _job(1))  # an Event Grid redelivery: same blob version, same id
    queue.send("job-2", _job(2))
    assert bus.ids(QUEUE) == ["job-1", "job-2"]
    (stored, _) = bus.messages(QUEUE)
    assert stored.content_type == "application/json" and stored.json() == _job(1)

    bus.advance(601)  # outside the duplicate-detection window the same id is a new message
    queue.send("job-1", _job(1))
    assert bus.ids(QUEUE) == ["job-1", "job-2", "job-1"]
    # One client and one sender for every send (one AMQP connection, not one per job).
    assert bus.clients_opened == 1 and bus.senders_opened == 1

    received = _consumer(bus).receive_messages(max_message_count=1)[0]
    assert isinstance(received, ServiceBusReceivedMessage)
    assert json.loads(b"".join(received.body)) == _job(1) and received.message_id == "job-1"


def test_dead_letters_are_listed_oldest_first_with_reason_and_nothing_is_locked() -> None:
    bus = FakeServiceBus(peek_page_size=2)  # the service may return fewer than asked: pages are followed
    _dead_letter(bus, "a", "b", "c", "d", "e")
    letters = _queue(bus).dead_letters()
    assert [d.message_id for d in letters] == ["b", "c", "d", "e", "a"]
    assert letters[0].reason == "Invalid" and letters[0].description == "bad job b"
    assert letters[0].body == {**_job(0), "id": "b"} and letters[0].delivery_count == 0
    assert letters[0].enqueued_at is not None and letters[0].enqueued_at.tzinfo is not None
    assert letters[-1].reason == "MaxDeliveryCountExceeded" and letters[-1].delivery_count == bus.max_delivery_count
    assert [d.message_id for d in _queue(bus).dead_letters(limit=3)] == ["b", "c", "d"]
    assert bus.locked(QUEUE, dead_letter=True) == [] and bus.receive_calls == bus.max_delivery_count
    assert [m.delivery_count for m in bus.messages(QUEUE, dead_letter=True)] == [0, 0, 0, 0, bus.max_delivery_count]


def test_a_poison_body_is_listed_as_text() -> None:
    from azure.servicebus import ServiceBusMessage

    bus = FakeServiceBus()
    FakeServiceBusClient(bus).get_queue_sender(QUEUE).send_messages(ServiceBusMessage("not json", message_id="p"))
    receiver = _consumer(bus)
    receiver.dead_letter_message(receiver.receive_messages()[0], reason="Invalid")
    (letter,) = _queue(bus).dead_letters()
    assert letter.body == {"unparsed": "not json"} and letter.description is None


@pytest.mark.timeout(20)
def test_replay_of_the_third_of_five_resends_it_under_a_fresh_id_and_removes_only_it() -> None:
    bus = FakeServiceBus(max_receive_calls=20)  # a replay that keeps receiving fails instead of hanging
    _dead_letter(bus, "j1", "j2", "j3", "j4", "j5")
    assert bus.ids(QUEUE, dead_letter=True) == ["j2", "j3", "j4", "j5", "j1"]
    before = {m.message_id: m.delivery_count for m in bus.messages(QUEUE, dead_letter=True)}
    calls_before = bus.receive_calls

    assert _queue(bus).replay("j4") is True  # the third dead letter

    assert bus.ids(QUEUE, dead_letter=True) == ["j2", "j3", "j5", "j1"]
    (copy,) = bus.messages(QUEUE)
    assert copy.message_id is not None and copy.message_id.startswith("j4:replay:")
    assert copy.json() == {**_job(0), "id": "j4"} and copy.content_type == "application/json"
    assert copy.delivery_count == 0
    # Only the messages ahead of it were received, once, and released afterwards (count + 1, as on Service Bus).
    assert bus.receive_calls - calls_before == 1 and bus.locked(QUEUE, dead_letter=True) == []
    after = {m.message_id: m.delivery_count for m in bus.messages(QUEUE, dead_letter=True)}
    assert after == {"j2": before["j2"] + 1, "j3": before["j3"] + 1, "j5": before["j5"], "j1": before["j1"]}


def test_replay_of_an_unknown_id_returns_false_and_touches_nothing() -> None:
    bus = FakeServiceBus(max_receive_calls=20)
    _dead_letter(bus, "j1", "j2", "j3")
    before = [(m.message_id, m.delivery_count, m.sequence_number) for m in bus.messages(QUEUE, dead_letter=True)]
    calls_before = bus.receive_calls

    assert _queue(bus).replay("no-such-job") is False

    assert [
        (m.message_id, m.delivery_count, m.sequence_number) for m in bus.messages(QUEUE, dead_letter=True)
    ] == before
    assert bus.receive_calls == calls_before and bus.messages(QUEUE) == []


def test_a_replayed_job_that_fails_again_is_replayed_under_one_suffix() -> None:
    bus = FakeServiceBus()
    _dead_letter(bus, "j1", "j2")
    queue = _queue(bus)
    assert queue.replay("j2")
    receiver = _consumer(bus)
    receiver.dead_letter_message(receiver.receive_messages()[0], reason="Invalid")
    replayed_id = bus.ids(QUEUE, dead_letter=True)[-1]
    assert replayed_id is not None and replayed_id.startswith("j2:replay:")

    assert queue.replay(replayed_id)
    (second,) = bus.ids(QUEUE)
    assert second is not None and second.startswith("j2:replay:") and second.count(":replay:") == 1
    assert second != replayed_id


def test_replay_gives_up_instead_of_cycling_when_its_locks_expire() -> None:
    # One message per receive and locks that expire at once: every receive hands back the first dead
    # letter again. The replay must notice and stop, and lose nothing.
    bus = FakeServiceBus(max_receive_calls=50)
    _dead_letter(bus, "j1", "j2", "j3")
    bus.lock_duration_s, bus.receive_batch_size = 0.0, 1
    calls_before = bus.receive_calls

    assert _queue(bus).replay("j3") is False

    assert sorted(m for m in bus.ids(QUEUE, dead_letter=True) if m) == ["j1", "j2", "j3"]
    assert bus.receive_calls - calls_before == 2 and bus.messages(QUEUE) == []


def test_the_fake_stops_a_replay_that_abandons_inside_its_receive_loop() -> None:
    """The replay this module replaced, on this fake: it would spin forever on Service Bus."""
    from azure.servicebus import ServiceBusSubQueue

    bus = FakeServiceBus(max_receive_calls=100)
    _dead_letter(bus, "j1", "j2", "j3")
    receiver = FakeServiceBusClient(bus).get_queue_receiver(QUEUE, sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    with pytest.raises(ReceiveLoop):
        while True:
            for message in receiver.receive_messages(max_message_count=1):
                if message.message_id == "j3":
                    break
                receiver.abandon_message(message)  # handed straight back by the next receive


def test_sdk_errors_become_folio_errors_and_the_next_send_reconnects() -> None:
    bus = FakeServiceBus()
    queue = _queue(bus)
    bus.fail_next.append(ServiceBusServerBusyError(message="busy"))
    with pytest.raises(Unavailable) as busy:
        queue.send("job-1", _job(1))
    assert busy.value.extensions == {"retryAfter": 10}

    bus.fail_next.append(ServiceBusConnectionError(message="connection reset"))
    with pytest.raises(Unavailable) as down:
        queue.dead_letters()
    assert "retryAfter" not in down.value.extensions

    bus.fail_next.append(MessagingEntityNotFoundError(message="no such queue"))
    with pytest.raises(ConfigError, match="INDEX_QUEUE_NAME"):
        queue.replay("job-1")

    queue.send("job-1", _job(1))  # a failed send drops its sender; this one opens a new one on the same client
    assert bus.ids(QUEUE) == ["job-1"] and bus.clients_opened == 1 and bus.senders_opened == 2


def test_close_releases_the_client_and_the_next_send_opens_a_new_one() -> None:
    bus = FakeServiceBus()
    queue = _queue(bus)
    queue.send("job-1", _job(1))
    queue.close()
    queue.send("job-2", _job(2))
    assert bus.ids(QUEUE) == ["job-1", "job-2"] and bus.clients_opened == 2


def test_the_factory_reads_namespace_and_queue_name_from_settings() -> None:
    settings = load_settings({"SERVICEBUS_NAMESPACE": NAMESPACE, "INDEX_QUEUE_NAME": "jobs-elsewhere"})
    queue = servicebus_queue_from_settings(settings, credential=object())  # type: ignore[arg-type]
    assert (queue.namespace, queue.queue_name) == (NAMESPACE, "jobs-elsewhere")
    with pytest.raises(ConfigError, match="SERVICEBUS_NAMESPACE"):
        servicebus_queue_from_settings(load_settings({}), credential=object())  # type: ignore[arg-type]
