"""The one interface every answer provider implements, and the errors a provider may raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.errors import FolioError
from shared.ingest.tokens import estimate_tokens
from shared.ports import ChatModel


@dataclass(frozen=True)
class Source:
    """One retrieved passage, numbered as the prompt shows it; only these may be cited."""

    n: int
    chunk_id: str
    document_id: str
    title: str
    heading_path: list[str]
    pages: dict[str, int] | None
    snippet: str
    text: str

    def citation(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "chunkId": self.chunk_id,
            "documentId": self.document_id,
            "title": self.title,
            "headingPath": self.heading_path,
            "pages": self.pages,
            "snippet": self.snippet,
        }


@dataclass(frozen=True)
class Message:
    role: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Generation:
    """What to answer: the system prompt, the conversation ending with the user's turn, and its sources.

    ``sources`` and ``question`` are also given structurally, for providers that do not read prose
    (the extractive one).
    """

    system: str
    messages: list[Message]
    max_tokens: int
    question: str = ""
    sources: list[Source] = field(default_factory=list)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # counted locally, not reported by a model

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.estimated or other.estimated,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": self.total_tokens,
            "estimated": self.estimated,
        }


def estimated_usage(generation: Generation, produced: str) -> Usage:
    """Usage counted locally: what ``generation`` gave the model to read, and what it wrote."""
    read = generation.system + "".join(m.content for m in generation.messages)
    return Usage(estimate_tokens(read), estimate_tokens(produced), estimated=True)


# The port a chat model adapter implements (shared/ports.py); the name providers have always used.
Provider = ChatModel


def complete(provider: Provider, generation: Generation) -> tuple[str, Usage]:
    """The whole text of a generation and its usage (for short, internal calls such as the rewrite)."""
    parts: list[str] = []
    usage = Usage()
    for piece in provider.stream(generation):
        if isinstance(piece, Usage):
            usage = piece
        else:
            parts.append(piece)
    return "".join(parts), usage


# --- errors -------------------------------------------------------------------------------------
# Raised by providers; the chat turn turns them into an `error` event (or problem+json). Details name
# the provider and the HTTP status or error type, never the key, the prompt or the provider's message.


class ProviderError(FolioError):
    """The provider refused the request (bad key, unknown model, content too long...): retrying won't help."""

    status, type_slug, title = 502, "chat-provider-error", "The answer provider refused the request"


class ProviderUnavailable(FolioError):
    status, type_slug, title = 503, "chat-provider-unavailable", "The answer provider is unavailable"


class ProviderRateLimited(FolioError):
    """The provider kept answering 429 for longer than CHAT_RATE_LIMIT_BUDGET_SECONDS."""

    status, type_slug, title = 429, "chat-provider-rate-limited", "The answer provider is busy"


class ProviderTimeout(FolioError):
    status, type_slug, title = 504, "chat-provider-timeout", "The answer provider did not answer in time"
