"""The app's Entra credentials: one ``DefaultAzureCredential`` per managed identity, shared by every SDK."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

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
