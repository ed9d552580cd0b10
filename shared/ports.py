"""The ports: what Folio's services need from the outside world, as typed interfaces.

Each is a :class:`typing.Protocol`, so an adapter satisfies it by shape, without inheriting. The
production adapters talk to Azure, OpenAI and Anthropic through their official SDKs; the local host
and the tests hand in stand-ins (a PostgreSQL-backed queue, a hashing embedder) through the same
interfaces. :mod:`shared.bootstrap` is the one place that picks and builds them.

Only types are imported here, so importing the ports costs nothing at cold start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from shared.chat.providers.base import Generation, Usage
    from shared.chat.store import Owner, Page
    from shared.queue import DeadLetter
    from shared.storage import BlobRef, BlobVersion, UploadUrl


class ChatModel(Protocol):
    """Streams an answer: text pieces as they come, then exactly one ``Usage``, then stops."""

    name: str
    model: str
    extractive: bool

    def stream(self, generation: Generation) -> Iterator[str | Usage]: ...


class ChatModels(Protocol):
    """Chooses the model of a chat turn: the deployment's, or one on the user's own key."""

    def configured(self) -> ChatModel: ...

    def with_user_key(self, provider: str, api_key: str, model: str | None) -> ChatModel: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors, one per text, in input order.

    ``model_id`` and ``dimensions`` are stored with the index: vectors from different models
    (or dimensions) must never be mixed, so changing either means re-embedding.
    """

    model_id: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class DocumentAnalyzer(Protocol):
    """OCR with layout for scans and images: Azure AI Document Intelligence's ``prebuilt-layout``.

    ``analyze`` returns the service's ``analyzeResult`` in its documented REST shape (camelCase keys:
    ``pages``, ``paragraphs`` with ``role``, ``spans`` and ``boundingRegions``, ``tables`` with
    ``cells``). ``pages`` ("1-12") limits what is analysed, and billed. A problem with the file is
    a :class:`~shared.ingest.errors.DocumentRejected`; a service problem (throttling, outage) is
    :class:`~shared.errors.Unavailable`, so the job is retried.
    """

    def analyze(self, data: bytes, *, pages: str | None = None) -> dict[str, Any]: ...


class JobQueue(Protocol):
    """Index jobs: sent by id (a second send of a recent id is dropped), dead letters listed and replayed."""

    def send(self, message_id: str, body: dict[str, Any]) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def replay(self, message_id: str) -> bool: ...


class BlobStore(Protocol):
    """The upload container: short-lived upload URLs, and reading and deleting what was uploaded."""

    def ping(self) -> None: ...

    def upload_url(self, ref: BlobRef, now: dt.datetime | None = None) -> UploadUrl: ...

    def properties(self, ref: BlobRef) -> BlobVersion: ...

    def download(self, ref: BlobRef, etag: str, max_bytes: int) -> bytes: ...

    def delete(self, ref: BlobRef) -> bool: ...


class SecretStore(Protocol):
    """Named secrets (users' own model keys): Key Vault in Azure, files in a private directory locally."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


class ChatStore(Protocol):
    """Chat sessions and their messages, one partition per (tenant, user)."""

    def ping(self) -> None: ...

    def create_session(self, owner: Owner, title: str) -> dict[str, Any]: ...

    def get_session(self, owner: Owner, session_id: str) -> dict[str, Any]: ...

    def list_sessions(self, owner: Owner, *, limit: int, continuation: str | None) -> Page: ...

    def rename_session(self, owner: Owner, session_id: str, title: str, *, if_match: str | None) -> dict[str, Any]: ...

    def delete_session(self, owner: Owner, session_id: str, *, if_match: str | None) -> None: ...

    def messages(self, owner: Owner, session_id: str) -> list[dict[str, Any]]: ...

    def recent_messages(self, owner: Owner, session_id: str, count: int) -> list[dict[str, Any]]: ...

    def append_turn(
        self, owner: Owner, session_id: str, question: dict[str, Any], answer: dict[str, Any], *, max_turns: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]: ...

    def message(self, owner: Owner, session_id: str, message_id: str) -> dict[str, Any]: ...

    def set_feedback(
        self, owner: Owner, session_id: str, message_id: str, feedback: dict[str, Any] | None
    ) -> dict[str, Any]: ...
