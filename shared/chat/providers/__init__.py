"""Answer providers behind one interface (:class:`Provider`), chosen by ``CHAT_PROVIDER`` or a user's own key.

* ``extractive`` (default): quotes retrieved sentences; no model, no network.
* ``azure-openai``: a chat deployment on ``AZURE_OPENAI_ENDPOINT`` with the app's Entra identity.
* ``openai``: ``OPENAI_BASE_URL`` with ``OPENAI_API_KEY``.
* ``anthropic``: ``ANTHROPIC_BASE_URL`` with ``ANTHROPIC_API_KEY``.

A user's own key (shared/chat/secrets.py) selects ``openai`` or ``anthropic`` with that key, at the
configured base URL: users choose a key and a model, never an endpoint, so a key cannot be used to
make the app call arbitrary hosts.
"""

from __future__ import annotations

import threading
from typing import Any

from shared.chat.providers.base import (Generation, Message, Provider, ProviderError, ProviderRateLimited,
                                        ProviderTimeout, ProviderUnavailable, Source, Usage, complete,
                                        estimated_usage)
from shared.config import Settings
from shared.errors import ConfigError

PROVIDERS = ("extractive", "azure-openai", "openai", "anthropic")
BYO_PROVIDERS = ("openai", "anthropic")

__all__ = ["BYO_PROVIDERS", "PROVIDERS", "Generation", "Message", "Provider", "ProviderError", "ProviderRateLimited",
           "ProviderTimeout", "ProviderUnavailable", "Source", "Usage", "complete", "estimated_usage", "get_provider",
           "user_provider"]

_lock = threading.Lock()
_cache: dict[tuple[Any, ...], Provider] = {}


def _client(settings: Settings, name: str) -> Any:
    from shared.chat.providers.sse import StreamingClient

    return StreamingClient(provider=name, timeout_s=settings.chat_timeout_s, max_s=settings.chat_max_seconds,
                           rate_limit_budget_s=settings.chat_rate_limit_budget_s)


def get_provider(settings: Settings) -> Provider:
    """The operator's provider. Keyed ones are built per use, so a rotated key (Key Vault) applies at once;
    the others are kept per process and configuration (Azure OpenAI's Entra token cache lives in it)."""
    name = settings.chat_provider
    if name == "openai":
        return user_provider(settings, "openai", settings.require("openai_api_key").reveal(), None)
    if name == "anthropic":
        return user_provider(settings, "anthropic", settings.require("anthropic_api_key").reveal(), None)
    key = (name, settings.chat_timeout_s, settings.chat_max_seconds, settings.chat_rate_limit_budget_s,
           settings.azure_openai_endpoint, settings.azure_openai_chat_deployment, settings.azure_openai_api_version,
           settings.azure_client_id)
    with _lock:
        provider = _cache.get(key)
        if provider is None:
            provider = _cache[key] = _build(settings)
        return provider


def _build(settings: Settings) -> Provider:
    name = settings.chat_provider
    if name == "extractive":
        from shared.chat.providers.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer()
    if name == "azure-openai":
        from shared.chat.providers.openai import azure_openai_chat

        return azure_openai_chat(endpoint=settings.require("azure_openai_endpoint"),
                                 deployment=settings.require("azure_openai_chat_deployment"),
                                 api_version=settings.azure_openai_api_version, client=_client(settings, name),
                                 client_id=settings.azure_client_id)
    raise ConfigError(f"Setting CHAT_PROVIDER must be one of: {', '.join(PROVIDERS)}")


def user_provider(settings: Settings, name: str, api_key: str, model: str | None) -> Provider:
    """A provider with a given key (the operator's or a user's own); built per use, nothing cached."""
    if name == "openai":
        from shared.chat.providers.openai import openai_chat

        return openai_chat(base_url=settings.openai_base_url, api_key=api_key,
                           model=model or settings.openai_chat_model, client=_client(settings, name))
    if name == "anthropic":
        from shared.chat.providers.anthropic import AnthropicChat

        return AnthropicChat(base_url=settings.anthropic_base_url, api_key=api_key,
                             model=model or settings.anthropic_chat_model, client=_client(settings, name))
    raise ConfigError(f"Own keys are supported for: {', '.join(BYO_PROVIDERS)}")


def reset_providers() -> None:
    with _lock:
        _cache.clear()
