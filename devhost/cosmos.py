"""The chat store on the local Cosmos DB emulator (cosmosdb-server from npm), with its quirks handled here.

The product's :func:`shared.chat.store.cosmos_chat_store` talks to real Cosmos DB only. The emulator
differs in three ways, all absorbed in this module so none of them ships:

* its certificate is self-signed, so TLS verification is off (loopback endpoints only);
* it holds one region, so endpoint discovery is off;
* a point read of a missing item answers 500 instead of 404: :class:`EmulatorContainer` turns that
  into the SDK's own not-found error, so the store sees what Cosmos DB would send.

It also creates the database and the chat container, which Bicep does in Azure.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any
from urllib.parse import urlsplit

from shared.chat.store import ChatStore
from shared.config import Settings

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# The chat container's partition key, as bicep/modules/cosmos.bicep declares it.
PARTITION_PATHS = ["/tenantId", "/userId"]


def is_local_endpoint(endpoint: str) -> bool:
    return (urlsplit(endpoint).hostname or "") in _LOOPBACK


class EmulatorContainer:
    """A ``ContainerProxy`` whose point reads report a missing item as 404, as Cosmos DB does."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def read_item(self, *args: Any, **kwargs: Any) -> Any:
        from azure.cosmos import exceptions

        try:
            return self._container.read_item(*args, **kwargs)
        except exceptions.CosmosHttpResponseError as exc:
            if exc.status_code == 500:
                raise exceptions.CosmosResourceNotFoundError(status_code=404, message="Not found") from None
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)


def _client(settings: Settings) -> Any:
    import urllib3
    from azure.cosmos import CosmosClient

    endpoint = settings.require("cosmos_endpoint")
    if not is_local_endpoint(endpoint):
        raise ValueError(f"{endpoint} is not a local emulator: refusing to turn TLS verification off")
    key = settings.require("cosmos_key").reveal()
    logging.getLogger("azure.cosmos._cosmos_http_logging_policy").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    return CosmosClient(
        endpoint,
        key,
        connection_verify=False,
        enable_endpoint_discovery=False,
        connection_timeout=max(1, int(settings.cosmos_timeout_s)),
        read_timeout=settings.cosmos_timeout_s,
    )


def emulator_chat_store(settings: Settings) -> ChatStore:
    """The chat store on the emulator, with its database and container created if missing."""
    from azure.cosmos import PartitionKey

    database = _client(settings).create_database_if_not_exists(settings.cosmos_database)
    container = database.create_container_if_not_exists(
        settings.cosmos_chat_container, partition_key=PartitionKey(path=PARTITION_PATHS, kind="MultiHash")
    )
    return ChatStore(EmulatorContainer(container))
