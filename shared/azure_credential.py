"""The app's Entra credentials: one ``DefaultAzureCredential`` per managed identity, shared by every SDK."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.errors import Unavailable

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"

_lock = threading.Lock()
_credentials: dict[str | None, TokenCredential] = {}


def get_credential(client_id: str | None = None) -> TokenCredential:
    """The process's ``DefaultAzureCredential`` for ``client_id``, created on first use.

    ``client_id`` selects the user-assigned managed identity (``AZURE_CLIENT_ID``); each id gets its
    own credential (and token cache). One instance per id is shared because each holds a token cache
    that every client using it benefits from. The import is deferred so that processes that never
    talk to Azure never load azure-identity.
    """
    key = client_id or None
    credential = _credentials.get(key)
    if credential is None:
        with _lock:
            credential = _credentials.get(key)
            if credential is None:
                from azure.identity import DefaultAzureCredential

                kwargs = {"managed_identity_client_id": key} if key else {}
                credential = _credentials[key] = DefaultAzureCredential(**kwargs)
    return credential


def azure_openai_token_provider(credential: TokenCredential) -> Callable[[], str]:
    """Bearer tokens for Azure OpenAI (the Cognitive Services scope) from ``credential``, for the ``openai`` SDK.

    azure-identity's bearer token provider caches each token and renews it before it expires. A
    failure to get one is :class:`~shared.errors.Unavailable` naming only the exception's type:
    azure-identity raises many types, and none of their messages is ours to show.
    """
    from azure.identity import get_bearer_token_provider

    bearer = get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE)

    def token() -> str:
        try:
            return bearer()
        except Exception as exc:
            raise Unavailable(f"Could not get an Entra token for Azure OpenAI ({type(exc).__name__})") from None

    return token
