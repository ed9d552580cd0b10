"""The HTTP adapter every API function shares: auth, strict JSON input, and the one error mapping."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any
from uuid import UUID

import azure.functions as func

from shared.config import Settings, get_settings
from shared.db import Database, get_database
from shared.errors import FolioError, Invalid, PayloadTooLarge, UnsupportedMediaType
from shared.identity import authenticate
from shared.telemetry import bind_invocation, configure_logging, unbind_invocation
from shared.tenancy import Caller, resolve_caller
from shared.validation import Field, parse_json, parse_object, parse_uuid

_log = logging.getLogger("folio.http")

PROBLEM_BASE = "https://folio.dev/problems/"
WORKSPACE_HEADER = "x-folio-workspace"
_COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class ApiRequest:
    """What a handler sees: validated pieces of the request, the caller on demand, the database."""

    def __init__(self, req: func.HttpRequest, settings: Settings, invocation_id: str) -> None:
        self.http = req
        self.settings = settings
        self.invocation_id = invocation_id

    @property
    def db(self) -> Database:
        return get_database()

    @cached_property
    def caller(self) -> Caller:
        principal = authenticate(self.http.headers, self.settings)
        return resolve_caller(self.db, principal, self.http.headers.get(WORKSPACE_HEADER))

    def path_id(self, name: str, what: str) -> UUID:
        return parse_uuid(self.http.route_params.get(name, ""), what)

    def json(self, spec: dict[str, Field]) -> dict[str, Any]:
        body = self.http.get_body() or b""
        if len(body) > self.settings.max_request_bytes:
            raise PayloadTooLarge(f"The request body exceeds {self.settings.max_request_bytes} bytes.")
        content_type = (self.http.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type and content_type != "application/json":
            raise UnsupportedMediaType("Send the request body as application/json.")
        return parse_object(parse_json(body), spec)

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


Handler = Callable[[ApiRequest], func.HttpResponse]


def endpoint(bp: func.Blueprint, route: str, methods: list[str]) -> Callable[[Handler], Handler]:
    """Register ``handler`` as an HTTP function on ``bp``.

    Authentication is Folio's own (Entra token, SWA principal or API key), so the Functions-level
    auth level is anonymous; a request without credentials still gets a 401 from ``ApiRequest.caller``.
    """

    def register(handler: Handler) -> Handler:
        def http_function(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
            return invoke(handler, req, context)

        http_function.__name__ = http_function.__qualname__ = handler.__name__
        http_function.__doc__ = handler.__doc__
        bp.route(route=route, methods=methods, auth_level=func.AuthLevel.ANONYMOUS)(http_function)
        return handler

    return register


def invoke(handler: Handler, req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    invocation_id = getattr(context, "invocation_id", None) or ""
    token = bind_invocation(invocation_id)
    started = time.perf_counter()
    try:
        settings = get_settings()
        configure_logging(settings)
        response = handler(ApiRequest(req, settings, invocation_id))
    except FolioError as exc:
        response = problem(exc, invocation_id)
        if exc.status >= 500:
            _log.error("%s %s failed: %s", req.method, _path(req), exc.detail, exc_info=exc.__cause__)
    except Exception:
        _log.exception("%s %s raised an unexpected error", req.method, _path(req))
        response = problem(FolioError("Something went wrong on our side; the invocation id identifies it."),
                           invocation_id)
    try:
        _log.info("%s %s -> %s", req.method, _path(req), response.status_code,
                  extra={"status": response.status_code,
                         "durationMs": round((time.perf_counter() - started) * 1000, 1)})
    finally:
        unbind_invocation(token)
    return response


def _path(req: func.HttpRequest) -> str:
    return req.url.split("?", 1)[0]


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


def problem(exc: FolioError, invocation_id: str | None = None) -> func.HttpResponse:
    """RFC 9457 problem+json; ``type`` is stable per error class. The one error->HTTP mapping."""
    body = problem_body(exc, invocation_id)
    headers = dict(_COMMON_HEADERS)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="folio"'
    return func.HttpResponse(json.dumps(body), status_code=exc.status, headers=headers,
                             mimetype="application/problem+json")


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status,
                             headers={**_COMMON_HEADERS, **(headers or {})}, mimetype="application/json")


def no_content() -> func.HttpResponse:
    return func.HttpResponse(status_code=204, headers=dict(_COMMON_HEADERS))
