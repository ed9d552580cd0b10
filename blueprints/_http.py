"""The HTTP adapter every API function shares: auth, strict JSON input, and the one error mapping.

HTTP functions use the Functions worker's HTTP streaming extension (azurefunctions-extensions-http-fastapi):
once it is imported, the worker serves every HTTP function of the app through its own Uvicorn server,
handing each a Starlette ``Request`` and sending back the Starlette ``Response`` it returns, streamed
if it is a ``StreamingResponse`` (chat answers). That is all-or-nothing per app, so every route is
registered here the same way: an ``async`` function that reads the body (within the size limit), then
runs the synchronous handler in a worker thread, because the handlers block on PostgreSQL and Cosmos DB.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar
from uuid import UUID

import azure.functions as func

# Importing the extension is what switches the worker to HTTP streaming (see above).
import azurefunctions.extensions.http.fastapi  # type: ignore[import-untyped]  # noqa: F401
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response as Response  # re-exported: every handler returns one

from shared.bootstrap import Services, services
from shared.config import Settings, cached_settings
from shared.db import Database
from shared.errors import FolioError, Forbidden, Invalid, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from shared.identity import authenticate
from shared.identity.swa import HEADER as SWA_PRINCIPAL_HEADER
from shared.telemetry import bind_invocation, configure_logging, unbind_invocation
from shared.tenancy import Caller, resolve_caller
from shared.validation import Body, parse_json, parse_uuid, validate_body

_log = logging.getLogger("folio.http")

PROBLEM_BASE = "https://folio.dev/problems/"
NDJSON = "application/x-ndjson"
WORKSPACE_HEADER = "x-folio-workspace"
COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

# Handlers and stream steps block (PostgreSQL, Cosmos DB, a model that is still thinking), so they run
# here rather than in asyncio's default executor, which has cpu_count + 4 threads: on a 2-core instance
# six slow chat answers would hold all of them and every other request would wait. The pool is larger
# than everything that can hold a thread at once: host.json's maxConcurrentRequests (100) plus the
# streams (blueprints/_ndjson.py: MAX_STREAMS), whose last step may outlive a client that left. Threads start on demand.
BLOCKING_THREADS = 160
BODY_READ_SECONDS = 60.0  # a client that stops sending its body mid-way gets a 408
blocking_pool = ThreadPoolExecutor(max_workers=BLOCKING_THREADS, thread_name_prefix="folio-http")


T = TypeVar("T")
B = TypeVar("B", bound=Body)


def run_blocking(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """``fn(*args)`` on the HTTP thread pool, with this task's context (the bound invocation id)."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(blocking_pool, context.run, fn, *args)


@dataclass(frozen=True)
class HttpInput:
    """The parts of the HTTP request a handler may read, taken off the worker's request once."""

    headers: Mapping[str, str]  # case-insensitive
    params: Mapping[str, str]  # the query string
    route_params: Mapping[str, str]
    body: bytes


class ApiRequest:
    """What a handler sees: validated pieces of the request, the caller on demand, the database."""

    def __init__(self, http: HttpInput, services: Services, settings: Settings, invocation_id: str) -> None:
        self.http = http
        self.services = services
        self.settings = settings
        self.invocation_id = invocation_id

    @property
    def db(self) -> Database:
        return self.services.database

    @cached_property
    def caller(self) -> Caller:
        principal = authenticate(self.http.headers, self.settings)
        return resolve_caller(self.db, principal, self.http.headers.get(WORKSPACE_HEADER))

    def path_id(self, name: str, what: str) -> UUID:
        return parse_uuid(self.http.route_params.get(name, ""), what)

    def body(self, model: type[B]) -> B:
        """The JSON body as ``model`` (see shared/api_models.py); any problem with it is a 400 (415 for another type)."""
        body = self.http.body
        # Required, not assumed: a body without this type is what a cross-site form or a fetch that
        # skips the CORS preflight sends, so refusing it keeps JSON endpoints out of reach of both.
        if body and media_type(self.http.headers) != "application/json":
            raise UnsupportedMediaType("Send the request body as application/json.")
        return validate_body(model, parse_json(body))

    def query_int(self, name: str, default: int, lowest: int, highest: int) -> int:
        raw = self.http.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise Invalid(f"Query parameter '{name}' must be an integer.") from None
        if not lowest <= value <= highest:
            raise Invalid(f"Query parameter '{name}' must be between {lowest} and {highest}.")
        return value


Handler = Callable[[ApiRequest], Response]


def endpoint(bp: func.Blueprint, route: str, methods: list[str]) -> Callable[[Handler], Handler]:
    """Register ``handler`` as an HTTP function on ``bp``.

    Authentication is Folio's own (Entra token, SWA principal or API key), so the Functions-level
    auth level is anonymous; a request without credentials still gets a 401 from ``ApiRequest.caller``.
    """

    def register(handler: Handler) -> Handler:
        async def http_function(req: Request, context: func.Context) -> Response:
            return await serve(handler, req, context)

        http_function.__name__ = http_function.__qualname__ = handler.__name__
        http_function.__doc__ = handler.__doc__
        # The worker checks these types when it indexes the app; real classes, not postponed strings.
        http_function.__annotations__ = {"req": Request, "context": func.Context, "return": Response}
        bp.route(route=route, methods=methods, auth_level=func.AuthLevel.ANONYMOUS)(http_function)
        return handler

    return register


async def serve(handler: Handler, req: Request, context: func.Context) -> Response:
    """Run one request: read it, call ``handler`` in a thread, map any failure to problem+json."""
    invocation_id = getattr(context, "invocation_id", None) or ""
    # Bound in this invocation's task; run_blocking carries it into the handler's thread.
    token = bind_invocation(invocation_id)
    started = time.perf_counter()
    try:
        try:
            # Fresh settings are read without a thread; loading or refreshing them may do I/O.
            settings = cached_settings()
            if settings is None:
                settings = await run_blocking(_settings)
            try:
                async with asyncio.timeout(BODY_READ_SECONDS):
                    http = await read_input(req, settings.max_request_bytes)
            except TimeoutError:
                raise RequestTimeout(f"The request body did not arrive within {BODY_READ_SECONDS:.0f} s.") from None
            refuse_cross_site(req.method, http.headers)
            response = await run_blocking(handler, ApiRequest(http, services(), settings, invocation_id))
        except ClientDisconnect:
            # The client left before sending its whole body: nobody to answer, and not our failure.
            _log.info("%s %s: the client disconnected before sending its body", req.method, req.url.path)
            response = problem(Invalid("The request body ended early."), invocation_id)
        except FolioError as exc:
            response = problem(exc, invocation_id)
            if exc.status >= 500:
                _log.error("%s %s failed: %s", req.method, req.url.path, exc.detail, exc_info=exc.__cause__)
        except Exception:
            _log.exception("%s %s raised an unexpected error", req.method, req.url.path)
            response = problem(
                FolioError("Something went wrong on our side; the invocation id identifies it."), invocation_id
            )
        _log.info(
            "%s %s -> %s",
            req.method,
            req.url.path,
            response.status_code,
            extra={"status": response.status_code, "durationMs": round((time.perf_counter() - started) * 1000, 1)},
        )
    finally:
        unbind_invocation(token)
    return response


def media_type(headers: Mapping[str, str]) -> str:
    """The request's ``Content-Type`` without its parameters, lower-cased; empty when there is none."""
    return (headers.get("content-type") or "").split(";")[0].strip().lower()


# What an HTML form can send (and what fetch may send cross-site without a CORS preflight).
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def refuse_cross_site(method: str, headers: Mapping[str, str]) -> None:
    """Keep state-changing requests that ride on the browser's sign-in out of other sites' reach.

    The Static Web Apps sign-in is a cookie, which the browser attaches to a cross-site form post as
    well; SWA turns it into the client principal header. So a request that carries that header and
    no ``Authorization`` must not be a form post (not even a body-less one, such as
    ``POST /documents/{id}/reindex``), and a browser that says it comes from another site
    (``Sec-Fetch-Site: cross-site``) is refused. The web app's own fetches (same origin, JSON or no
    body) pass; API-key and Entra callers send ``Authorization``, which no other site can attach.
    """
    if method.upper() in _SAFE_METHODS or headers.get("authorization") or headers.get(SWA_PRINCIPAL_HEADER) is None:
        return
    if (headers.get("sec-fetch-site") or "").strip().lower() == "cross-site":
        raise Forbidden("Requests from other sites are refused; use Folio's own web app or an API key.")
    if media_type(headers) in _FORM_TYPES:
        raise UnsupportedMediaType("Form posts are refused; send application/json, or no body at all.")


def _settings() -> Settings:
    settings = services().settings  # the first call may read App Configuration and Key Vault: not on the event loop
    configure_logging(settings)
    return settings


async def read_input(req: Request, limit: int) -> HttpInput:
    """The request with its body read, refusing more than ``limit`` bytes without reading them all."""
    declared = req.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    body = bytearray()
    async for part in req.stream():
        body += part
        if len(body) > limit:  # a chunked body declares no length
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    return HttpInput(headers=req.headers, params=req.query_params, route_params=dict(req.path_params), body=bytes(body))


def problem_body(exc: FolioError, invocation_id: str | None = None) -> dict[str, Any]:
    """The RFC 9457 fields of ``exc``; also the body of an NDJSON ``error`` line (blueprints/api_chat.py)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + exc.type_slug,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if invocation_id:
        body["invocationId"] = invocation_id
    body.update({k: v for k, v in exc.extensions.items() if k not in body})
    return body


def problem(exc: FolioError, invocation_id: str | None = None) -> Response:
    """RFC 9457 problem+json; ``type`` is stable per error class. The one error->HTTP mapping."""
    body = problem_body(exc, invocation_id)
    headers = dict(COMMON_HEADERS)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="folio"'
    retry_after = exc.extensions.get("retryAfter")
    if isinstance(retry_after, int) and retry_after > 0:
        headers["Retry-After"] = str(retry_after)
    return Response(
        json.dumps(body).encode(), status_code=exc.status, headers=headers, media_type="application/problem+json"
    )


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, default=str).encode(),
        status_code=status,
        headers={**COMMON_HEADERS, **(headers or {})},
        media_type="application/json",
    )


def no_content() -> Response:
    return Response(status_code=204, headers=dict(COMMON_HEADERS))
