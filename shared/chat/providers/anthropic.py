"""Anthropic Messages API, streamed through the official ``anthropic`` SDK.

Events: ``message_start`` (input tokens) … ``content_block_delta`` (text) … ``message_delta``
(cumulative output tokens) … ``message_stop``. An ``error`` event inside a 200 stream (e.g.
``overloaded_error``) ends the answer; the SDK raises it and :func:`~shared.chat.providers.limits.translate`
names it. No temperature is sent: the Messages API version this SDK speaks has none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shared.chat.providers.base import Generation, Usage, estimated_usage
from shared.chat.providers.limits import (
    Limits,
    SdkErrors,
    folio_errors_through,
    model_call,
    model_http_client,
    translated,
)
from shared.config import Secret, check_url

if TYPE_CHECKING:
    import anthropic
    import httpx2


class AnthropicChat:
    """Claude at ``base_url`` with an API key (the operator's, or a user's own).

    A :class:`~shared.config.Secret` key is resolved for every answer, so a rotated key applies at once.
    The SDK sends the key as ``Authorization: Bearer`` (it speaks API version 2026-10-21).
    """

    extractive = False

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | Secret,
        model: str,
        limits: Limits,
        http_client: httpx2.Client | None = None,
    ) -> None:
        check_url(base_url, "ANTHROPIC_BASE_URL")
        self.name = "anthropic"
        self.model = model
        self._base_url = base_url
        self._api_key = api_key
        self._limits = limits
        self._http = http_client or model_http_client()
        self._client = self._new_client(api_key) if isinstance(api_key, str) else None

    def _new_client(self, api_key: str) -> anthropic.Anthropic:
        import anthropic

        return anthropic.Anthropic(
            base_url=self._base_url,
            api_key=api_key,
            max_retries=self._limits.max_retries,
            timeout=self._limits.timeout(),
            http_client=self._http,
            middleware=[folio_errors_through],
        )

    def stream(self, generation: Generation) -> Iterator[str | Usage]:
        import anthropic

        errors = SdkErrors(
            status=anthropic.APIStatusError,
            timeout=anthropic.APITimeoutError,
            connection=anthropic.APIConnectionError,
            api=anthropic.APIError,
        )
        key = self._api_key
        client = self._client or self._new_client(key.reveal() if isinstance(key, Secret) else key)
        messages: list[Any] = [{"role": m.role, "content": m.content} for m in generation.messages]
        started = time.monotonic()
        with translated(self.name, errors, self._limits), model_call(self.name, self._limits):
            events = client.messages.create(
                model=self.model,
                max_tokens=generation.max_tokens,
                system=generation.system,
                messages=messages,
                stream=True,
            )
        usage: Usage | None = None
        produced: list[str] = []
        with translated(self.name, errors, self._limits), events:
            for event in events:
                self._limits.check_deadline(self.name, started)
                if event.type == "message_start":
                    reported = event.message.usage
                    usage = Usage(reported.input_tokens or 0, reported.output_tokens or 0)
                elif event.type == "content_block_delta":
                    if event.delta.type == "text_delta" and event.delta.text:
                        produced.append(event.delta.text)
                        yield event.delta.text
                elif event.type == "message_delta" and usage is not None:  # cumulative counts, not increments
                    usage.completion_tokens = event.usage.output_tokens or 0
                    if event.usage.input_tokens:
                        usage.prompt_tokens = event.usage.input_tokens
                elif event.type == "message_stop":
                    break
        yield usage if usage is not None else estimated_usage(generation, "".join(produced))
