"""Ingestion front half: sniff an upload's type, parse it under limits, chunk it by structure."""

from shared.ingest.chunker import Chunk, chunk_document, content_hash
from shared.ingest.document import Block, BlockKind, DocType, ParsedDocument
from shared.ingest.errors import (
    CorruptDocument,
    DocumentRejected,
    EmptyDocument,
    ParseTimeout,
    TooLarge,
    UnreadableText,
    UnsupportedType,
)
from shared.ingest.limits import DEFAULT_LIMITS, Limits, check_zip
from shared.ingest.parsers import get_parser, parse_document
from shared.ingest.sniff import sniff
from shared.ingest.tokens import TokenCounter, estimate_tokens

__all__ = [
    "DEFAULT_LIMITS",
    "Block",
    "BlockKind",
    "Chunk",
    "CorruptDocument",
    "DocType",
    "DocumentRejected",
    "EmptyDocument",
    "Limits",
    "ParseTimeout",
    "ParsedDocument",
    "TokenCounter",
    "TooLarge",
    "UnreadableText",
    "UnsupportedType",
    "check_zip",
    "chunk_document",
    "content_hash",
    "estimate_tokens",
    "get_parser",
    "parse_document",
    "sniff",
]
