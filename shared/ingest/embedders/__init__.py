"""Embedders behind one small interface: local all-MiniLM-L6-v2 (ONNX), Azure OpenAI and OpenAI (official SDK).

Importing this package loads no model, SDK or HTTP library; each embedder loads what it needs when
it is built or first used.
"""

from __future__ import annotations

from shared.ingest.embedders.base import Embedder, EmbeddingError
from shared.ingest.embedders.factory import embedder_from_settings
from shared.ingest.embedders.local import (
    LOCAL_DIMENSIONS,
    LOCAL_MODEL_ID,
    LocalMiniLMEmbedder,
    ModelIntegrityError,
)
from shared.ingest.embedders.openai import AzureOpenAIEmbedder, OpenAIEmbedder

__all__ = [
    "LOCAL_DIMENSIONS",
    "LOCAL_MODEL_ID",
    "AzureOpenAIEmbedder",
    "Embedder",
    "EmbeddingError",
    "LocalMiniLMEmbedder",
    "ModelIntegrityError",
    "OpenAIEmbedder",
    "embedder_from_settings",
]
