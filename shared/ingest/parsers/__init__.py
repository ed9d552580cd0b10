"""One parser module per format, all with ``parse(data: bytes, limits: Limits) -> ParsedDocument``.

Modules load on first use: pypdf, python-docx, python-pptx and openpyxl cost cold-start time that
text uploads should not pay.

Scans go to OCR here, at the dispatch level: a PDF whose parser finds no text layer (or only an
unreadable one), and PNG, JPEG and TIFF images, are read through the ``ocr`` route when one is
given (Azure AI Document Intelligence, configured), and refused with a message saying what would
enable them when not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from shared.ingest.document import DocType, ParsedDocument
from shared.ingest.errors import EmptyDocument, UnreadableText
from shared.ingest.limits import DEFAULT_LIMITS, Limits, check_size
from shared.ingest.sniff import sniff

if TYPE_CHECKING:
    from shared.ingest.parsers.docintel import OcrRoute

_MODULES: dict[DocType, str] = {
    "pdf": "shared.ingest.parsers.pdf",
    "docx": "shared.ingest.parsers.docx",
    "pptx": "shared.ingest.parsers.pptx",
    "xlsx": "shared.ingest.parsers.xlsx",
    "csv": "shared.ingest.parsers.csv",
    "html": "shared.ingest.parsers.html",
    "markdown": "shared.ingest.parsers.markdown",
    "text": "shared.ingest.parsers.text",
    "image": "shared.ingest.parsers.docintel",  # refuses: images need the OCR route
}


class Parser(Protocol):
    """The interface each parser module satisfies."""

    def __call__(self, data: bytes, limits: Limits) -> ParsedDocument: ...


def get_parser(doc_type: DocType) -> Parser:
    """The ``parse`` function for ``doc_type``, importing its module on first use."""
    return importlib.import_module(_MODULES[doc_type]).parse  # type: ignore[no-any-return]


def parse_document(data: bytes, limits: Limits = DEFAULT_LIMITS, *, ocr: OcrRoute | None = None) -> ParsedDocument:
    """Size check, content sniffing, then the matching parser (or OCR, for scans and images).

    Raises a :class:`~shared.ingest.errors.DocumentRejected` subclass for any problem with the
    file itself.
    """
    check_size(data, limits)
    doc_type = sniff(data, limits)
    if doc_type == "image" and ocr is not None:
        return ocr.read(data, "image", limits)
    if doc_type != "pdf":
        return get_parser(doc_type)(data, limits)
    try:
        return get_parser("pdf")(data, limits)
    except (EmptyDocument, UnreadableText) as exc:
        if not _needs_ocr(exc):
            raise
        if ocr is None:
            raise _not_configured(exc) from None
    return ocr.read(data, "pdf", limits)


def _needs_ocr(exc: EmptyDocument | UnreadableText) -> bool:
    """No text layer, or one that is not words; an XFA form's placeholder page is neither (OCR would
    read "Please wait..." off it)."""
    return "XFA" not in exc.detail


def _not_configured(exc: EmptyDocument | UnreadableText) -> EmptyDocument | UnreadableText:
    from shared.ingest.parsers.docintel import NOT_CONFIGURED

    if isinstance(exc, EmptyDocument):
        return EmptyDocument(f"No text could be found in this PDF; it looks like a scanned image. {NOT_CONFIGURED}")
    return UnreadableText(f"{exc.detail} {NOT_CONFIGURED}", **exc.extensions)
