"""What every embedder is: the interface the indexer and search use, the shared error, unit-length vectors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from shared.errors import FolioError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors, one per text, in input order.

    ``model_id`` and ``dimensions`` are stored with the index: vectors from different models
    (or dimensions) must never be mixed, so changing either means re-embedding.
    """

    model_id: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingError(FolioError):
    """The embedding service refused the request (bad request, auth, wrong deployment, bad reply).

    Not retryable: the same request would fail again until someone fixes configuration or
    permissions. Transient failures raise :class:`shared.errors.Unavailable` instead.
    """

    status, type_slug, title = 502, "embedding-failed", "Embedding service refused the request"


def l2_normalise(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1; an all-zero vector has no direction and stays zero."""
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0.0:
        return [0.0] * len(vector)
    return [x / norm for x in vector]


def refuse_bare_string(texts: Sequence[str]) -> None:
    """A bare ``str`` is a ``Sequence[str]`` of characters; embedding each letter is never meant."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not a single string")
