"""NDJSON streaming for chat answers: a bounded number of streams per instance, each step in a thread.

A chat answer is a blocking generator (it waits on the model), so :func:`ndjson` runs each of its
steps on the HTTP adapter's thread pool and sends each event as one line as soon as it exists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from blueprints._http import COMMON_HEADERS, NDJSON, blocking_pool, problem_body, run_blocking
from shared.errors import FolioError, Unavailable
from shared.telemetry import bind_invocation, unbind_invocation

_log = logging.getLogger("folio.http")

MAX_STREAMS = 48  # chat answers being written at once on one instance; more get a 503 and Retry-After


class StreamSlots:
    """A fixed number of long-running answers per instance, so streams cannot take every thread."""

    def __init__(self, size: int) -> None:
        self._free = threading.BoundedSemaphore(size)

    def take(self) -> Callable[[], None]:
        """A slot, or 503 when none is free; returns the slot's release (call it once)."""
        if not self._free.acquire(blocking=False):
            raise Unavailable("Too many answers are being written right now; try again in a few seconds.", retryAfter=5)
        return self._free.release


stream_slots = StreamSlots(MAX_STREAMS)


_END = object()
_open_streams = 0  # streams being sent by this process (changed on the event loop only)


def open_streams() -> int:
    """How many NDJSON responses are being sent now (operations; tests wait on it)."""
    return _open_streams


def ndjson(
    events: Iterator[dict[str, Any]],
    invocation_id: str,
    sent: Iterable[dict[str, Any]] = (),
    on_close: Callable[[], None] | None = None,
) -> Response:
    """Stream ``sent`` and then ``events``, one JSON object per line, each line as soon as it exists.

    ``events`` is a blocking generator (it waits on a model provider), so each step runs in a thread.
    The status is 200 once the first line is out; a failure after that is written as a last
    ``{"type": "error", "error": {problem+json}}`` line, so the stream always ends with a verdict.
    ``events`` is closed in a thread too (closing may write: an abandoned chat turn is billed), and
    ``on_close`` runs after that, or when ``events`` is dropped unstarted (a client gone before the
    response began).
    """
    if on_close is not None:
        # A finalizer runs once: called by _close once ``events`` is closed, or when ``events`` is dropped.
        on_close = weakref.finalize(events, on_close)
    return StreamingResponse(
        _lines(events, invocation_id, list(sent), on_close),
        status_code=200,
        headers=dict(COMMON_HEADERS),
        media_type=NDJSON,
    )


def _line(event: dict[str, Any]) -> bytes:
    return (json.dumps(event, ensure_ascii=False, default=str) + "\n").encode("utf-8")


async def _lines(
    events: Iterator[dict[str, Any]],
    invocation_id: str,
    sent: list[dict[str, Any]],
    on_close: Callable[[], None] | None,
) -> Any:
    # No context variable is held across a yield: the task that resumes an async generator (or
    # finalises it) need not be the one that started it. Each step binds the invocation id itself.
    global _open_streams
    step: asyncio.Future[Any] | None = None
    _open_streams += 1
    try:
        for event in sent:
            yield _line(event)
        while True:
            step = run_blocking(_step, events, invocation_id)
            try:
                # Shielded: if the client goes away, the step still finishes before the generator is closed.
                event = await asyncio.shield(step)
            except Exception as exc:
                yield _line(_error_event(exc, invocation_id))
                return
            if event is _END:
                return
            yield _line(event)
    finally:
        _open_streams -= 1
        if step is not None and not step.done():
            step.add_done_callback(lambda done: _close_after(done, events, invocation_id, on_close))
        else:  # done, failed, or a client that left between steps: the provider's connection closes now
            _close(events, invocation_id, on_close)


def _step(events: Iterator[dict[str, Any]], invocation_id: str) -> Any:
    token = bind_invocation(invocation_id)
    try:
        return next(events, _END)
    finally:
        unbind_invocation(token)


def _error_event(exc: Exception, invocation_id: str) -> dict[str, Any]:
    token = bind_invocation(invocation_id)
    try:
        if not isinstance(exc, FolioError):
            _log.error("stream failed unexpectedly", exc_info=exc)
            exc = FolioError("Something went wrong on our side while answering; the invocation id identifies it.")
        elif exc.status >= 500:
            _log.warning("stream failed: %s", exc.detail)
        return {"type": "error", "error": problem_body(exc, invocation_id)}
    finally:
        unbind_invocation(token)


def _close_after(
    step: asyncio.Future[Any], events: Iterator[dict[str, Any]], invocation_id: str, on_close: Callable[[], None] | None
) -> None:
    if not step.cancelled():
        step.exception()  # retrieved: an abandoned step's failure is not an "unhandled" one
    _close(events, invocation_id, on_close)


def _close(events: Iterator[dict[str, Any]], invocation_id: str, on_close: Callable[[], None] | None) -> None:
    def close() -> None:
        token = bind_invocation(invocation_id)
        try:
            getattr(events, "close", lambda: None)()  # generators have it; a plain iterator holds nothing
        except Exception:
            _log.exception("closing a stream failed")
        finally:
            unbind_invocation(token)
            if on_close is not None:
                on_close()

    blocking_pool.submit(close)
