"""Folio's limits and errors around the model SDKs (``openai``, ``anthropic``), which do the HTTP, streaming and retries.

Three settings bound a model call, because a user is waiting for it:

* ``CHAT_TIMEOUT_SECONDS`` is the SDKs' timeout: connecting, sending, and every read, so it is also
  the longest silence while an answer streams. A timeout is not retried (the user has already
  waited that long): it ends the call in :class:`ProviderTimeout`.
* ``CHAT_RATE_LIMIT_BUDGET_SECONDS`` bounds the waiting before an answer starts. The SDKs retry
  429, 408, 409, 5xx and connection failures, after the ``retry-after-ms`` / ``Retry-After`` the
  provider asks for or else with exponential backoff. ``max_retries`` is the number of backoff
  steps that fit in the budget, and :class:`GuardedTransport` ends the call at once, instead of
  waiting, when the next wait would pass the budget: :class:`ProviderRateLimited` with
  ``retryAfter`` (429, 503, 529 "overloaded") or :class:`ProviderUnavailable`.
* ``CHAT_MAX_SECONDS`` bounds the whole answer; adapters check :meth:`Limits.check_deadline`
  between streamed events.

Once the answer has started nothing is retried (the text already shown would repeat); the SDKs
never retry a stream being read. SDK exceptions become Folio's error classes in :func:`translate`;
details name the provider, the HTTP status and the provider's error code, never its message
(which can quote the key or the prompt).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx2

from shared.chat.providers.base import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from shared.errors import FolioError
from shared.retry_after import retry_after

if TYPE_CHECKING:
    from shared.config import Settings

_BUSY = {429, 503, 529}  # 529: Anthropic's "overloaded"
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
# The SDKs' backoff (openai and anthropic alike): 0.5 s doubling up to 8 s, less up to 25 % jitter.
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 0.5, 8.0
_MAX_RETRIES = 10
_DEFAULT_RETRY_AFTER_S = 5  # what a 429 without Retry-After tells our caller
_IN_STREAM_RATE_LIMITED = {"rate_limit_error", "rate_limit_exceeded"}
_IN_STREAM_TRANSIENT = {"overloaded_error", "api_error", "server_error", "timeout_error"}


def backoff_s(retries_taken: int) -> float:
    """The longest the SDKs wait before retry ``retries_taken + 1`` when the provider does not say."""
    return min(_BACKOFF_FIRST_S * 2.0 ** min(retries_taken, 16), _BACKOFF_MAX_S)


@dataclass(frozen=True)
class Limits:
    """The three limits of a model call (see the module docstring), in seconds."""

    timeout_s: float
    max_s: float
    rate_limit_budget_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            timeout_s=settings.chat_timeout_s,
            max_s=settings.chat_max_seconds,
            rate_limit_budget_s=settings.chat_rate_limit_budget_s,
        )

    @property
    def max_retries(self) -> int:
        """How many of the SDKs' backoff steps fit in the budget: 8 s → 4 (0.5 + 1 + 2 + 4), 0.5 s → 1, 0 → 0."""
        retries, waited = 0, 0.0
        while retries < _MAX_RETRIES and waited + backoff_s(retries) <= self.rate_limit_budget_s:
            waited += backoff_s(retries)
            retries += 1
        return retries

    def timeout(self) -> httpx2.Timeout:
        return httpx2.Timeout(self.timeout_s)

    def check_deadline(self, provider: str, started: float) -> None:
        if time.monotonic() - started > self.max_s:
            raise ProviderTimeout(f"{provider} took longer than {self.max_s:g} s to answer.", provider=provider)


# --- one call, and the transport that holds it to the budget --------------------------------------


@dataclass
class _Call:
    provider: str
    limits: Limits
    attempts: int = 0
    waited_s: float = 0.0  # the longest the SDK may have slept between attempts so far


_current: ContextVar[_Call | None] = ContextVar("folio_model_call", default=None)


@contextmanager
def model_call(provider: str, limits: Limits) -> Iterator[None]:
    """Marks the SDK request made inside (with all its retries) as one call that :class:`GuardedTransport` limits.

    Enter it around the SDK method that sends the request; leave it before reading the stream.
    """
    token = _current.set(_Call(provider, limits))
    try:
        yield
    finally:
        _current.reset(token)


class GuardedTransport(httpx2.BaseTransport):
    """An HTTP transport that applies the limits of the current :func:`model_call` to each attempt the SDK makes.

    It raises Folio's errors, which the SDKs do not retry: the openai SDK passes a transport's own
    exceptions through unchanged; the anthropic SDK needs :func:`folio_errors_through` as middleware.
    Outside a :func:`model_call` it only passes requests on.
    """

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        call = _current.get()
        if call is None:
            return self._inner.handle_request(request)
        attempt = call.attempts
        call.attempts += 1
        try:
            response = self._inner.handle_request(request)
        except httpx2.TimeoutException:
            raise ProviderTimeout(
                f"{call.provider} did not answer within {call.limits.timeout_s:g} s.", provider=call.provider
            ) from None
        status = response.status_code
        if _sdk_retries(status) and attempt < call.limits.max_retries:
            asked = retry_after(response.headers)
            wait = asked if asked else backoff_s(attempt)  # the SDKs take 0 as "not said"
            if call.waited_s + wait > call.limits.rate_limit_budget_s:
                response.close()
                raise _refused(call.provider, status, wait)
            call.waited_s += wait
        return response

    def close(self) -> None:
        self._inner.close()


def model_http_client() -> httpx2.Client:
    """The HTTP client for model SDKs: :class:`GuardedTransport`, no redirects (keys ride on these requests).

    One can serve every model adapter of a process; the composition root may build it once and pass it in.
    """
    return httpx2.Client(transport=GuardedTransport(httpx2.HTTPTransport()), follow_redirects=False)


def folio_errors_through(request: Any, call_next: Any) -> Any:
    """Anthropic SDK middleware: a Folio error from :class:`GuardedTransport` leaves the SDK as itself, not retried.

    The SDK wraps a transport's exception in ``APIConnectionError`` (which it retries); this takes it
    out again. Raised ``from None``: the SDK's retry check follows ``__cause__``.
    """
    try:
        return call_next(request)
    except Exception as exc:
        if isinstance(exc.__cause__, FolioError):
            raise exc.__cause__ from None
        raise


def _sdk_retries(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


# --- SDK exceptions → Folio's errors ------------------------------------------------------------


@dataclass(frozen=True)
class SdkErrors:
    """An SDK's exception classes (openai and anthropic name and shape them alike)."""

    status: type[Exception]  # APIStatusError: status_code, response, body
    timeout: type[Exception]  # APITimeoutError (a subclass of connection)
    connection: type[Exception]  # APIConnectionError
    api: type[Exception]  # APIError: body; the openai SDK raises it for an error inside a 200 stream


def translate(exc: Exception, provider: str, errors: SdkErrors, limits: Limits) -> FolioError | None:
    """Folio's error for an exception from an SDK call or stream; None for anything else (a bug: let it raise)."""
    if isinstance(exc, FolioError):
        return exc
    if isinstance(exc, (errors.timeout, httpx2.TimeoutException)):
        return ProviderTimeout(f"{provider} went silent for {limits.timeout_s:g} s.", provider=provider)
    if isinstance(exc, errors.status):
        status = int(getattr(exc, "status_code", 0))
        code = error_code(getattr(exc, "body", None))
        if not 400 <= status <= 599:  # an `error` event inside a 200 stream (anthropic)
            return _in_stream(provider, code)
        if status in _BUSY or _sdk_retries(status):
            asked = retry_after(getattr(getattr(exc, "response", None), "headers", None))
            return _refused(provider, status, asked or _DEFAULT_RETRY_AFTER_S)
        return ProviderError(
            f"{provider} refused the request (HTTP {status}{', ' + code if code else ''}).",
            provider=provider,
            upstreamStatus=status,
        )
    if isinstance(exc, (errors.connection, httpx2.TransportError)):
        return ProviderUnavailable(f"Could not reach {provider}, or the connection broke.", provider=provider)
    if isinstance(exc, errors.api):
        return _in_stream(provider, error_code(getattr(exc, "body", None)))
    if isinstance(exc, ValueError):  # a stream event that is not JSON
        return ProviderUnavailable(f"{provider} sent a malformed stream event.", provider=provider)
    return None


class translated:
    """Raises Folio's error (:func:`translate`) for an SDK exception that leaves the block; others pass unchanged."""

    def __init__(self, provider: str, errors: SdkErrors, limits: Limits) -> None:
        self._provider, self._errors, self._limits = provider, errors, limits

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, Exception) and not isinstance(exc, FolioError):
            folio = translate(exc, self._provider, self._errors, self._limits)
            if folio is not None:
                raise folio from None


def error_code(body: object) -> str | None:
    """The provider's error code or type (an identifier), never its free-text message.

    ``body`` is what the SDK parsed: ``{"error": {...}}`` (anthropic) or the inner object (openai).
    """
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else body
    if not isinstance(error, dict):
        return None
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and _CODE.match(value) and value != "error":
            return value
    return None


def _refused(provider: str, status: int, wait: float) -> FolioError:
    if status in _BUSY:
        return ProviderRateLimited(
            f"{provider} is rate limiting requests (HTTP {status}); retry in a moment.",
            provider=provider,
            retryAfter=max(1, round(wait)),
        )
    return ProviderUnavailable(f"{provider} answered HTTP {status}; retry shortly.", provider=provider)


def _in_stream(provider: str, code: str | None) -> FolioError:
    """An error the provider sent after the answer had started (text may already have been shown)."""
    if code in _IN_STREAM_RATE_LIMITED:
        return ProviderRateLimited(
            f"{provider} is rate limiting requests; retry in a moment.",
            provider=provider,
            retryAfter=_DEFAULT_RETRY_AFTER_S,
        )
    if code is None or code in _IN_STREAM_TRANSIENT:
        return ProviderUnavailable(
            f"{provider} failed while answering ({code or 'error'}); retry shortly.", provider=provider
        )
    return ProviderError(f"{provider} refused the request ({code}).", provider=provider)
