"""Anthropic Messages API, streamed: ``message_start`` … ``content_block_delta`` … ``message_delta`` … ``message_stop``.

Input tokens arrive in ``message_start``, output tokens (cumulative) in ``message_delta``; an
``error`` event may arrive inside a 200 stream (e.g. ``overloaded_error``) and ends the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from shared.chat.providers.base import (Generation, ProviderError, ProviderRateLimited, ProviderUnavailable,
                                        Usage)
from shared.chat.providers.sse import StreamingClient, check_url

API_VERSION = "2023-06-01"
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def error_code(body: bytes) -> str | None:
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return None
    value = error.get("type") if isinstance(error, dict) else None
    return value if isinstance(value, str) and _CODE.match(value) else None


class AnthropicChat:
    extractive = False

    def __init__(self, *, base_url: str, api_key: str, model: str, client: StreamingClient,
                 temperature: float = 0.2) -> None:
        check_url(base_url, "ANTHROPIC_BASE_URL")
        self.name = "anthropic"
        self.model = model
        self._url = f"{base_url.rstrip('/')}/v1/messages"
        self._api_key = api_key
        self._client = client
        self._temperature = temperature

    def stream(self, generation: Generation) -> Iterator[str | Usage]:
        body: dict[str, Any] = {
            "model": self.model, "max_tokens": generation.max_tokens, "system": generation.system,
            "messages": [{"role": m.role, "content": m.content} for m in generation.messages],
            "stream": True, "temperature": self._temperature,
        }
        headers = {"x-api-key": self._api_key, "anthropic-version": API_VERSION}
        usage = Usage()
        for event in self._client.events(self._url, headers, body, error_code):
            if event.event == "ping":
                continue
            try:
                data = event.json()
            except ValueError:
                raise ProviderUnavailable("anthropic sent a malformed stream event.", provider=self.name) from None
            kind = data.get("type", event.event)
            if kind == "message_start":
                reported = (data.get("message") or {}).get("usage") or {}
                usage = Usage(int(reported.get("input_tokens") or 0), int(reported.get("output_tokens") or 0))
            elif kind == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield delta["text"]
            elif kind == "message_delta":
                reported = data.get("usage") or {}
                if "output_tokens" in reported:  # cumulative, not an increment
                    usage.completion_tokens = int(reported["output_tokens"] or 0)
            elif kind == "message_stop":
                break
            elif kind == "error":
                raise _stream_error(data)
        yield usage


def _stream_error(data: dict[str, Any]) -> Exception:
    kind = error_code(json.dumps(data).encode()) or "error"
    if kind == "rate_limit_error":
        return ProviderRateLimited("anthropic is rate limiting requests; retry in a moment.", provider="anthropic",
                                   retryAfter=5)
    if kind in ("overloaded_error", "api_error"):
        return ProviderUnavailable(f"anthropic failed while answering ({kind}); retry shortly.", provider="anthropic")
    return ProviderError(f"anthropic refused the request ({kind}).", provider="anthropic")
