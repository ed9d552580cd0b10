"""PDF text page by page with pypdf, under page, character, stream-size and time caps.

Besides the text, pypdf's text visitor gives each fragment's font and size, so headings are
found from typography (larger than the body text, or a whole line in bold at body size), and
text smaller than the body (footnotes, captions) is never taken for a heading. Running headers
and footers are lines repeated at the top or bottom of pages once digits are ignored; a line
that is only a number is dropped only where it is a page number.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import math
import re
import struct
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pypdf
from pypdf import PageObject
from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError
from pypdf.generic import DictionaryObject, IndirectObject

from shared.ingest.document import DocumentBuilder, ParsedDocument, too_many_chars
from shared.ingest.errors import CorruptDocument, TooLarge, UnreadableText, UnsupportedType
from shared.ingest.limits import Deadline, Limits
from shared.ingest.structure import BODY_TEXT, SMALL_TEXT, TABLE_ROW, detect_marker, marker_rank, segment_lines
from shared.ingest.textcodec import normalise_text

# pypdf logs a warning for every robustness fix it applies and for every font it cannot fully
# read ("fontTools is required..."), dozens per file; the text is read either way, so only its
# errors are worth a log line.
logging.getLogger("pypdf").setLevel(logging.ERROR)

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
_BARE_NUMBER_LINE = re.compile(r"^[-–—(]?\s*(\d{1,5})\s*[-–—)]?$")
# "Page 3", "Page 3 of 9", "3 of 9", "3/9", "- 3 -": page numbers wherever they stand at an edge.
_PAGE_LABEL = re.compile(
    r"^(?:page\s*\d{1,5}(?:\s*(?:of|/)\s*\d{1,5})?|\d{1,5}\s*(?:of|/)\s*\d{1,5}|[-–—]\s*\d{1,5}\s*[-–—])$", re.I
)
_DIGITS = re.compile(r"\d+")
# "Part 3 - Liability | Page 7": a page label inside a longer edge line (a running head that
# also names its section).
_PAGE_IN_LINE = re.compile(r"\bpage\s+(\d{1,5})\b", re.I)
# Month and weekday names change like the digits of a date in a running footer ("Retrieved
# March 2, 2026"), so they are blurred with them.
_DATE_WORDS = re.compile(
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec"
    r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b\.?"
)
_EDGE_NUMBER = re.compile(r"^\d{1,5}(?=\s)|(?<=\s)\d{1,5}$")
# Weight in the font's name: "Helvetica-Bold", "NimbusRomNo9L-Medi" (Times bold), TeX's "CMBX10".
_BOLD_FONT = re.compile(r"bold|black|heavy|demi|-medi|medium|^cmbx|^cmb\d|,b$", re.I)
_JUNK_TITLE = re.compile(r"^(?:microsoft \w+ - |untitled)|\.(?:docx?|pdf|odt|rtf|txt)$", re.I)
_EDGE_LINES = 3  # lines at the top and bottom of a page where running heads live
_RUNNING_SHARE = 0.4  # a running line is on this share of pages or more (odd/even heads alternate)
_HEADING_SIZE = 1.12  # a line this much larger than the body text is a heading
_SMALL_SIZE = 0.9  # a line this much smaller is a footnote or caption, never a heading
_MAX_HEADING_WORDS = 20
_MAX_HEADING_RUN = 3
_HEADING_WORD = re.compile(r"[^\W\d_]{3,}")
_CAPTION = re.compile(r"(?:fig(?:ure)?|table|chart|exhibit|source)\.?\s*\d", re.I)
_GLUED_NUMBER = re.compile(r"\d+[^\W\d_]")  # "90Top-k accuracy": chart axis text run together
_MAX_TYPESET_LEVEL = 3  # below the "Section 1.1" ranks, which numbered headings keep
_VISITS_PER_CLOCK_CHECK = 512
_OBJECT_HEADER = re.compile(rb"(?<![0-9])([0-9]{1,10})[ \t\r\n]+([0-9]{1,5})[ \t\r\n]+obj\b")
_PAGE_TYPE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
# "/g18/g152", "/uni0041", "/glyph12": names of glyphs where their characters should be.
_GLYPH_NAMES = re.compile(r"(?:/[A-Za-z]{1,8}\d[0-9A-Fa-f]{0,4}){2,}")
_MAX_JUNK_SHARE = 0.3
_MIN_READABLE_SHARE = 0.1  # below this share of readable text the document is refused
_UNREADABLE = (
    "Folio cannot index this PDF: the text layer is unreadable (OCR is not supported). Its "
    "text comes out as glyph names or undecodable characters instead of words, usually because "
    "its fonts lack a character map. Export it again as PDF with text, or as Word, and upload that."
)


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Extract each page's text, drop running headers/footers, segment into blocks."""
    deadline = limits.deadline()
    with pypdf.apply_configuration(**_pypdf_overrides(limits)):
        reader = _open(data, limits)
        pages = _extract_pages(_page_list(reader, data, limits), limits, deadline)
        _refuse_xfa_placeholder(reader, pages)
        title = _metadata_title(reader)
    hints = _Typography(pages).hints()
    builder = DocumentBuilder("pdf", limits)
    for number, (lines, page_hints) in enumerate(_drop_running_lines(pages, hints), start=1):
        for segment in segment_lines(lines, join=" ", infer_paragraphs=True, hints=page_hints):
            builder.add(segment.kind, segment.text, level=segment.level, page=number)
    if title is None:
        title = next((b.text for b in builder.blocks if b.kind == "heading"), None)
    return builder.build(
        title=title,
        pages=len(pages),
        empty_hint=" It may be a scanned image; Folio does not run OCR yet.",
    )


@dataclasses.dataclass(slots=True)
class _Line:
    """One extracted line and how it was set: characters per font size, and how many in bold;
    ``table`` for a table row laid out on the page (its cells joined by " | ")."""

    text: str
    sizes: Counter[float] = dataclasses.field(default_factory=Counter)
    bold: int = 0
    table: bool = False

    @property
    def chars(self) -> int:
        return sum(self.sizes.values())

    @property
    def size(self) -> float | None:
        return self.sizes.most_common(1)[0][0] if self.sizes else None

    @property
    def all_bold(self) -> bool:
        return self.chars > 0 and self.bold >= 0.9 * self.chars


class _Typography:
    """Heading levels from font sizes relative to the body text (the most used size)."""

    def __init__(self, pages: list[list[_Line]]) -> None:
        self.pages = pages
        sizes: Counter[float] = Counter()
        bold = total = 0
        for lines in pages:
            for line in lines:
                sizes.update(line.sizes)
                bold, total = bold + line.bold, total + line.chars
        self.body = sizes.most_common(1)[0][0] if sizes else None
        self.bold_is_rare = total > 0 and bold < 0.3 * total
        found: dict[float, list[int]] = {}  # heading size -> pages of the lines set in it
        for page, lines in enumerate(pages):
            for line in lines:
                if (
                    (size := line.size) is not None
                    and self._is_heading_sized(line)
                    and self._reads_as_heading(line.text)
                ):
                    found.setdefault(size, []).append(page)
        # A size used by one line past the first page, unnumbered, is a figure's lettering
        # ("Exit Guard Nested Tree" in a diagram), not a level of the document's outline.
        larger = {size for size, on in found.items() if len(on) > 1 or on[0] == 0}
        self.levels = {size: min(rank, _MAX_TYPESET_LEVEL) for rank, size in enumerate(sorted(larger, reverse=True), 1)}
        self.bold_level = min(len(self.levels) + 1, _MAX_TYPESET_LEVEL)
        # "Abstract" set like "1 Introduction" is its sibling: an unnumbered heading takes the
        # rank that numbered headings of the same look have.
        ranks: dict[tuple[float | None, bool], Counter[int]] = {}
        for lines in pages:
            for line in lines:
                rank = marker_rank(line.text.strip())
                if rank is not None and self._typeset_level(line) > 0:
                    ranks.setdefault((line.size, line.all_bold), Counter())[rank] += 1
        self.style_ranks = {style: counter.most_common(1)[0][0] for style, counter in ranks.items()}

    def hints(self) -> list[list[int]]:
        raw = [[self._hint(line) for line in lines] for lines in self.pages]
        kept = [_demote_clusters(page) for page in raw]
        # A size whose heading lines mostly sit in clusters (a diagram's lettering) is lettering
        # wherever it appears, even where one label happens to stand alone.
        before: Counter[float | None] = Counter()
        after: Counter[float | None] = Counter()
        for lines, first, second in zip(self.pages, raw, kept, strict=True):
            for line, a, b in zip(lines, first, second, strict=True):
                before[line.size] += a > 0
                after[line.size] += b > 0
        lettering = {size for size, n in before.items() if n and after[size] < 0.5 * n}
        return [
            _continue_headings(
                lines,
                [
                    BODY_TEXT if hint > 0 and line.size in lettering else hint
                    for line, hint in zip(lines, page, strict=True)
                ],
            )
            for lines, page in zip(self.pages, kept, strict=True)
        ]

    def _is_heading_sized(self, line: _Line) -> bool:
        return self.body is not None and line.size is not None and line.size >= self.body * _HEADING_SIZE

    def _hint(self, line: _Line) -> int:
        if line.table:
            return TABLE_ROW
        if self.body is not None and line.size is not None and line.size < self.body * _SMALL_SIZE:
            return SMALL_TEXT
        level = self._typeset_level(line)
        if level > 0 and marker_rank(line.text.strip()) is None:
            return self.style_ranks.get((line.size, line.all_bold), level)
        return level

    def _typeset_level(self, line: _Line) -> int:
        if self.body is None or line.size is None or not line.text.strip():
            return BODY_TEXT
        if not self._reads_as_heading(line.text):
            return BODY_TEXT
        if self._is_heading_sized(line):
            return self.levels.get(line.size, _MAX_TYPESET_LEVEL)
        if line.all_bold and self.bold_is_rare and len(line.text.split()) <= 12:
            return self.bold_level
        return BODY_TEXT

    @staticmethod
    def _reads_as_heading(text: str) -> bool:
        """Words a heading could be: not a caption, a row of figures, a chart label or a fragment."""
        stripped = text.strip()
        visible = [c for c in stripped if not c.isspace()]
        digits = sum(1 for c in visible if c.isdigit())
        return (
            _HEADING_WORD.search(stripped) is not None
            and len(stripped.split()) <= _MAX_HEADING_WORDS
            and not stripped.endswith((",", ";"))
            and stripped.count(",") < 3  # a list of authors or affiliations
            and not (stripped.endswith(".") and len(stripped.split()) > 8)  # a sentence set in bold
            and not stripped[:1].islower()
            and _CAPTION.match(stripped) is None
            and _GLUED_NUMBER.match(stripped) is None
            and digits <= 0.3 * len(visible)
        )


def _continue_headings(lines: list[_Line], hints: list[int]) -> list[int]:
    """A heading wrapped onto a second line that starts in lower case ("You Are Responsible For
    the Consequences of Your Use of" / "the Service"), set like the first, continues it."""
    out = list(hints)
    for i in range(1, len(lines)):
        line, before = lines[i], lines[i - 1]
        if (
            out[i] == BODY_TEXT
            and out[i - 1] > 0
            and line.text[:1].islower()
            and (line.size, line.all_bold) == (before.size, before.all_bold)
            and len(line.text.split()) <= 8
            and not before.text.rstrip().endswith((".", ":", ";", "!", "?"))
        ):
            out[i] = out[i - 1]
    return out


def _demote_clusters(hints: list[int]) -> list[int]:
    """More than three heading lines in a row are a table header, a chart's labels or a
    diagram, not headings; so are heading lines followed by small print (a figure's labels).
    They are read as body text."""
    out = list(hints)
    start = 0
    while start < len(out):
        end = start
        while end < len(out) and out[end] > 0:
            end += 1
        followed_by_small = end < len(out) and out[end] == SMALL_TEXT
        if end - start > _MAX_HEADING_RUN or (end > start and followed_by_small):
            out[start:end] = [BODY_TEXT] * (end - start)
        start = end + 1
    return out


class _LineCollector:
    """The text visitor: charges the character budget and records each line's typography.

    pypdf hands every piece of text (newlines included) to the visitor before joining them, so
    the pieces are the page text in order.
    """

    def __init__(self, budget: _CharBudget) -> None:
        self.budget = budget
        self.lines: list[_Line] = [_Line("")]
        self.starts: list[tuple[float, float]] = []  # (x, y) of every text-showing operator
        self.wide_gaps = 0  # shown arrays that skip a gutter or a cell's gap inside them

    def operator(self, op: Any, args: Any, cm: Any, tm: Any) -> None:
        if op in (b"Tj", b"TJ", b"'", b'"'):
            try:
                x, y = float(tm[4]), float(tm[5])
                self.starts.append(
                    (
                        x * float(cm[0]) + y * float(cm[2]) + float(cm[4]),
                        x * float(cm[1]) + y * float(cm[3]) + float(cm[5]),
                    )
                )
            except (TypeError, ValueError, IndexError):
                pass
        if op == b"TJ" and args and isinstance(args[0], list):
            # A shift of two ems or more inside one shown array: a gap between cells or columns.
            self.wide_gaps += any(isinstance(item, (int, float)) and item <= -_TJ_GAP for item in args[0])

    def visit(self, text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        self.budget.visit(text)
        if not text:
            return
        scaled = round(_effective_size(cm, tm, size) * 2) / 2  # half points: spacing jitter is not a size
        bold = _is_bold(font)
        parts = text.split("\n")
        for index, part in enumerate(parts):
            if index:
                self.lines.append(_Line(""))
            line = self.lines[-1]
            line.text += part
            letters = sum(1 for c in part if not c.isspace())
            if letters and scaled > 0:
                line.sizes[scaled] += letters
                line.bold += letters if bold else 0

    def page_lines(self) -> list[_Line]:
        """Lines cleaned as the rest of the parser expects; a line that splits keeps its style."""
        out: list[_Line] = []
        for line in self.lines:
            for text in normalise_text(line.text.translate(_LIGATURES)).split("\n"):
                out.append(_Line(text, line.sizes, line.bold))
        return out


def _effective_size(cm: Any, tm: Any, size: Any) -> float:
    """Font size times the scale of the text and current transformation matrices."""
    try:
        det = abs(float(tm[0]) * float(tm[3]) - float(tm[1]) * float(tm[2]))
        det *= abs(float(cm[0]) * float(cm[3]) - float(cm[1]) * float(cm[2]))
        return float(size) * math.sqrt(det)
    except (TypeError, ValueError, IndexError):
        return 0.0


def _is_bold(font: Any) -> bool:
    try:
        name = str(font.get("/BaseFont", "")) if font else ""
        descriptor = font.get("/FontDescriptor") if font else None
        weight = descriptor.get_object().get("/FontWeight") if descriptor is not None else None
    except _MALFORMED:
        return False
    if isinstance(weight, (int, float)) and weight >= 600:
        return True
    return _BOLD_FONT.search(name.split("+", 1)[-1]) is not None


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


def _extract_pages(page_list: Sequence[Any], limits: Limits, deadline: Deadline) -> list[list[_Line]]:
    """Each page's lines. A page whose text is not words is left out (its neighbours may be
    fine: one font without a character map spoils only the pages that use it); a document whose
    text is almost all such pages is refused as unreadable rather than indexed as junk."""
    budget = _CharBudget(limits, deadline)
    pages: list[list[_Line]] = []
    failed = readable = unreadable = 0
    for index in range(len(page_list)):
        deadline.check(f"page {index + 1}")
        collector = _LineCollector(budget)
        page = page_list[index]
        try:
            text = page.extract_text(visitor_text=collector.visit, visitor_operand_before=collector.operator)
        except LimitReachedError as exc:
            raise _stream_too_large(limits) from exc
        except _MALFORMED:
            failed += 1  # one unreadable page should not cost the rest of the document
            text, collector = "", _LineCollector(budget)
        budget.settle(len(text))
        if is_unreadable_text(text):
            unreadable += len(text)
            pages.append([])
        else:
            readable += len(text.strip())
            lines = collector.page_lines()
            if len(text) <= _LAYOUT_MAX_CHARS and _may_have_columns(
                collector.starts, collector.wide_gaps, _page_width(page)
            ):
                deadline.check(f"page {index + 1}")
                lines = _in_reading_order(page, lines, limits)
            pages.append(lines)
    if page_list and failed == len(page_list):
        raise _corrupt()
    if unreadable and readable < _MIN_READABLE_SHARE * (readable + unreadable):
        raise UnreadableText(_UNREADABLE)
    return pages


def _page_width(page: Any) -> float:
    try:
        return float(page.mediabox.width)
    except _MALFORMED:
        return 0.0


def _in_reading_order(page: Any, lines: list[_Line], limits: Limits) -> list[_Line]:
    """``lines`` reordered from the page's layout when columns or a table need it."""
    try:
        layout = page.extract_text(extraction_mode="layout", layout_mode_space_vertically=False)
    except LimitReachedError as exc:
        raise _stream_too_large(limits) from exc
    except _MALFORMED:
        return lines
    if len(layout) > 20 * _LAYOUT_MAX_CHARS:
        return lines
    return _layout_lines(layout, lines) or lines


def is_unreadable_text(text: str) -> bool:
    """True when extracted text is not words: replacement or private-use characters, glyph
    names such as ``/g18/g152``, or letters spaced out one by one."""
    sample = text[:20_000]
    visible = sum(1 for c in sample if not c.isspace())
    if visible < 20:
        return False
    junk = sum(1 for c in sample if c == "\ufffd" or "\ue000" <= c <= "\uf8ff")
    junk += sum(len(m) for m in _GLYPH_NAMES.findall(sample))
    if junk > _MAX_JUNK_SHARE * visible:
        return True
    words = sample.split()
    single = sum(1 for w in words if len(w) == 1 and w.isalpha())
    return len(words) >= 40 and single > 0.6 * len(words)


def _refuse_xfa_placeholder(reader: pypdf.PdfReader, pages: list[list[_Line]]) -> None:
    """An XFA form carries its content in XML that only Adobe's viewers draw; its pages hold a
    "Please wait..." notice, which must not be indexed as the document."""
    text = " ".join(line.text for lines in pages for line in lines)
    if len(text) > 3_000 or "please wait" not in text.lower():
        return
    try:
        root: Any = reader.trailer["/Root"].get_object()
        form: Any = root.get("/AcroForm") if isinstance(root, DictionaryObject) else None
        has_xfa = form is not None and "/XFA" in form.get_object()
    except _MALFORMED:
        has_xfa = False
    if has_xfa:
        raise UnreadableText(
            "Folio cannot index this PDF: it is an XFA form whose content only Adobe Reader can "
            "display, so the text layer is unreadable (OCR is not supported). Print it to PDF "
            "from Adobe Reader and upload that copy."
        )


def _page_list(reader: pypdf.PdfReader, data: bytes, limits: Limits) -> Sequence[Any]:
    """The pages from the page tree, or, when the tree is broken, the page objects found in
    the file (in file order): other readers open such files, and so should Folio."""
    pages: Sequence[Any]
    try:
        pages = reader.pages
        count = len(pages)
    except LimitReachedError as exc:
        raise _stream_too_large(limits) from exc
    except _MALFORMED as exc:
        pages = _scan_pages(reader, data)
        if not pages:
            raise _corrupt() from exc
        count = len(pages)
    if count == 0:
        raise _corrupt()
    if count > limits.max_pages:
        raise TooLarge(
            f"This PDF has {count:,} pages; the limit is {limits.max_pages:,} (max_pages). "
            "Split it into smaller files.",
            limit="max_pages",
            value=limits.max_pages,
        )
    return pages


def _scan_pages(reader: pypdf.PdfReader, data: bytes) -> list[Any]:
    """Page objects (``/Type /Page``) read by object number, found in the file's own bytes."""
    found: list[Any] = []
    for match in _OBJECT_HEADER.finditer(data):
        head = data[match.end() : match.end() + 8192]
        cut = [i for i in (head.find(b"stream"), head.find(b"endobj")) if i >= 0]
        if not _PAGE_TYPE.search(head[: min(cut)] if cut else head):
            continue
        ref = IndirectObject(int(match.group(1)), int(match.group(2)), reader)
        try:
            obj = reader.get_object(ref)
        except _MALFORMED:
            continue
        if isinstance(obj, DictionaryObject):
            page = PageObject(reader, ref)
            page.update(obj)
            found.append(page)
    return found


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


def _drop_running_lines(pages: list[list[_Line]], hints: list[list[int]]) -> list[tuple[list[str], list[int]]]:
    """Remove page numbers and headers/footers repeated at the edges of many pages.

    Peeled from each end of a page inward, stopping at the first line of content, so a content
    line that merely looks like another page's never goes. A short line (a figure label, a
    stray mark) between two running lines is stepped over and kept.
    """
    non_blank = [
        [(line.text, hint) for line, hint in zip(lines, page_hints, strict=True) if line.text.strip()]
        for lines, page_hints in zip(pages, hints, strict=True)
    ]
    texts = [[text for text, _ in kept] for kept in non_blank]
    repeated = _running_keys(texts)
    numbers = _page_number_lines(texts)
    cleaned = []
    for page, kept in enumerate(non_blank):
        running = {i for i in _edge_indexes(len(kept)) if (page, i) in numbers or _line_key(kept[i][0]) in repeated}
        drop = _peel(range(len(kept)), running, kept) | _peel(range(len(kept) - 1, -1, -1), running, kept)
        body = [line for i, line in enumerate(kept) if i not in drop]
        cleaned.append(([text for text, _ in body], [hint for _, hint in body]))
    return cleaned


def _peel(order: range, running: set[int], kept: list[tuple[str, int]]) -> set[int]:
    """Running lines met from one end before the first line of content."""
    drop: set[int] = set()
    for step, i in enumerate(order):
        if step >= _EDGE_LINES:
            break
        if i in running:
            drop.add(i)
        elif len(kept[i][0].split()) > 3 or not any(j in running for j in order[step + 1 : _EDGE_LINES]):
            break
    return drop


def _edge_indexes(count: int) -> set[int]:
    return set(range(min(_EDGE_LINES, count))) | set(range(max(0, count - _EDGE_LINES), count))


def _running_keys(pages: list[list[str]]) -> set[str]:
    """Edge lines (digits ignored) found on three pages or more, and on at least 40% of the
    pages from the first to the last where they appear: a book's title runs over all its pages,
    a chapter's title over the pages of that chapter only. ``pages`` holds each page's non-blank lines."""
    if len(pages) < 3:
        return set()
    on_pages: dict[str, list[int]] = {}
    for page, kept in enumerate(pages):
        for key in {_line_key(kept[i]) for i in _edge_indexes(len(kept))}:
            on_pages.setdefault(key, []).append(page)
    return {
        key
        for key, found in on_pages.items()
        if len(found) >= 3
        and len(found) >= _RUNNING_SHARE * (found[-1] - found[0] + 1)
        and any(c.isalpha() for c in key)
    }


def _page_number_lines(pages: list[list[str]]) -> set[tuple[int, int]]:
    """(page, line) of edge lines that are page numbers; ``pages`` holds each page's non-blank lines.

    "Page 3", "3 of 9" and "- 3 -" always are. A bare number is one only when bare numbers at
    the page edges count up with the pages (printed number minus page index the same on at
    least half the pages that have one), so a table cell or a list number that happens to end
    a page stays. A longer line holding "Page N" ("Part 3 - Liability | Page 7", whose section
    title changes) is a running line by the same rule, on three pages or more.
    """
    found: set[tuple[int, int]] = set()
    bare: list[tuple[int, int, int]] = []  # page, line, printed number
    labelled: list[tuple[int, int, int]] = []
    for page, kept in enumerate(pages):
        for i in _edge_indexes(len(kept)):
            line = kept[i].strip()
            if _PAGE_LABEL.match(line):
                found.add((page, i))
            elif match := _BARE_NUMBER_LINE.match(line):
                bare.append((page, i, int(match.group(1))))
            elif match := _PAGE_IN_LINE.search(line):
                labelled.append((page, i, int(match.group(1))))
    found |= _counting_up(bare, least=2) | _counting_up(labelled, least=3)
    return found


def _counting_up(numbers: list[tuple[int, int, int]], least: int) -> set[tuple[int, int]]:
    """(page, line) of printed numbers that count up with the pages: printed number minus page
    index the same on ``least`` pages or more, and on at least half the pages with one."""
    found: set[tuple[int, int]] = set()
    offsets = Counter(number - page for page, _, number in numbers)
    pages_with_one = len({page for page, _, _ in numbers})
    for offset, hits in offsets.most_common():
        if hits >= least and hits * 2 >= pages_with_one:
            found.update((page, i) for page, i, number in numbers if number - page == offset)
    return found


def _line_key(line: str) -> str:
    """Whitespace-normalised line with every run of digits blurred, so "47701 Federal Register /
    Vol. 85" matches "47702 Federal Register / Vol. 85" and "Page 3" matches "Page 4".

    Numbered headings and clauses keep their digits but for a page number at either end:
    "Section 3.1" opening page 3 and "Section 4.1" opening page 4 are content, not a running
    head, while "Chapter 3 The Sea 35" and "Chapter 3 The Sea 37" are one running head.
    """
    key = " ".join(line.split()).lower()
    if detect_marker(line.strip()) is None:
        return _DATE_WORDS.sub("#", _DIGITS.sub("#", key))
    # A page number at either end of a running chapter head ("34 Chapter 3. The Sea"); a bare
    # label such as "Article 5" keeps its number.
    return _EDGE_NUMBER.sub("#", key) if len(key.split()) > 3 else key


# -- reading order of pages laid out in columns or tables ----------------------------------------
#
# pypdf's default extraction follows the content stream. Most multi-column PDFs draw a column
# at a time, but some draw across the page line by line (three-column tax instructions), which
# interleaves the columns' lines, and a table comes out cell by cell in whatever order it was
# drawn. pypdf's layout mode places the text on a fixed-width grid by its real positions, so
# the gutters between columns are runs of blank character columns; those are found here, and
# the page is read column by column (prose) or row by row (tables), only when the default order
# is wrong for it.

_LAYOUT_MAX_CHARS = 40_000  # a page with more text is read in stream order
_ACROSS = 0.05  # text shown next on the same baseline this much further right: across a gutter
_BACK_UP = 24.0  # text shown next this many points higher (and further right): a new column
_MIN_JUMPS = 3
_TJ_GAP = 2000  # thousandths of an em
_MIN_EDGE_HITS = 5  # text shown at one left edge (to 4 points) this often: a column starts there
_GUTTER_SPACES = 3  # a blank run this wide with text on both sides may be a gutter
_GUTTER_ROWS = 0.3  # ...on this share of a region's rows (and four rows or more)
_MIN_BAND_ROWS = 3
_PROSE_WORDS = 4  # a column whose lines average this many words is prose, else table cells
_MIN_TABLE_COLUMNS = 3
_INTERLEAVED = 0.5  # below this share of a column's lines following each other, the order is wrong
_SPACE_RUNS = re.compile(r"\s+")
_GAP = re.compile(f" {{{_GUTTER_SPACES},}}")


def _may_have_columns(starts: list[tuple[float, float]], wide_gaps: int, page_width: float) -> bool:
    """Whether the content stream draws across columns or cells (cheap, from the positions of
    the text operators in stream order; layout mode costs a second pass over the page).

    Drawing jumps across a gutter on the same baseline (columns interleaved line by line, a
    table row by row), or back up to the top of the next column or table column three times or
    more (a table column by column). A page whose columns are drawn one after the other goes
    back up once per column and is read right in stream order. Or a row drawn as one array of
    text whose cells are kept apart by shifts inside it (``wide_gaps`` such arrays)."""
    if len(starts) < 5 or page_width <= 0:
        return False
    xs = [x for x, _ in starts]
    if min(xs) < -page_width or max(xs) > 2 * page_width:
        return False  # text far off the page: its layout grid would be enormous
    # Where a column or a table column starts, text is shown again and again; a jump that lands
    # elsewhere is a change of font inside a line, or a figure.
    edges = Counter(round(x / 4) for x in xs)
    across = back_up = 0
    for (x0, y0), (x1, y1) in itertools.pairwise(starts):
        if edges[round(x1 / 4)] < _MIN_EDGE_HITS:
            continue
        if abs(y1 - y0) < 2 and x1 - x0 > _ACROSS * page_width:
            across += 1
        elif y1 - y0 > _BACK_UP and x1 - x0 > _ACROSS * page_width:
            back_up += 1
    return across >= _MIN_JUMPS or back_up >= _MIN_JUMPS or wide_gaps >= _MIN_JUMPS


def _layout_lines(layout: str, default: list[_Line]) -> list[_Line] | None:
    """The page's lines in reading order from pypdf's layout text, or None when the default
    order is right (no columns or table, or columns that the content stream already draws one
    after the other). Table rows come back with their cells joined by " | "."""
    rows = [row.rstrip() for row in layout.split("\n")]
    bands = _bands(rows)
    if not any(cuts for _, cuts in bands):
        return None
    default_text = _squash(" ".join(line.text for line in default))
    tables = False
    interleaved = False
    for band, cuts in bands:
        if not cuts:
            continue
        columns = _columns(band, cuts)
        kind = _band_kind(columns)
        interleaved = interleaved or (kind == "prose" and _interleaved(columns, default_text))
        tables = tables or kind == "table"
    if not (tables or interleaved):
        return None
    # Layout mode pads words with spaces and sometimes loses one ("Section5.1"), so a line
    # that the default extraction has too is taken from there, with its typography.
    known = {_SPACE_RUNS.sub("", line.text): line for line in default}
    out: list[_Line] = []

    def emit(text: str, table: bool = False) -> None:
        text = _squash(normalise_text(text.translate(_LIGATURES)))
        if not text:
            return
        same = known.get(_SPACE_RUNS.sub("", text))
        if same is None:
            out.append(_Line(text, table=table))
        else:
            out.append(_Line(same.text.strip(), same.sizes, same.bold, table))

    for band, cuts in bands:
        if not cuts:
            for row in band:
                emit(row)
            continue
        columns = _columns(band, cuts)
        if _band_kind(columns) != "table":
            for column in columns:
                for cell in column:
                    emit(cell)
        else:
            for cells in zip(*columns, strict=True):
                emit(" | ".join(cell for cell in (c.strip() for c in cells) if cell), table=True)
    return out


def _squash(text: str) -> str:
    return _SPACE_RUNS.sub(" ", text).strip()


def _bands(rows: list[str], depth: int = 0) -> list[tuple[list[str], list[int]]]:
    """Runs of rows split at the same gutters (``cuts``: the character columns to cut at). Rows
    that run across the page's gutters (a title, a table beside columns of prose) form runs of
    their own, searched again for gutters of their own; a row left with none gets no cuts."""
    cuts = _gutters(rows)
    if not cuts:
        return [([row], []) for row in rows]
    bands: list[tuple[list[str], list[int]]] = []
    for crossing, group in itertools.groupby(rows, key=lambda row: _crosses(row, cuts)):
        run = list(group)
        if crossing:
            bands += _bands(run, depth + 1) if depth < 2 and len(run) >= _MIN_BAND_ROWS else [([r], []) for r in run]
            continue
        texts = sum(1 for row in run if row.strip())
        if texts < _MIN_BAND_ROWS:
            bands += [([r], []) for r in run]
            continue
        own = _gutters(run)  # a part of the page may have fewer columns, or more
        bands.append((run, own if own and not any(_crosses(r, own) for r in run) else cuts))
    return bands


def _crosses(row: str, cuts: list[int]) -> bool:
    """A row with text at one of the cuts, or only a word's space there, runs across that gutter."""
    return any(row[c : c + 1].strip() or (row[c - 1 : c].strip() and row[c + 1 : c + 2].strip()) for c in cuts)


def _gutters(rows: list[str]) -> list[int]:
    """Character columns that are blank, with text on both sides, on many rows and written
    over on almost none: the gutters between columns of text or of a table."""
    width = max((len(row) for row in rows), default=0)
    gaps = [0] * width
    ink = [0] * width
    texts = 0
    for row in rows:
        if not row.strip():
            continue
        texts += 1
        for i, char in enumerate(row):
            if not char.isspace():
                ink[i] += 1
        start = len(row) - len(row.lstrip())
        for run in _GAP.finditer(row[start:]):
            for i in range(start + run.start(), start + run.end()):
                gaps[i] += 1
    need = max(4, _GUTTER_ROWS * texts)
    candidates = [i for i in range(width) if gaps[i] >= need and ink[i] <= 0.1 * gaps[i]]
    spans: list[list[int]] = []
    for i in candidates:  # one gutter, though a few rows reach into it
        if spans and i - spans[-1][-1] <= _GUTTER_SPACES:
            spans[-1].append(i)
        else:
            spans.append([i])
    cuts: list[int] = []
    for span in spans:
        best = min(ink[i] for i in span)
        clean = [i for i in span if ink[i] == best]
        cuts.append(clean[len(clean) // 2])
    return cuts


def _columns(band: list[str], cuts: list[int]) -> list[list[str]]:
    """Each column's text, one entry per row (empty where the row has none there)."""
    bounds = [0, *cuts, max(len(row) for row in band) + 1]
    return [[row[a:b].strip() for row in band] for a, b in itertools.pairwise(bounds)]


def _band_kind(columns: list[list[str]]) -> str:
    """ "prose" for columns of running text (lines of several words each), "table" for three
    columns or more of short cells (one column of longer text, a description, is allowed),
    "other" for anything else (numbered references beside their labels, a figure's labels)."""
    prose = 0
    for column in columns:
        cells = [cell for cell in column if cell]
        prose += bool(cells) and sum(len(cell.split()) for cell in cells) >= _PROSE_WORDS * len(cells)
    if prose == len(columns):
        return "prose"
    return "table" if len(columns) >= _MIN_TABLE_COLUMNS and prose <= 1 else "other"


def _interleaved(columns: list[list[str]], default_text: str) -> bool:
    """Whether the default extraction breaks up the columns: a column's consecutive lines do
    not follow each other in it."""
    pairs = followed = 0
    for column in columns:
        for line, after in itertools.pairwise(column):
            if len(line.split()) < 3 or len(after.split()) < 2:
                continue
            pairs += 1
            line, after = line.translate(_LIGATURES), after.translate(_LIGATURES)
            followed += f"{_squash(line)} {' '.join(after.split()[:2])}" in default_text
    return pairs >= 3 and followed < _INTERLEAVED * pairs


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
