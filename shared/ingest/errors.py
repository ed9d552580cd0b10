"""Permanent document problems: the file itself is the cause, so retrying never helps."""

from __future__ import annotations

from typing import Any

from shared.errors import Invalid

# The formats a user can upload, named the way people know them; every rejection repeats this.
SUPPORTED_FORMATS = "PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV, HTML, Markdown or plain-text (UTF-8)"


class DocumentRejected(Invalid):
    """Base of every rejection. The indexer marks the document failed and never retries it.

    ``detail`` is written for the person who uploaded the file: what is wrong and, where there
    is one, what they can do about it.
    """

    type_slug, title = "document-rejected", "Document rejected"


class UnsupportedType(DocumentRejected):
    """The content is not a format Folio can read (decided by content, never by name)."""

    type_slug, title = "document-unsupported", "Unsupported document type"


class EmptyDocument(DocumentRejected):
    """The file has no bytes, or no text that could be extracted from it."""

    type_slug, title = "document-empty", "Document is empty"


class UnreadableText(DocumentRejected):
    """The file has a text layer, but it is not words: glyph names, undecodable characters, or
    a form whose content only one viewer can draw. Indexing it would fill search with junk."""

    type_slug, title = "document-unreadable", "Document text is unreadable"


class CorruptDocument(DocumentRejected):
    """The file claims a format but is damaged or malformed."""

    type_slug, title = "document-corrupt", "Document is damaged"


class TooLarge(DocumentRejected):
    """A limit was hit: bytes, pages, characters, or a ZIP that inflates too far.

    ``limit`` names the :class:`~shared.ingest.limits.Limits` field that stopped the parse and
    ``value`` its setting, both also in ``extensions`` so problem+json bodies carry them.
    """

    status = 413
    type_slug, title = "document-too-large", "Document too large"

    def __init__(self, detail: str, *, limit: str, value: Any, **extensions: Any) -> None:
        super().__init__(detail, limit=limit, value=value, **extensions)
        self.limit = limit
        self.value = value


class ParseTimeout(DocumentRejected):
    """Parsing ran past the wall-time budget; the same file would time out again."""

    type_slug, title = "document-timeout", "Document took too long to read"
