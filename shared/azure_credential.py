"""The one Entra credential the process uses for every Azure service (managed identity in Azure)."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_credential: Any = None


def get_credential(client_id: str | None = None) -> Any:
    """A process-wide ``DefaultAzureCredential``, created on first use.

    ``client_id`` selects the user-assigned managed identity (``AZURE_CLIENT_ID``). The import
    is deferred so that processes that never talk to Azure never load azure-identity.
    """
    global _credential
    if _credential is None:
        with _lock:
            if _credential is None:
                from azure.identity import DefaultAzureCredential

                kwargs = {"managed_identity_client_id": client_id} if client_id else {}
                _credential = DefaultAzureCredential(**kwargs)
    return _credential
