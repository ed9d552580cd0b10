"""One parser module per format, all with ``parse(data: bytes, limits: Limits) -> ParsedDocument``.

Modules load on first use: pypdf and python-docx cost cold-start time that text uploads
should not pay.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from shared.ingest.document import DocType, ParsedDocument
from shared.ingest.limits import DEFAULT_LIMITS, Limits, check_size
from shared.ingest.sniff import sniff

_MODULES: dict[DocType, str] = {
    "pdf": "shared.ingest.parsers.pdf",
    "docx": "shared.ingest.parsers.docx",
    "html": "shared.ingest.parsers.html",
    "markdown": "shared.ingest.parsers.markdown",
    "text": "shared.ingest.parsers.text",
}


class Parser(Protocol):
    """The interface each parser module satisfies."""

    def __call__(self, data: bytes, limits: Limits) -> ParsedDocument: ...


def get_parser(doc_type: DocType) -> Parser:
    """The ``parse`` function for ``doc_type``, importing its module on first use."""
    return importlib.import_module(_MODULES[doc_type]).parse  # type: ignore[no-any-return]


def parse_document(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedDocument:
    """Size check, content sniffing, then the matching parser.

    Raises a :class:`~shared.ingest.errors.DocumentRejected` subclass for any problem with the
    file itself.
    """
    check_size(data, limits)
    return get_parser(sniff(data, limits))(data, limits)
