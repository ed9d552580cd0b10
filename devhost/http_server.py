"""Serves a FunctionApp's HTTP functions over real HTTP, with the worker's request/response objects."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import azure.functions as func
import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from devhost.functions import HttpRoute, Registration, http_routes

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
        assert isinstance(host, str)  # an AF_INET server's address
        return f"http://{host}:{port}"

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=self.thread_name, daemon=True)
        thread.start()
        return thread


class FunctionsHttpServer:
    """The app's HTTP functions on Uvicorn, as the worker serves them with HTTP streaming on.

    In Azure the worker runs Uvicorn, the host forwards each request to it, and the function gets the
    Starlette request with its route parameters filled in and returns a Starlette response, which
    Uvicorn sends (streamed, for a ``StreamingResponse``). Here the same happens minus the host in
    between: routing, the 404/405 answers and CORS are the host's part and live in :meth:`app`.
    """

    def __init__(
        self,
        address: tuple[str, int],
        registrations: list[Registration],
        *,
        route_prefix: str = "api",
        cors_origins: tuple[str, ...] = (),
    ) -> None:
        self.routes: list[HttpRoute] = http_routes(registrations, route_prefix)
        self.cors_origins = cors_origins
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(address)
        # limit_concurrency: past it, new connections get a 503 instead of piling up (the Functions host
        # has maxConcurrentRequests/maxOutstandingRequests for that in Azure).
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                interface="asgi3",
                lifespan="off",
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=5,
                limit_concurrency=512,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start_in_thread(self) -> threading.Thread:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="devhost-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Functions HTTP server on {self.base_url} did not start")
            time.sleep(0.01)
        return self._thread

    def shutdown(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._socket.close()

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

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        origin = request.headers.get("origin")
        if request.method == "OPTIONS" and origin and request.headers.get("access-control-request-method"):
            response = self._preflight(origin, request.headers.get("access-control-request-headers", ""))
        else:
            response = await self._invoke(request)
        if origin and origin in self.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        await response(scope, receive, send)

    async def _invoke(self, request: Request) -> Response:
        declared = request.headers.get("content-length") or "0"
        if declared.isdigit() and int(declared) > MAX_BODY:
            return PlainTextResponse("Request body too large", status_code=413)
        route, params, path_known = self.match(request.method, request.url.path)
        if route is None:
            if not path_known:
                return PlainTextResponse("Not found", status_code=404)
            allowed = sorted({m for r in self.routes if r.pattern.match(request.url.path) for m in r.methods})
            return PlainTextResponse("Method not allowed", status_code=405, headers={"Allow": ", ".join(allowed)})
        request.scope["path_params"] = dict(params)  # what the worker's RequestSynchronizer fills in
        if inspect.iscoroutinefunction(route.registration.user_function):
            result = await invoke(route.registration, request)
        else:  # the worker runs a synchronous function in its thread pool
            result = await asyncio.to_thread(invoke, route.registration, request)
        if not isinstance(result, Response):
            raise TypeError(
                f"HTTP function {route.registration.name} returned {type(result).__name__}, "
                "not a Starlette Response (HTTP streaming is on for the whole app)"
            )
        return result

    def _preflight(self, origin: str, requested_headers: str) -> Response:
        if origin not in self.cors_origins:
            return Response(status_code=403)
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": requested_headers,
                "Access-Control-Max-Age": "600",
            },
        )


def invoke(registration: Registration, trigger_value: Any) -> Any:
    """Call a registered function the way the worker does: trigger by parameter name, plus context."""
    kwargs: dict[str, Any] = {registration.trigger_param: trigger_value}
    if registration.wants_context:
        kwargs["context"] = InvocationContext(invocation_id=str(uuid.uuid4()), function_name=registration.name)
    return registration.user_function(**kwargs)
