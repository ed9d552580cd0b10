"""OpenAI and Azure OpenAI chat completions, streamed (one adapter: the wire format is the same).

OpenAI authenticates with an API key (the operator's, or a user's own). Azure OpenAI uses the app's
Entra identity (``DefaultAzureCredential``; no API keys in Azure) and addresses a deployment, not a
model. Both stream ``data: {chat.completion.chunk}`` events ending in ``data: [DONE]``; with
``stream_options.include_usage`` the last chunk carries the token usage, which is what is billed.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from shared.chat.providers.base import Generation, ProviderError, ProviderUnavailable, Usage, estimated_usage
from shared.chat.providers.sse import StreamingClient, check_url
from shared.errors import ConfigError, Unavailable

_COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
_TOKEN_REFRESH_MARGIN_S = 300
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def error_code(body: bytes) -> str | None:
    """The provider's error code or type (an identifier), never its free-text message."""
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return None
    for key in ("code", "type"):
        value = error.get(key) if isinstance(error, dict) else None
        if isinstance(value, str) and _CODE.match(value):
            return value
    return None


class OpenAIChat:
    """``POST {base}/chat/completions`` (OpenAI) or ``{endpoint}/openai/deployments/{d}/chat/completions`` (Azure)."""

    extractive = False

    def __init__(self, *, name: str, url: str, model: str, client: StreamingClient,
                 auth: Callable[[], dict[str, str]], send_model: bool = True, temperature: float = 0.2) -> None:
        self.name = name
        self.model = model
        self._url = url
        self._client = client
        self._auth = auth
        self._send_model = send_model
        self._temperature = temperature

    def stream(self, generation: Generation) -> Iterator[str | Usage]:
        messages = [{"role": "system", "content": generation.system}]
        messages += [{"role": m.role, "content": m.content} for m in generation.messages]
        body: dict[str, Any] = {"messages": messages, "stream": True, "stream_options": {"include_usage": True},
                                "max_tokens": generation.max_tokens, "temperature": self._temperature}
        if self._send_model:
            body["model"] = self.model
        usage: Usage | None = None
        produced: list[str] = []
        for event in self._client.events(self._url, self._auth(), body, error_code):
            if event.data.strip() == "[DONE]":
                break
            try:
                chunk = event.json()
            except ValueError:
                raise ProviderUnavailable(f"{self.name} sent a malformed stream event.", provider=self.name) from None
            if chunk.get("error"):
                # An error inside a 200 stream (e.g. the server gave up mid-answer).
                raise ProviderUnavailable(f"{self.name} failed while answering"
                                          f" ({error_code(json.dumps(chunk).encode()) or 'error'}).",
                                          provider=self.name)
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    produced.append(text)
                    yield text
                if choice.get("finish_reason") == "content_filter":
                    raise ProviderError(f"{self.name} filtered the answer (content policy).", provider=self.name)
            reported = chunk.get("usage")
            if reported:
                usage = Usage(int(reported.get("prompt_tokens") or 0), int(reported.get("completion_tokens") or 0))
        if usage is None:  # an API version without stream usage: count it ourselves, and say so
            usage = estimated_usage(generation, "".join(produced))
        yield usage


def openai_chat(*, base_url: str, api_key: str, model: str, client: StreamingClient) -> OpenAIChat:
    check_url(base_url, "OPENAI_BASE_URL")
    return OpenAIChat(name="openai", url=f"{base_url.rstrip('/')}/chat/completions", model=model, client=client,
                      auth=lambda: {"Authorization": f"Bearer {api_key}"})


def azure_openai_chat(*, endpoint: str, deployment: str, api_version: str, client: StreamingClient,
                      credential: Any = None, client_id: str | None = None) -> OpenAIChat:
    check_url(endpoint, "AZURE_OPENAI_ENDPOINT")
    if not deployment:
        raise ConfigError("AZURE_OPENAI_CHAT_DEPLOYMENT is required for CHAT_PROVIDER=azure-openai")
    url = (f"{endpoint.rstrip('/')}/openai/deployments/{quote(deployment, safe='')}/chat/completions"
           f"?api-version={quote(api_version, safe='')}")
    tokens = EntraToken(credential, client_id)
    return OpenAIChat(name="azure-openai", url=url, model=deployment, client=client, send_model=False,
                      auth=lambda: {"Authorization": f"Bearer {tokens.get()}"})


class EntraToken:
    """An Entra access token for Azure OpenAI, refreshed before it expires, never mid-request."""

    def __init__(self, credential: Any = None, client_id: str | None = None) -> None:
        self._credential = credential
        self._client_id = client_id
        self._lock = threading.Lock()
        self._token: Any = None

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on - time.time() < _TOKEN_REFRESH_MARGIN_S:
                if self._credential is None:
                    from shared.azure_credential import get_credential  # deferred: loads azure-identity

                    self._credential = get_credential(self._client_id)
                try:
                    self._token = self._credential.get_token(_COGNITIVE_SCOPE)
                except Exception as exc:  # azure-identity raises many types; none is ours to show
                    raise Unavailable(f"Could not get an Entra token for Azure OpenAI ({type(exc).__name__})") from None
            return str(self._token.token)
