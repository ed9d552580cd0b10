"""A deterministic fake embedder for tests of code that needs vectors of the right shape, not meaning."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from shared.ingest.embedders.base import l2_normalise

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Signed feature hashing of lower-cased words: a FAKE embedder.

    For tests of chunk writers, SQL and plumbing that merely need *some* unit vectors of the right
    size. It carries no meaning beyond word overlap: never use it in retrieval-quality tests,
    benchmarks or anything deployed. Needs no model, network or numpy.
    """

    def __init__(self, dimensions: int = 384, model_id: str = "fake-hashing") -> None:
        if dimensions < 1:
            raise ValueError("dimensions must be positive")
        self.dimensions = dimensions
        self.model_id = model_id

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        words = _WORD.findall(text.lower()) or [""]  # empty text still gets a fixed unit vector
        for word in words:
            # blake2b, not hash(): Python's str hash is salted per process, so not reproducible.
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        return l2_normalise(vector)
