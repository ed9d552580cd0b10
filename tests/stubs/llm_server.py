"""A loopback HTTP server speaking the streaming wire formats of OpenAI, Azure OpenAI and Anthropic (SSE).

Each request takes the next scripted :class:`Reply` (else the ``responder``'s reply to it, else the
default one): a streamed answer, an
error status with headers, a stream that stalls after a few events or ends in an error event, a
connection reset before any answer, or silence. Every request is recorded (path with query,
headers, JSON body), so tests can see exactly what the SDKs sent. It speaks the wire formats only:
OpenAI's ``POST …/chat/completions`` (also under Azure's ``/openai/deployments/{d}/…?api-version=``)
and Anthropic's ``POST …/v1/messages``; it checks no key or token, it records them.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    text: list[str] = field(default_factory=lambda: ["Hello", " world."])
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error_body: dict[str, Any] | None = None
    stall_after: int | None = None  # send this many text events, then go silent
    gate: threading.Event | None = None  # with stall_after: go on once this is set, instead of staying silent
    usage: tuple[int, int] = (11, 7)  # prompt/input, completion/output tokens
    stream_error: str | None = None  # after the text, an error event of this type inside the 200 stream
    reset: bool = False  # read the request, then reset the connection without a byte of answer
    hang: bool = False  # read the request, then say nothing (until the stub closes)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class LlmStub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: list[Reply] = []
        self.default = Reply()
        # Answers computed from the request (the benchmark in tests: a scripted "model" that reads the
        # prompt's sources and cites, or refuses, by rule).
        self.responder: Callable[[Recorded], Reply] | None = None
        self.requests: list[Recorded] = []
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> LlmStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()  # stalled handlers return
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
        self.default = Reply()
        self.responder = None

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if self._script:
                return self._script.pop(0)
            responder = self.responder
        return responder(recorded) if responder else self.default


def _openai_events(reply: Reply, model: str) -> list[bytes]:
    events: list[dict[str, Any]] = []
    # Azure OpenAI opens with a chunk that has no choices (prompt filter results); clients must cope.
    events.append({"id": "c1", "object": "chat.completion.chunk", "choices": [], "prompt_filter_results": []})
    events.append(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
    )
    for piece in reply.text:
        events.append(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
        )
    if reply.stream_error:
        events.append({"error": {"type": reply.stream_error, "code": None, "message": "x"}})
        return [f"data: {json.dumps(e)}\n\n".encode() for e in events]
    events.append(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )
    events.append(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": reply.usage[0],
                "completion_tokens": reply.usage[1],
                "total_tokens": sum(reply.usage),
            },
        }
    )
    return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


def _anthropic_events(reply: Reply, model: str) -> list[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    out = [
        event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "usage": {"input_tokens": reply.usage[0], "output_tokens": 1},
                },
            },
        ),
        event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        event("ping", {"type": "ping"}),
    ]
    for piece in reply.text:
        out.append(
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
        )
    if reply.stream_error:
        out.append(event("error", {"type": "error", "error": {"type": reply.stream_error, "message": "x"}}))
        return out
    out += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": reply.usage[1]}},
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return out


def _handler(stub: LlmStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            reply = stub._next(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            anthropic = path.endswith("/v1/messages")
            if reply.reset:
                # SO_LINGER 0: closing sends RST, as a load balancer dropping the connection would.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if reply.hang:
                stub._release.wait(60)
                self.close_connection = True
                return
            if reply.status != 200:
                payload = json.dumps(
                    reply.error_body
                    or (
                        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
                        if anthropic
                        else {"error": {"code": "rate_limit_exceeded", "message": "Rate limit reached"}}
                    )
                ).encode()
                self.send_response(reply.status)
                for key, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            model = body.get("model") or "deployment"
            events = _anthropic_events(reply, model) if anthropic else _openai_events(reply, model)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            sent_text = 0
            for chunk in events:
                is_text = (b'"content": "' in chunk and b'"content": ""' not in chunk) or b"text_delta" in chunk
                if reply.stall_after is not None and is_text and sent_text >= reply.stall_after:
                    self.wfile.flush()
                    if reply.gate is None:
                        stub._release.wait(60)  # silence: the client's read timeout must fire first
                        return
                    reply.gate.wait(60)
                    reply.stall_after = None
                try:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (a deadline, a stop)
                    self.close_connection = True
                    return
                sent_text += int(is_text)
                time.sleep(0.001)
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
