"""Answer providers behind one interface (:class:`Provider`), chosen by ``CHAT_PROVIDER`` or a user's own key.

* ``extractive`` (default): quotes retrieved sentences; no model, no network.
* ``azure-openai``: a chat deployment on ``AZURE_OPENAI_ENDPOINT`` with the app's Entra identity.
* ``openai``: ``OPENAI_BASE_URL`` with ``OPENAI_API_KEY``.
* ``anthropic``: ``ANTHROPIC_BASE_URL`` with ``ANTHROPIC_API_KEY``.

The model providers run on the official ``openai`` and ``anthropic`` SDKs, loaded on first use, under
Folio's time limits (:mod:`shared.chat.providers.limits`). A user's own key (shared/chat/secrets.py)
selects ``openai`` or ``anthropic`` with that key, at the configured base URL: users choose a key and
a model, never an endpoint, so a key cannot be used to make the app call arbitrary hosts.

The factories here build a new provider on every call and keep nothing: the composition root
(:mod:`shared.bootstrap`) decides what to keep, and passes the Azure credential and, optionally, one
shared HTTP client (:func:`shared.chat.providers.limits.model_http_client`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.chat.providers.base import (
    Generation,
    Message,
    Provider,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Source,
    Usage,
    complete,
    estimated_usage,
)
from shared.config import Secret, Settings
from shared.errors import ConfigError

if TYPE_CHECKING:
    import httpx2
    from azure.core.credentials import TokenCredential

PROVIDERS = ("extractive", "azure-openai", "openai", "anthropic")
BYO_PROVIDERS = ("openai", "anthropic")

__all__ = [
    "BYO_PROVIDERS",
    "PROVIDERS",
    "Generation",
    "Message",
    "Provider",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Source",
    "Usage",
    "complete",
    "estimated_usage",
    "get_provider",
    "user_provider",
]


def get_provider(
    settings: Settings, credential: TokenCredential | None = None, *, http_client: httpx2.Client | None = None
) -> Provider:
    """The deployment's provider, per ``CHAT_PROVIDER``. ``credential`` is the app's Entra identity (for
    ``azure-openai``); keys are :class:`~shared.config.Secret` values, resolved per request."""
    name = settings.chat_provider
    if name == "extractive":
        from shared.chat.providers.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer()
    if name == "openai":
        return user_provider(settings, "openai", settings.require("openai_api_key"), None, http_client=http_client)
    if name == "anthropic":
        return user_provider(
            settings, "anthropic", settings.require("anthropic_api_key"), None, http_client=http_client
        )
    if name == "azure-openai":
        from shared.chat.providers.limits import Limits
        from shared.chat.providers.openai import AzureOpenAIChat

        if credential is None:  # transitional, until every caller passes the composition root's credential
            from shared.azure_credential import get_credential

            credential = get_credential(settings.azure_client_id)
        return AzureOpenAIChat(
            endpoint=settings.require("azure_openai_endpoint"),
            deployment=settings.require("azure_openai_chat_deployment"),
            api_version=settings.azure_openai_api_version,
            credential=credential,
            limits=Limits.from_settings(settings),
            http_client=http_client,
        )
    raise ConfigError(f"Setting CHAT_PROVIDER must be one of: {', '.join(PROVIDERS)}")


def user_provider(
    settings: Settings, name: str, api_key: str | Secret, model: str | None, *, http_client: httpx2.Client | None = None
) -> Provider:
    """A provider with a given key (the operator's, or a user's own) and model (else the configured one)."""
    from shared.chat.providers.limits import Limits

    limits = Limits.from_settings(settings)
    if name == "openai":
        from shared.chat.providers.openai import OpenAIChat

        return OpenAIChat(
            base_url=settings.openai_base_url,
            api_key=api_key,
            model=model or settings.openai_chat_model,
            limits=limits,
            http_client=http_client,
        )
    if name == "anthropic":
        from shared.chat.providers.anthropic import AnthropicChat

        return AnthropicChat(
            base_url=settings.anthropic_base_url,
            api_key=api_key,
            model=model or settings.anthropic_chat_model,
            limits=limits,
            http_client=http_client,
        )
    raise ConfigError(f"Own keys are supported for: {', '.join(BYO_PROVIDERS)}")
