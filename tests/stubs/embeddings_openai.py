"""A loopback HTTP server speaking the embeddings API of OpenAI (``/v1/embeddings``) and Azure OpenAI
(``/openai/deployments/{deployment}/embeddings?api-version=...``), for the real ``openai`` SDK to call.

Each request takes the next scripted :class:`Reply` (or answers with well-formed embeddings): an
error status with headers and body, a reply whose vectors have the wrong size or come out of
order, a dropped connection, or a slow answer. Every request is recorded (path with query,
lower-cased headers, JSON body), so tests see exactly what went over the wire. Vectors are sent as
JSON floats or, when the request asks for ``encoding_format: base64``, as little-endian float32.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # sent as is instead of the embeddings (or the default error)
    dimensions: int | None = None  # vectors of this size instead of the size asked for
    drop: bool = False  # close the connection without answering
    delay_s: float = 0.0  # wait this long before answering


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def vector_for(text: str, position: int, dimensions: int) -> list[float]:
    """The stub's unit vector for ``text`` at ``position``: order and batching mistakes show in it."""
    raw = [float(len(text) + 1), float(position + 1)] + [0.5] * (dimensions - 2)
    length = math.sqrt(sum(x * x for x in raw))
    return [x / length for x in raw]


class EmbeddingsStub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: list[Reply] = []
        self.reverse = False  # answer with `data` in reverse order (indices stay right)
        self.requests: list[Recorded] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def __enter__(self) -> EmbeddingsStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            return self._script.pop(0) if self._script else Reply()

    def embeddings(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        texts = body["input"]
        dimensions = reply.dimensions or body.get("dimensions") or 8
        data = []
        for i, text in enumerate(texts):
            vector = vector_for(text, i, dimensions)
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        if self.reverse:
            data.reverse()
        return {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }


def _handler(stub: EmbeddingsStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            reply = stub._next(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if reply.drop:
                self.close_connection = True
                return
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.body is not None:
                payload = reply.body
            elif reply.status != 200:
                payload = {"error": {"code": str(reply.status), "message": "scripted failure"}}
            else:
                payload = stub.embeddings(body, reply)
            encoded = json.dumps(payload).encode()
            try:
                self.send_response(reply.status)
                for key, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout) before the answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
