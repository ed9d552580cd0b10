"""NDJSON streams of the HTTP adapter (blueprints/_http.py), driven directly: failures and departures."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.responses import StreamingResponse

from blueprints._ndjson import ndjson
from shared.chat.providers.base import ProviderRateLimited


def _collect(events: Iterator[dict[str, Any]], sent: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    async def run() -> list[Any]:  # the lines as starlette types them (str | bytes | memoryview)
        response = ndjson(events, "inv-1", sent or [])
        assert isinstance(response, StreamingResponse)
        return [line async for line in response.body_iterator]

    return [json.loads(line) for line in asyncio.run(run())]


def test_every_event_is_one_line_in_order() -> None:
    lines = _collect(iter([{"type": "delta", "text": "a\nb"}, {"type": "done"}]), sent=[{"type": "session"}])
    assert [e["type"] for e in lines] == ["session", "delta", "done"]
    assert lines[1]["text"] == "a\nb"  # a newline inside a value is escaped, never splits the line


def test_a_failure_mid_stream_is_the_last_line() -> None:
    def events() -> Iterator[dict[str, Any]]:
        yield {"type": "delta", "text": "Thirty"}
        raise ProviderRateLimited("The model provider is rate limiting.")

    lines = _collect(events())
    assert [e["type"] for e in lines] == ["delta", "error"]
    assert lines[-1]["error"]["status"] == 429 and lines[-1]["error"]["invocationId"] == "inv-1"


def test_an_unexpected_failure_says_so_without_its_details() -> None:
    def events() -> Iterator[dict[str, Any]]:
        yield {"type": "delta", "text": "x"}
        raise RuntimeError("password=hunter2")

    lines = _collect(events())
    assert lines[-1]["type"] == "error" and lines[-1]["error"]["status"] == 500
    assert "hunter2" not in json.dumps(lines)


def test_a_client_that_leaves_mid_answer_closes_the_turn_once_the_step_in_progress_ends() -> None:
    """The generator is closed (its provider connection with it), but never while a thread is inside it."""
    inside, release, closed = threading.Event(), threading.Event(), threading.Event()

    def events() -> Iterator[dict[str, Any]]:
        try:
            yield {"type": "delta", "text": "Thirty "}
            inside.set()
            release.wait(30)  # the model, still thinking
            yield {"type": "delta", "text": "days"}
            yield {"type": "done"}
        finally:
            closed.set()

    async def client_leaves() -> None:
        response = ndjson(events(), "inv-1")
        assert isinstance(response, StreamingResponse)
        lines = aiter(response.body_iterator)  # the async generator itself
        first = await lines.__anext__()
        assert isinstance(first, str | bytes) and json.loads(first)["text"] == "Thirty "
        waiting = asyncio.ensure_future(lines.__anext__())
        await asyncio.to_thread(inside.wait, 30)
        waiting.cancel()  # what the server does when the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not closed.is_set()  # a thread is still inside the generator: closing now would raise
        release.set()
        assert await asyncio.to_thread(closed.wait, 30)

    asyncio.run(client_leaves())
