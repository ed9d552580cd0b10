"""PDF text page by page with pypdf, under page, character, stream-size and time caps."""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import zlib
from collections import Counter
from typing import Any

import pypdf
from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

from shared.ingest.document import DocumentBuilder, ParsedDocument, too_many_chars
from shared.ingest.errors import CorruptDocument, TooLarge, UnsupportedType
from shared.ingest.limits import Deadline, Limits
from shared.ingest.structure import detect_marker, segment_lines
from shared.ingest.textcodec import normalise_text

# pypdf raises these (besides its own errors) on malformed files; none is a bug of ours.
_MALFORMED = (
    PyPdfError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    AssertionError,
    RecursionError,
    struct.error,
    zlib.error,
    UnicodeError,
    OSError,
    OverflowError,
)
# pypdf's per-stream decompression caps, all bound to Limits.pdf_max_stream_bytes.
_STREAM_CAPS = (
    "maximum_declared_stream_length",
    "array_based_stream_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "zlib_maximum_output_length",
    "brotli_maximum_output_length",
    "jbig2_maximum_output_length",
    "image_maximum_buffer_size",
)
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st"})
_PAGE_NUMBER = re.compile(r"^(?:page\s*)?[-–—(]?\s*\d{1,5}\s*[-–—)]?(?:\s*(?:of|/)\s*\d{1,5})?$", re.I)
_DIGITS = re.compile(r"\d+")
_JUNK_TITLE = re.compile(r"^(?:microsoft \w+ - |untitled)|\.(?:docx?|pdf|odt|rtf|txt)$", re.I)
_EDGE_LINES = 2  # lines at the top and bottom of a page where running heads live
_VISITS_PER_CLOCK_CHECK = 512


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Extract each page's text, drop running headers/footers, segment into blocks."""
    deadline = limits.deadline()
    with pypdf.apply_configuration(**_pypdf_overrides(limits)):
        reader = _open(data, limits)
        pages = _extract_pages(reader, limits, deadline)
        title = _metadata_title(reader)
    builder = DocumentBuilder("pdf", limits)
    for number, lines in enumerate(_drop_running_lines(pages), start=1):
        for segment in segment_lines(lines, join=" ", infer_paragraphs=True):
            builder.add(segment.kind, segment.text, level=segment.level, page=number)
    if title is None:
        title = next((b.text for b in builder.blocks if b.kind == "heading"), None)
    return builder.build(
        title=title,
        pages=len(pages),
        empty_hint=" It may be a scanned image; Folio does not run OCR yet.",
    )


def _pypdf_overrides(limits: Limits) -> dict[str, Any]:
    """Caps for this parse only (pypdf keeps them in a context variable, so threads are safe)."""
    known = {field.name for field in dataclasses.fields(pypdf.Configuration)}
    overrides: dict[str, Any] = {name: limits.pdf_max_stream_bytes for name in _STREAM_CAPS if name in known}
    if "jbig2dec_binary" in known:
        overrides["jbig2dec_binary"] = None  # never shell out for images we do not read
    return overrides


def _open(data: bytes, limits: Limits) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _decrypt_with_empty_password(reader):
            raise UnsupportedType("This PDF is password-protected. Remove the password and upload it again.")
        return reader
    except LimitReachedError as exc:
        raise _stream_too_large(limits) from exc
    except _MALFORMED as exc:
        raise _corrupt() from exc


def _decrypt_with_empty_password(reader: pypdf.PdfReader) -> bool:
    """PDFs "encrypted" only against editing open with an empty user password."""
    try:
        return bool(reader.decrypt(""))
    except (FileNotDecryptedError, NotImplementedError, PyPdfError):
        return False


def _extract_pages(reader: pypdf.PdfReader, limits: Limits, deadline: Deadline) -> list[list[str]]:
    count = _page_count(reader, limits)
    budget = _CharBudget(limits, deadline)
    pages: list[list[str]] = []
    failed = 0
    for index in range(count):
        deadline.check(f"page {index + 1}")
        try:
            text = reader.pages[index].extract_text(visitor_text=budget.visit)
        except LimitReachedError as exc:
            raise _stream_too_large(limits) from exc
        except _MALFORMED:
            failed += 1  # one unreadable page should not cost the rest of the document
            text = ""
        budget.settle(len(text))
        pages.append(normalise_text(text.translate(_LIGATURES)).split("\n"))
    if count and failed == count:
        raise _corrupt()
    return pages


def _page_count(reader: pypdf.PdfReader, limits: Limits) -> int:
    try:
        count = len(reader.pages)
    except LimitReachedError as exc:
        raise _stream_too_large(limits) from exc
    except _MALFORMED as exc:
        raise _corrupt() from exc
    if count == 0:
        raise _corrupt()
    if count > limits.max_pages:
        raise TooLarge(
            f"This PDF has {count:,} pages; the limit is {limits.max_pages:,} (max_pages). "
            "Split it into smaller files.",
            limit="max_pages",
            value=limits.max_pages,
        )
    return count


class _CharBudget:
    """Stops extraction inside a page as soon as its text passes ``max_chars``.

    pypdf hands every text fragment to the visitor before joining them, so a page whose
    content stream expands into megabytes of text is stopped mid-page, not after.
    """

    def __init__(self, limits: Limits, deadline: Deadline) -> None:
        self.limits = limits
        self.deadline = deadline
        self.total = 0  # characters of finished pages
        self.page = 0  # characters seen so far on the current page
        self.visits = 0

    def visit(self, text: str, *_: Any) -> None:
        self.page += len(text)
        if self.total + self.page > self.limits.max_chars:
            raise too_many_chars(self.limits)
        self.visits += 1
        if self.visits % _VISITS_PER_CLOCK_CHECK == 0:
            self.deadline.check("a page")

    def settle(self, page_chars: int) -> None:
        self.total += page_chars
        self.page = 0
        if self.total > self.limits.max_chars:
            raise too_many_chars(self.limits)


def _drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Remove page numbers and headers/footers repeated at the edges of most pages."""
    repeated = _running_keys(pages)
    cleaned = []
    for lines in pages:
        kept = [line for line in lines if line.strip()]
        edges = set(range(_EDGE_LINES)) | set(range(len(kept) - _EDGE_LINES, len(kept)))
        cleaned.append(
            [
                line
                for i, line in enumerate(kept)
                if not _PAGE_NUMBER.match(line.strip()) and not (i in edges and _line_key(line) in repeated)
            ]
        )
    return cleaned


def _running_keys(pages: list[list[str]]) -> set[str]:
    """Edge lines (digits ignored) found on at least half the pages, and on three or more."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        kept = [line for line in lines if line.strip()]
        seen.update({_line_key(line) for line in kept[:_EDGE_LINES] + kept[-_EDGE_LINES:]})
    threshold = max(3, len(pages) // 2)
    return {key for key, count in seen.items() if count >= threshold}


def _line_key(line: str) -> str:
    """Whitespace-normalised line; page-like digits blurred so "Page 3" matches "Page 4".

    Numbered headings keep their digits: "Section 3.1" opening page 3 and "Section 4.1"
    opening page 4 are content, not a running head.
    """
    key = " ".join(line.split()).lower()
    if len(key.split()) > 6 or detect_marker(line.strip()) is not None:
        return key
    return _DIGITS.sub("#", key)


def _metadata_title(reader: pypdf.PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except _MALFORMED:
        return None
    if not isinstance(title, str) or not title.strip() or _JUNK_TITLE.search(title.strip()):
        return None
    return title


def _stream_too_large(limits: Limits) -> TooLarge:
    return TooLarge(
        "A compressed stream inside this PDF expands beyond "
        f"{limits.pdf_max_stream_bytes / (1024 * 1024):.0f} MiB (pdf_max_stream_bytes); "
        "it looks like a decompression bomb and was not read further.",
        limit="pdf_max_stream_bytes",
        value=limits.pdf_max_stream_bytes,
    )


def _corrupt() -> CorruptDocument:
    return CorruptDocument(
        "This PDF is damaged or malformed and its text cannot be read. Try re-saving or "
        "re-exporting it as PDF and upload it again."
    )
