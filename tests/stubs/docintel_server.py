"""A local HTTPS stand-in for Azure AI Document Intelligence's analyze operation, spoken to by the real SDK.

Wire behaviour as documented for REST API 2024-11-30: ``POST {endpoint}/documentintelligence/
documentModels/{model}:analyze`` answers 202 with ``Operation-Location``; ``GET`` on that URL answers
``{"status": "running"}`` a set number of times, then ``succeeded`` with an ``analyzeResult`` (or
``failed`` with an ``error``). Throttling answers 429 with ``Retry-After``. Requests without a bearer
token are 401. :func:`layout_result` builds results in the documented shape (``content``, ``pages``,
``paragraphs`` with ``role``/``spans``/``boundingRegions``, ``tables`` with ``cells``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.stubs.tls import HttpsStub

_ANALYZE = "/documentintelligence/documentModels/prebuilt-layout:analyze"
_RESULTS = "/documentintelligence/documentModels/prebuilt-layout/analyzeResults/"


@dataclass(frozen=True)
class Seen:
    """One request as the stub saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    content_type: str | None
    body_bytes: int
    status: int


@dataclass
class _Operation:
    polls_left: int
    outcome: dict[str, Any]


@dataclass
class DocumentIntelligenceStub:
    """Configure per test: ``result`` (the analyzeResult served), ``running_polls`` (``running``
    answers before the outcome), ``failure`` (an ``error`` object: the operation fails with it),
    ``submit_error`` ((status, error) answered to the POST), ``throttle`` (how many POSTs get 429
    with ``Retry-After: retry_after``)."""

    result: dict[str, Any] = field(default_factory=lambda: layout_result([[("paragraph", "Hello.")]]))
    running_polls: int = 1
    failure: dict[str, Any] | None = None
    submit_error: tuple[int, dict[str, Any]] | None = None
    throttle: int = 0
    retry_after: int = 1
    seen: list[Seen] = field(default_factory=list)
    _operations: dict[str, _Operation] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _https: HttpsStub | None = None

    def start(self) -> DocumentIntelligenceStub:
        self._https = HttpsStub(_handler_for(self), name="docintel-stub")
        self._https.start()
        return self

    def stop(self) -> None:
        if self._https is not None:
            self._https.stop()

    @property
    def ca_path(self) -> str:
        assert self._https is not None, "stub not started"
        return self._https.ca_path

    def __enter__(self) -> DocumentIntelligenceStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._https is not None, "stub not started"
        return f"https://127.0.0.1:{self._https.port}"

    def submits(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == "POST"]

    # --- request handling ------------------------------------------------------------------

    def _submit(self, request: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            if self.throttle > 0:
                self.throttle -= 1
                error = {"error": {"code": "429", "message": "Rate limit is exceeded. Try again later."}}
                return 429, {"Retry-After": str(self.retry_after)}, error
            if self.submit_error is not None:
                status, error = self.submit_error
                return status, {}, {"error": error}
            operation = uuid.uuid4().hex
            outcome: dict[str, Any]
            if self.failure is not None:
                outcome = {"status": "failed", "error": self.failure}
            else:
                outcome = {"status": "succeeded", "analyzeResult": self.result}
            self._operations[operation] = _Operation(self.running_polls, outcome)
        version = query.get("api-version", ["2024-11-30"])[0]
        location = f"{self.url}{_RESULTS}{operation}?api-version={version}"
        return 202, {"Operation-Location": location}, None

    def _poll(self, operation: str) -> tuple[int, dict[str, str], Any]:
        stamp = {"createdDateTime": "2026-01-01T00:00:00Z", "lastUpdatedDateTime": "2026-01-01T00:00:01Z"}
        with self._lock:
            state = self._operations.get(operation)
            if state is None:
                return 404, {}, {"error": {"code": "NotFound", "message": "Resource not found."}}
            if state.polls_left > 0:
                state.polls_left -= 1
                return 200, {"Retry-After": "0"}, {"status": "running", **stamp}
            return 200, {}, {**state.outcome, **stamp}


def _handler_for(stub: DocumentIntelligenceStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            authorization = self.headers.get("Authorization")
            if not (authorization or "").startswith("Bearer "):
                headers: dict[str, str] = {}
                status, payload = 401, {"error": {"code": "401", "message": "Access denied."}}
            elif method == "POST" and parts.path == _ANALYZE:
                status, headers, payload = stub._submit(self, query)
            elif method == "GET" and parts.path.startswith(_RESULTS):
                status, headers, payload = stub._poll(parts.path[len(_RESULTS) :])
            else:
                status, headers, payload = 404, {}, {"error": {"code": "NotFound", "message": "No such route."}}
            with stub._lock:
                stub.seen.append(
                    Seen(method, parts.path, query, authorization, self.headers.get("Content-Type"), len(body), status)
                )
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("apim-request-id", str(uuid.uuid4()))
            if data:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self._answer("POST")

        def do_GET(self) -> None:
            self._answer("GET")

    return Handler


# --- results in the documented shape -----------------------------------------------------------

Item = tuple[str, Any]  # ("title" | "sectionHeading" | "pageHeader" | "pageFooter" | "pageNumber" | "paragraph", text)
# or ("table", [[header cells], [row cells], ...])


def layout_result(pages: Sequence[Sequence[Item]]) -> dict[str, Any]:
    """An ``analyzeResult`` of ``prebuilt-layout`` for pages of items in reading order.

    ``content`` is every paragraph's text joined by newlines, and each paragraph's ``spans`` point
    into it, as the service reports them; a table's cells are paragraphs too (role-less, inside the
    table's span), as in the service's answers.
    """
    content: list[str] = []
    offset = 0
    paragraphs: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    result_pages: list[dict[str, Any]] = []

    def region(page: int) -> list[dict[str, Any]]:
        return [{"pageNumber": page, "polygon": [1.0, 1.0, 7.5, 1.0, 7.5, 1.4, 1.0, 1.4]}]

    def emit(text: str, page: int, role: str | None) -> dict[str, Any]:
        nonlocal offset
        span = {"offset": offset, "length": len(text)}
        content.append(text)
        offset += len(text) + 1
        paragraph: dict[str, Any] = {"spans": [span], "boundingRegions": region(page), "content": text}
        if role is not None:
            paragraph["role"] = role
        paragraphs.append(paragraph)
        return span

    for number, items in enumerate(pages, start=1):
        page_start = offset
        for kind, value in items:
            if kind == "table":
                table_start = offset
                cells = []
                for row_index, row in enumerate(value):
                    for column_index, text in enumerate(row):
                        span = emit(text, number, None)
                        cell: dict[str, Any] = {
                            "rowIndex": row_index,
                            "columnIndex": column_index,
                            "content": text,
                            "boundingRegions": region(number),
                            "spans": [span],
                        }
                        if row_index == 0:
                            cell["kind"] = "columnHeader"
                        cells.append(cell)
                tables.append(
                    {
                        "rowCount": len(value),
                        "columnCount": max(len(row) for row in value),
                        "cells": cells,
                        "boundingRegions": region(number),
                        "spans": [{"offset": table_start, "length": offset - 1 - table_start}],
                    }
                )
            else:
                emit(str(value), number, None if kind == "paragraph" else kind)
        result_pages.append(
            {
                "pageNumber": number,
                "angle": 0.0,
                "width": 8.5,
                "height": 11.0,
                "unit": "inch",
                "words": [],
                "lines": [],
                "spans": [{"offset": page_start, "length": max(0, offset - 1 - page_start)}],
            }
        )
    return {
        "apiVersion": "2024-11-30",
        "modelId": "prebuilt-layout",
        "stringIndexType": "textElements",
        "content": "\n".join(content),
        "pages": result_pages,
        "paragraphs": paragraphs,
        "tables": tables,
        "contentFormat": "text",
    }
