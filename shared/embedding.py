"""The process-wide embedder, chosen by settings and created on first use (models load lazily)."""

from __future__ import annotations

import threading
from typing import Any

from shared.config import Settings

_lock = threading.Lock()
_embedder: Any = None


def get_embedder(settings: Settings) -> Any:
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                from shared.ingest.embedders import embedder_from_settings

                _embedder = embedder_from_settings(settings)
    return _embedder


def set_embedder(embedder: Any) -> None:
    """Replace the process embedder (tests of non-retrieval behaviour use a fast fake)."""
    global _embedder
    with _lock:
        _embedder = embedder
