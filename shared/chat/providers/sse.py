"""Streaming POSTs to model providers over stdlib HTTP: server-sent events, timeouts, 429 and 5xx handling.

One request, retried while it is safe: before any byte of the answer has arrived, a 429 (or 503,
529 "overloaded") is waited out honouring ``retry-after-ms`` / ``Retry-After``, and a 5xx or a
connection failure is retried with backoff, all within ``rate_limit_budget_s``, because the user is
waiting. Once the stream has started nothing is retried (the text already shown would repeat).
The socket timeout bounds every silence (connect, first byte, between events) and ``max_s``
bounds the whole answer, so a stalled provider ends in :class:`ProviderTimeout`, never a hung request.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.chat.providers.base import ProviderError, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from shared.errors import ConfigError
from shared.retry_after import retry_after

_log = logging.getLogger(__name__)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_BUSY = {429, 503, 529}  # 529: Anthropic's "overloaded"
_RETRYABLE = _BUSY | {408, 500, 502, 504}
_MAX_ERROR_BODY = 64 * 1024
_MAX_LINE = 1024 * 1024  # one SSE line; a provider never sends more in one event


@dataclass(frozen=True)
class Event:
    """One server-sent event: its ``event:`` name (``message`` by default) and its joined ``data:`` lines."""

    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def check_url(url: str, setting: str) -> None:
    # Keys and tokens ride on these requests: plain http only to this machine (tests, local stand-ins).
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise ConfigError(f"{setting} must be an https:// URL")


def parse_events(lines: Iterator[bytes]) -> Iterator[Event]:
    """The SSE wire format (HTML living standard): ``field: value`` lines, a blank line ends an event."""
    name, data = "", []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield Event(name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment: keep-alive
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if data:
        yield Event(name or "message", "\n".join(data))


def retry_after_s(headers: Any, default: float) -> float:
    """Seconds to wait after a 429: what the service asks for, else ``default``."""
    wait = retry_after(headers)
    return default if wait is None else wait


class StreamingClient:
    """POSTs JSON and yields the response's server-sent events, under the limits described above."""

    def __init__(self, *, provider: str, timeout_s: float, max_s: float, rate_limit_budget_s: float,
                 sleep: Callable[[float], None] = time.sleep, backoff_s: float = 0.5) -> None:
        self._provider = provider
        self._timeout_s = timeout_s
        self._max_s = max_s
        self._budget_s = rate_limit_budget_s
        self._sleep = sleep
        self._backoff_s = backoff_s

    def events(self, url: str, headers: dict[str, str], body: dict[str, Any],
               error_code: Callable[[bytes], str | None]) -> Iterator[Event]:
        started = time.monotonic()
        waited_until = started + self._budget_s
        attempt = 0
        payload = json.dumps(body).encode()
        while True:
            attempt += 1
            connection, response = self._send(url, headers, payload)
            status = response.status
            if status == 200:
                break
            detail = error_code(_read_capped(response))
            connection.close()
            if status not in _RETRYABLE:
                raise ProviderError(f"{self._provider} refused the request (HTTP {status}"
                                    f"{', ' + detail if detail else ''}).", provider=self._provider,
                                    upstreamStatus=status)
            fallback = self._backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random())
            wait = retry_after_s(response.headers, fallback)
            if time.monotonic() + wait > waited_until:
                if status in _BUSY:
                    raise ProviderRateLimited(
                        f"{self._provider} is rate limiting requests (HTTP {status}); retry in a moment.",
                        provider=self._provider, retryAfter=max(1, round(wait)))
                raise ProviderUnavailable(f"{self._provider} answered HTTP {status}; retry shortly.",
                                          provider=self._provider)
            self._sleep(wait)
        try:
            yield from parse_events(self._lines(response, started))
        finally:
            connection.close()

    def _send(self, url: str, headers: dict[str, str], payload: bytes) -> tuple[Any, Any]:
        # Imported here: http.client pulls in email and ssl parsing; not needed until a provider is called.
        import http.client

        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.scheme == "https":
            connection: Any = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self._timeout_s,
                                                          context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self._timeout_s)
        try:
            connection.request("POST", path, body=payload, headers={
                **headers, "Content-Type": "application/json", "Accept": "text/event-stream"})
            return connection, connection.getresponse()
        except (TimeoutError, socket.timeout):
            connection.close()
            raise ProviderTimeout(f"{self._provider} did not answer within {self._timeout_s:g} s.",
                                  provider=self._provider) from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            _log.warning("could not reach %s: %s", self._provider, type(exc).__name__)
            raise ProviderUnavailable(f"Could not reach {self._provider}.", provider=self._provider) from None

    def _lines(self, response: Any, started: float) -> Iterator[bytes]:
        import http.client

        deadline = started + self._max_s
        while True:
            if time.monotonic() > deadline:
                raise ProviderTimeout(f"{self._provider} took longer than {self._max_s:g} s to answer.",
                                      provider=self._provider)
            try:
                line = response.readline(_MAX_LINE)
            except (TimeoutError, socket.timeout):
                raise ProviderTimeout(f"{self._provider} stopped sending for {self._timeout_s:g} s.",
                                      provider=self._provider) from None
            except (OSError, http.client.HTTPException) as exc:
                raise ProviderUnavailable(f"The connection to {self._provider} broke ({type(exc).__name__}).",
                                          provider=self._provider) from None
            if not line:
                return
            yield line


def _read_capped(response: Any) -> bytes:
    try:
        return response.read(_MAX_ERROR_BODY)
    except (OSError, ValueError):
        return b""
