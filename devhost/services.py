"""The local host's composition: the product's services with local stand-ins where Azure has no local form."""

from __future__ import annotations

from typing import Any

from shared.bootstrap import Services
from shared.ports import ChatStore, JobQueue


def _job_queue(services: Services) -> JobQueue:
    """The PostgreSQL stand-in for Service Bus (INDEX_QUEUE_BACKEND=postgres), else Service Bus itself."""
    settings = services.settings
    if settings.index_queue_backend not in ("servicebus", "postgres"):
        from shared.errors import ConfigError

        raise ConfigError("INDEX_QUEUE_BACKEND must be 'servicebus' or 'postgres'.")
    if settings.index_queue_backend == "servicebus":
        from shared.queue import servicebus_queue_from_settings

        return servicebus_queue_from_settings(settings, services.credential)
    from devhost.local_queue import local_queue_from_settings

    return local_queue_from_settings(settings, services.database)


def _chat_store(services: Services) -> ChatStore:
    """The Cosmos DB emulator's store when COSMOS_ENDPOINT is on this machine, else real Cosmos DB."""
    from devhost.cosmos import emulator_chat_store, is_local_endpoint
    from shared.chat.store import cosmos_chat_store

    settings = services.settings
    if is_local_endpoint(settings.cosmos_endpoint or ""):
        return emulator_chat_store(settings)
    return cosmos_chat_store(settings, services.credential)


def local_services(**parts: Any) -> Services:
    """Services for `make dev` and the tests: built from the settings on first use, like production,
    with the local queue and the emulator's chat store; ``parts`` replace anything (a test's embedder)."""
    return Services(builders={"job_queue": _job_queue, "chat_store": _chat_store}).replace(**parts)
