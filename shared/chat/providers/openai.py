"""OpenAI and Azure OpenAI chat completions, streamed through the official ``openai`` SDK.

OpenAI authenticates with an API key (the operator's, or a user's own). Azure OpenAI uses the app's
Entra identity (a ``TokenCredential``, through ``azure-identity``'s bearer token provider, which
caches the token until it nears expiry; no API keys in Azure) and addresses a deployment. Both
stream ``chat.completion.chunk`` events; with ``stream_options.include_usage`` the last one carries
the token usage, which is what is billed (counted locally, and marked estimated, when it is absent).

Parameters: ``max_completion_tokens`` always (the API reference deprecates ``max_tokens`` for chat
completions, and the o-series refuses it; Azure accepts it from api-version 2024-10-21). A
temperature is sent only to models that are not reasoning models (:func:`is_reasoning_model`),
which accept none but the default.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from shared.azure_credential import azure_openai_token_provider
from shared.chat.providers.base import Generation, ProviderError, Usage, estimated_usage
from shared.chat.providers.limits import Limits, SdkErrors, model_call, model_http_client, translated
from shared.config import Secret, check_url

if TYPE_CHECKING:
    import httpx2
    import openai
    from azure.core.credentials import TokenCredential

DEFAULT_TEMPERATURE = 0.2

# o1, o3-mini, o4-mini-2025-04-16, gpt-5, gpt-5.1-mini, gpt-6 ...: the o-series, and gpt-5 to gpt-9.
_REASONING = re.compile(r"^(?:o\d+|gpt-[5-9])(?:[-.:_]|$)", re.IGNORECASE)


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` is an OpenAI reasoning model: the o-series (``o1``, ``o3-mini``, ``o4-mini``...)
    and ``gpt-5`` and later (``gpt-5-mini``, ``gpt-5.1``...). These take no ``temperature`` but the
    default. A provider prefix (``openai/o3``) is ignored. On Azure the name checked is the
    deployment's, so name a deployment of such a model after it (``o4-mini``, ``gpt-5-chat``)."""
    return bool(_REASONING.match(model.rsplit("/", 1)[-1]))


class _ChatCompletions:
    """Streams one generation from an ``openai`` client's chat completions."""

    extractive = False

    def __init__(self, *, name: str, model: str, client: openai.OpenAI, limits: Limits, temperature: float) -> None:
        self.name = name
        self.model = model
        self._client = client
        self._limits = limits
        self._temperature = None if is_reasoning_model(model) else temperature

    def stream(self, generation: Generation) -> Iterator[str | Usage]:
        import openai

        errors = SdkErrors(
            status=openai.APIStatusError,
            timeout=openai.APITimeoutError,
            connection=openai.APIConnectionError,
            api=openai.APIError,
        )
        messages: list[Any] = [{"role": "system", "content": generation.system}]
        messages += [{"role": m.role, "content": m.content} for m in generation.messages]
        options: dict[str, Any] = {} if self._temperature is None else {"temperature": self._temperature}
        started = time.monotonic()
        with translated(self.name, errors, self._limits), model_call(self.name, self._limits):
            chunks = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                max_completion_tokens=generation.max_tokens,
                **options,
            )
        usage: Usage | None = None
        produced: list[str] = []
        with translated(self.name, errors, self._limits), chunks:
            for chunk in chunks:
                self._limits.check_deadline(self.name, started)
                for choice in chunk.choices:  # Azure opens with a chunk of prompt filter results, no choices
                    text = choice.delta.content if choice.delta else None
                    if text:
                        produced.append(text)
                        yield text
                    if choice.finish_reason == "content_filter":
                        raise ProviderError(f"{self.name} filtered the answer (content policy).", provider=self.name)
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
        yield usage if usage is not None else estimated_usage(generation, "".join(produced))


class OpenAIChat(_ChatCompletions):
    """Chat completions at ``base_url`` (OpenAI, or a server speaking its API) with an API key.

    A :class:`~shared.config.Secret` key is resolved for every request, so a rotated key applies at once.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | Secret,
        model: str,
        limits: Limits,
        http_client: httpx2.Client | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> None:
        check_url(base_url, "OPENAI_BASE_URL")
        import openai

        key: str | Callable[[], str] = api_key.reveal if isinstance(api_key, Secret) else api_key
        client = openai.OpenAI(
            base_url=base_url,
            api_key=key,
            max_retries=limits.max_retries,
            timeout=limits.timeout(),
            http_client=http_client or model_http_client(),
        )
        super().__init__(name="openai", model=model, client=client, limits=limits, temperature=temperature)


class AzureOpenAIChat(_ChatCompletions):
    """A chat deployment on an Azure OpenAI endpoint, with the app's Entra identity."""

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str,
        api_version: str,
        credential: TokenCredential,
        limits: Limits,
        http_client: httpx2.Client | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> None:
        check_url(endpoint, "AZURE_OPENAI_ENDPOINT")
        import openai

        client = openai.AzureOpenAI(
            azure_endpoint=endpoint,
            azure_deployment=deployment,
            api_version=api_version,
            azure_ad_token_provider=azure_openai_token_provider(credential),
            max_retries=limits.max_retries,
            timeout=limits.timeout(),
            http_client=http_client or model_http_client(),
        )
        super().__init__(name="azure-openai", model=deployment, client=client, limits=limits, temperature=temperature)
