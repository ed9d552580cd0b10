"""The small hierarchy of errors Folio's services raise; blueprints map them to HTTP in one place."""

from __future__ import annotations

from typing import Any


class FolioError(Exception):
    """Base of every error a caller may see. ``type_slug`` names it in problem+json bodies."""

    status = 500
    type_slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str = "", **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class Invalid(FolioError):
    status, type_slug, title = 400, "invalid-request", "Invalid request"


class Unauthenticated(FolioError):
    status, type_slug, title = 401, "unauthenticated", "Authentication required"


class Forbidden(FolioError):
    status, type_slug, title = 403, "forbidden", "Not allowed"


class NotFound(FolioError):
    status, type_slug, title = 404, "not-found", "Not found"


class Conflict(FolioError):
    status, type_slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(FolioError):
    """An ``If-Match`` etag no longer matches: someone changed the resource since it was read."""

    status, type_slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(FolioError):
    status, type_slug, title = 413, "payload-too-large", "Payload too large"


class RequestTimeout(FolioError):
    status, type_slug, title = 408, "request-timeout", "Request timeout"


class QuotaExceeded(FolioError):
    status, type_slug, title = 402, "quota-exceeded", "Plan limit reached"


class Unavailable(FolioError):
    """A dependency is down; the caller may retry (HTTP 503, Service Bus redelivery)."""

    status, type_slug, title = 503, "unavailable", "Service unavailable"


class ConfigError(FolioError):
    """A setting is missing or malformed. The message names the setting, never its value."""

    status, type_slug, title = 500, "configuration", "Server misconfigured"


class UnsupportedMediaType(FolioError):
    status, type_slug, title = 415, "unsupported-media-type", "Unsupported media type"
