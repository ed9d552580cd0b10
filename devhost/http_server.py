"""Serves a FunctionApp's HTTP functions with real azure.functions request/response objects."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from devhost.functions import HttpRoute, Registration, http_routes

_log = logging.getLogger("devhost")
MAX_BODY = 100 * 1024 * 1024  # the Functions host's own request size limit


class InvocationContext(func.Context):
    """The Context members functions read, as the worker provides them."""

    def __init__(self, invocation_id: str, function_name: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(Path.cwd())

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return threading.local()


def read_route_prefix(host_json: Path) -> str:
    try:
        return json.loads(host_json.read_text())["extensions"]["http"]["routePrefix"]
    except (OSError, KeyError, ValueError):
        return "api"


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server for the local stack, run in a background thread."""

    daemon_threads = True
    thread_name = "devhost-server"

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=self.thread_name, daemon=True)
        thread.start()
        return thread


class FunctionsHttpServer(LoopbackServer):
    thread_name = "devhost-http"

    def __init__(self, address: tuple[str, int], registrations: list[Registration], *, route_prefix: str = "api",
                 cors_origins: tuple[str, ...] = ()) -> None:
        self.routes: list[HttpRoute] = http_routes(registrations, route_prefix)
        self.cors_origins = cors_origins
        super().__init__(address, _Handler)

    def match(self, method: str, path: str) -> tuple[HttpRoute | None, dict[str, str], bool]:
        """(route, route params, whether the path exists under another method)."""
        path_known = False
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            path_known = True
            if method in route.methods:
                return route, {k: v for k, v in found.groupdict().items() if v is not None}, True
        return None, {}, path_known


class _Handler(BaseHTTPRequestHandler):
    server: FunctionsHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        _log.debug(fmt, *args)

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        origin = self.headers.get("Origin")
        if self.command == "OPTIONS" and origin and self.headers.get("Access-Control-Request-Method"):
            return self._preflight(origin)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._send(413, {"Content-Type": "text/plain"}, b"Request body too large", origin)
        body = self.rfile.read(length) if length else b""
        route, params, path_known = self.server.match(self.command, split.path)
        if route is None:
            return self._send(405 if path_known else 404, {"Content-Type": "text/plain"},
                              b"Method not allowed" if path_known else b"Not found", origin)
        request = func.HttpRequest(
            method=self.command,
            url=f"{self.server.base_url}{self.path}",
            headers={k.lower(): v for k, v in self.headers.items()},
            params=dict(parse_qsl(split.query, keep_blank_values=True)),
            route_params=params,
            body=body,
        )
        response = invoke(route.registration, request)
        headers = {k: v for k, v in response.headers.items()}
        if response.mimetype and "content-type" not in {k.lower() for k in headers}:
            charset = f"; charset={response.charset}" if response.charset and response.mimetype.startswith(
                ("text/", "application/json")) else ""
            headers["Content-Type"] = f"{response.mimetype}{charset}"
        self._send(response.status_code, headers, response.get_body() or b"", origin)

    def _preflight(self, origin: str) -> None:
        if origin not in self.server.cors_origins:
            return self._send(403, {}, b"", None)
        self._send(204, {
            "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": self.headers.get("Access-Control-Request-Headers", ""),
            "Access-Control-Max-Age": "600",
        }, b"", origin)

    def _send(self, status: int, headers: dict[str, str], body: bytes, origin: str | None) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if origin and origin in self.server.cors_origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


def invoke(registration: Registration, trigger_value: Any) -> Any:
    """Call a registered function the way the worker does: trigger by parameter name, plus context."""
    kwargs: dict[str, Any] = {registration.trigger_param: trigger_value}
    if registration.wants_context:
        kwargs["context"] = InvocationContext(invocation_id=str(uuid.uuid4()), function_name=registration.name)
    return registration.user_function(**kwargs)
