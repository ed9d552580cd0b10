"""What every embedder is: the interface the indexer and search use, the shared error, unit-length vectors."""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.errors import FolioError
from shared.ports import Embedder

__all__ = ["Embedder", "EmbeddingError", "l2_normalise"]


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
