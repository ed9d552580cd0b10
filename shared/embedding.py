"""The process-wide embedder, chosen by settings and created on first use (models load lazily)."""

from __future__ import annotations

from typing import Any

from shared.config import Settings, get_settings
from shared.lazy import ProcessSingleton


def _build() -> Any:
    from shared.ingest.embedders import embedder_from_settings

    return embedder_from_settings(get_settings())


_embedder: ProcessSingleton[Any] = ProcessSingleton(_build)
# Replace the process embedder (tests of non-retrieval behaviour use a fast fake); None resets.
set_embedder = _embedder.set


def get_embedder(settings: Settings | None = None) -> Any:
    return _embedder.get()
