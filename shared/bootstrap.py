"""The composition root: the one place that builds Folio's adapters and hands them to the handlers.

:class:`Services` builds each adapter from ``Settings`` on first use (cold start stays small: no
SDK is imported until a request needs it) and keeps it for the life of the process. The HTTP adapter
(``blueprints/_http.py``) and the non-HTTP triggers ask :func:`services` for the process's instance
and pass its parts down as typed parameters; nothing below them reaches for a global.

The local host and the tests build a ``Services`` with their own stand-ins (a PostgreSQL-backed queue,
the Cosmos DB emulator's store, a hashing embedder) and :func:`install` it; nothing is monkeypatched.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from shared.config import Settings, get_settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.db import Database
    from shared.ports import (
        BlobStore,
        ChatModel,
        ChatModels,
        ChatStore,
        DocumentAnalyzer,
        Embedder,
        JobQueue,
        SecretStore,
    )

T = TypeVar("T")
_UNSET: Any = object()


Builder = Callable[["Services"], Any]


class Services:
    """Every adapter a handler may need, each built once, on first use, unless given.

    Pass an instance to use it instead of building one, or a builder in ``builders`` (by part name) to
    build it differently on first use: the local host and tests do both. ``secret_store`` may be given
    as ``None``, meaning users' own keys are off.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], Settings] = get_settings,
        credential: TokenCredential | None = None,
        database: Database | None = None,
        blobs: BlobStore | None = None,
        job_queue: JobQueue | None = None,
        embedder: Embedder | None = None,
        chat_store: ChatStore | None = None,
        chat_models: ChatModels | None = None,
        secret_store: SecretStore | None = _UNSET,
        builders: dict[str, Builder] | None = None,
    ) -> None:
        self._settings = settings
        self._builders = dict(builders or {})
        self._lock = threading.RLock()
        given: dict[str, Any] = {
            "credential": credential,
            "database": database,
            "blobs": blobs,
            "job_queue": job_queue,
            "embedder": embedder,
            "chat_store": chat_store,
            "chat_models": chat_models,
            "secret_store": secret_store,
        }
        self._given: dict[str, Any] = {
            name: value for name, value in given.items() if value is not None and value is not _UNSET
        }
        if secret_store is None:
            self._given["secret_store"] = None
        self._built: dict[str, Any] = {}

    def replace(self, **parts: Any) -> Services:
        """A copy that uses ``parts`` instead, and shares everything else already given or built here."""
        copy = Services(settings=self._settings, builders=self._builders)
        copy._given = {**self._given, **parts}
        copy._built = {name: value for name, value in self._built.items() if name not in parts}
        return copy

    @property
    def settings(self) -> Settings:
        """The current settings (refreshed from App Configuration when its sentinel changes)."""
        return self._settings()

    def _part(self, name: str, build: Callable[[], T]) -> T:
        if name in self._given:
            given: T = self._given[name]
            return given
        value = self._built.get(name, _UNSET)
        if value is _UNSET:
            with self._lock:
                value = self._built.get(name, _UNSET)
                if value is _UNSET:
                    builder = self._builders.get(name)
                    value = self._built[name] = builder(self) if builder else build()
        return value  # type: ignore[no-any-return]

    @property
    def credential(self) -> TokenCredential:
        """The app's Entra identity (the user-assigned managed identity in Azure)."""
        from shared.azure_credential import get_credential

        return self._part("credential", lambda: get_credential(self.settings.azure_client_id))

    @property
    def database(self) -> Database:
        from shared.db import Database

        def build() -> Database:
            settings = self.settings
            return Database.from_settings(settings, self.credential if settings.database_entra_auth else None)

        return self._part("database", build)

    @property
    def blobs(self) -> BlobStore:
        return self._part("blobs", self._build_blobs)

    @property
    def job_queue(self) -> JobQueue:
        return self._part("job_queue", self._build_job_queue)

    @property
    def embedder(self) -> Embedder:
        return self._part("embedder", self._build_embedder)

    @property
    def chat_store(self) -> ChatStore:
        return self._part("chat_store", self._build_chat_store)

    @property
    def chat_models(self) -> ChatModels:
        return self._part("chat_models", lambda: ConfiguredChatModels(self))

    @property
    def secret_store(self) -> SecretStore | None:
        return self._part("secret_store", self._build_secret_store)

    @property
    def document_analyzer(self) -> DocumentAnalyzer | None:
        """OCR for scans and images; ``None`` (they are refused) unless DOCUMENT_INTELLIGENCE_ENDPOINT is set."""
        return self._part("document_analyzer", self._build_document_analyzer)

    # --- production adapters ---------------------------------------------------------------------

    def _build_blobs(self) -> BlobStore:
        from shared.storage import AzureBlobStore

        settings = self.settings
        uses_entra = not (settings.storage_connection_string and settings.storage_connection_string.is_set())
        return AzureBlobStore(settings, credential=self.credential if uses_entra else None)

    def _build_job_queue(self) -> JobQueue:
        from shared.errors import ConfigError
        from shared.queue import servicebus_queue_from_settings

        settings = self.settings
        if settings.index_queue_backend != "servicebus":
            raise ConfigError(
                f"INDEX_QUEUE_BACKEND={settings.index_queue_backend!r} is not served by the product's "
                "services: Azure uses 'servicebus'; 'postgres' is the local host's stand-in "
                "(FOLIO_SERVICES_FACTORY=devhost.services:local_services, local development only)."
            )
        return servicebus_queue_from_settings(settings, self.credential)

    def _build_embedder(self) -> Embedder:
        from shared.ingest.embedders import embedder_from_settings

        settings = self.settings
        needs_identity = settings.embedding_provider == "azure-openai"
        return embedder_from_settings(settings, credential=self.credential if needs_identity else None)

    def _build_chat_store(self) -> ChatStore:
        from shared.chat.store import cosmos_chat_store

        settings = self.settings
        uses_key = settings.cosmos_key is not None and settings.cosmos_key.is_set()
        return cosmos_chat_store(settings, credential=None if uses_key else self.credential)

    def _build_secret_store(self) -> SecretStore | None:
        from shared.chat.secrets import secret_store_from_settings

        settings = self.settings
        return secret_store_from_settings(
            settings, credential=self.credential if settings.chat_key_store == "keyvault" else None
        )

    def _build_document_analyzer(self) -> DocumentAnalyzer | None:
        from shared.config import check_url

        settings = self.settings
        endpoint = settings.document_intelligence_endpoint
        if not endpoint:
            return None
        check_url(endpoint, "DOCUMENT_INTELLIGENCE_ENDPOINT")
        from shared.docintel import AzureDocumentAnalyzer

        return AzureDocumentAnalyzer(endpoint, self.credential, timeout_s=settings.document_intelligence_timeout_s)

    def close(self) -> None:
        """Close what this instance built (the database pool); given parts belong to whoever gave them."""
        with self._lock:
            built, self._built = self._built, {}
        for name in ("database", "chat_models"):
            part = built.get(name)
            if part is not None and hasattr(part, "close"):
                part.close()


class ConfiguredChatModels:
    """The deployment's chat model, built once per settings version; models on users' own keys per turn.

    Every model shares one HTTP client (its connection pool and Folio's retry budget), so a turn on a
    user's own key does not pay for a new TLS setup.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._lock = threading.Lock()
        self._for: Settings | None = None
        self._model: ChatModel | None = None
        self._http: Any = None

    def _http_client(self) -> Any:
        from shared.chat.providers.limits import model_http_client

        with self._lock:
            if self._http is None:
                self._http = model_http_client()
            return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def configured(self) -> ChatModel:
        from shared.chat.providers import get_provider

        settings = self._services.settings
        http = self._http_client()
        with self._lock:
            # A refreshed configuration is a new Settings object: the model is rebuilt from it.
            if self._model is None or self._for is not settings:
                self._model = get_provider(settings, credential=self._credential(settings), http_client=http)
                self._for = settings
            return self._model

    def with_user_key(self, provider: str, api_key: str, model: str | None) -> ChatModel:
        from shared.chat.providers import user_provider

        return user_provider(self._services.settings, provider, api_key, model, http_client=self._http_client())

    def _credential(self, settings: Settings) -> TokenCredential | None:
        return self._services.credential if settings.chat_provider == "azure-openai" else None


_process: Services | None = None
_process_lock = threading.Lock()


def services() -> Services:
    """The process's services: the installed ones, or else :func:`build_services`' (kept from then on)."""
    current = _process
    if current is None:
        with _process_lock:
            if _process is None:
                install(build_services())
            current = _process
    assert current is not None
    return current


def build_services() -> Services:
    """New services as the settings ask: production ones, or FOLIO_SERVICES_FACTORY's (``module:function``),
    which is how `func start` on a developer machine gets the local stand-ins without the product naming them."""
    from shared.errors import ConfigError

    target = get_settings().services_factory
    if not target:
        return Services()
    module, _, name = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"FOLIO_SERVICES_FACTORY={target!r} does not name a module:function.") from None
    built = factory()
    if not isinstance(built, Services):
        raise ConfigError(f"FOLIO_SERVICES_FACTORY={target!r} did not return Services.")
    return built


def install(replacement: Services | None) -> Services | None:
    """Make ``replacement`` the process's services (the local host and tests); returns the previous ones.

    ``None`` forgets them, so the next :func:`services` builds production ones from the settings.
    """
    global _process
    previous, _process = _process, replacement
    return previous
