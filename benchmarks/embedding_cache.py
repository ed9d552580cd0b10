"""A content-addressed cache of embeddings, so re-running a benchmark does not re-embed a corpus."""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class CachedEmbedder:
    """Wraps a real embedder; vectors are keyed by (model, sha256(text)). Misses go to the model."""

    def __init__(self, inner: Any, path: Path) -> None:
        self._inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB)")
        self.hits = self.misses = 0

    def _key(self, text: str) -> str:
        return self.model_id + ":" + hashlib.sha256(text.encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        keys = [self._key(t) for t in texts]
        found: dict[str, list[float]] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part
            ).fetchall()
            for key, blob in rows:
                found[key] = list(struct.unpack(f"{len(blob) // 4}f", blob))
        missing = [(k, t) for k, t in zip(keys, texts, strict=True) if k not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            vectors = self._inner.embed([t for _, t in missing])
            for (key, _), vector in zip(missing, vectors, strict=True):
                found[key] = vector
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                [(k, struct.pack(f"{len(v)}f", *v)) for (k, _), v in zip(missing, vectors, strict=True)],
            )
            self._db.commit()
        return [found[k] for k in keys]
