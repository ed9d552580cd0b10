"""HTML via the standard library's ``html.parser``: visible text in blocks, chrome dropped.

Hidden elements (the ``hidden`` attribute, ``display: none`` or ``visibility: hidden`` inline,
inline-XBRL's ``<ix:header>``) are dropped with everything inside them: a browser does not show
them, so search must not either."""

from __future__ import annotations

import codecs
import contextlib
import re
from collections import Counter
from html.parser import HTMLParser

from shared.ingest.document import BlockKind, DocumentBuilder, ParsedDocument, too_many_chars
from shared.ingest.limits import Limits
from shared.ingest.textcodec import normalise_text, strip_html_comments, try_decode

# Contents never shown as document text: code, styling, and site chrome around the content.
_DROP = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "nav",
        "header",
        "footer",
        "aside",
        "form",
        "svg",
        "math",
        "iframe",
        "object",
        "button",
        "select",
        "canvas",
    ]
)
_BLOCKS = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "main",
        "blockquote",
        "li",
        "dt",
        "dd",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "ul",
        "ol",
        "dl",
        "figure",
        "figcaption",
        "address",
        "caption",
        "details",
        "summary",
        "body",
        "html",
        "center",
    ]
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]
)
_HIDDEN_TAGS = frozenset(["ix:header"])  # inline XBRL: facts for machines, never displayed
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\s*(?:!important\s*)?(?:;|$)", re.I
)
_CELLS = frozenset({"td", "th"})
_KIND_TAGS = frozenset({*_HEADINGS, "pre", "li"})
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_FEED_CHUNK = 1 << 20
# Stands for <br> in the buffer; normalise_text has removed every control character from the
# source, so it cannot collide, and source newlines stay plain whitespace.
_BR = "\x00"


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Parse an HTML page into headings, paragraphs, list items, tables and code."""
    deadline = limits.deadline()
    text = strip_html_comments(normalise_text(_decode(data)))
    builder = DocumentBuilder("html", limits)
    extractor = _Extractor(builder, limits)
    for offset in range(0, len(text), _FEED_CHUNK):
        deadline.check("the HTML")
        extractor.feed(text[offset : offset + _FEED_CHUNK])
    extractor.close()
    extractor.finish()
    title = extractor.page_title() or extractor.first_h1
    return builder.build(title=title, pages=None)


def _decode(data: bytes) -> str:
    """UTF-8 or BOM-marked UTF-16; else the page's ``<meta charset>``; else Windows-1252."""
    text = try_decode(data)
    if text is not None:
        return text
    match = _META_CHARSET.search(data[:4096])
    encoding = "cp1252"  # what browsers assume for unlabelled legacy pages
    if match:
        with contextlib.suppress(LookupError):  # an unknown label keeps the default
            encoding = codecs.lookup(match.group(1).decode("ascii")).name
    return data.decode(encoding, errors="replace")


def _is_hidden(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """An element a browser does not display: ``hidden``, inline ``display: none``, ``<ix:header>``."""
    if tag in _HIDDEN_TAGS:
        return True
    for name, value in attrs:
        if name == "hidden" and (value or "").lower() != "until-found":
            return True
        if name == "style" and value and _HIDDEN_STYLE.search(value):
            return True
    return False


class _Extractor(HTMLParser):
    """Collects visible text into blocks as tags open and close."""

    def __init__(self, builder: DocumentBuilder, limits: Limits) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = builder
        self.limits = limits
        self.dropping = 0  # depth inside _DROP elements
        self.articles = 0  # <header> inside <article> is the article's own, and kept
        self.stack: list[str] = []  # open block-level tags, innermost last
        self.open_tags: Counter[str] = Counter()  # the same, counted: O(1) "is it open?"
        self.kind_tags: list[str] = []  # the open tags that decide a block's kind
        self.buffer: list[str] = []
        self.buffered = 0
        self.in_title = False
        self.title_parts: list[str] = []
        self.first_h1: str | None = None
        self.table = _TableState()
        self.hiding: str | None = None  # tag of the hidden element being skipped
        self.hiding_depth = 0  # open elements of that tag name inside it, itself included

    # -- HTMLParser callbacks -------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hiding is not None:
            self.hiding_depth += tag == self.hiding
            return
        if tag not in _VOID and _is_hidden(tag, attrs):
            self.hiding, self.hiding_depth = tag, 1
            return
        if self._drops(tag):
            self.dropping += 1
        if self.dropping:
            return
        if tag == "title":
            self.in_title = True
        elif tag == "article":
            self.articles += 1
        if tag == "table":
            self._open_table()
        elif self.table.depth:
            self.table.start(tag)
        elif tag == "br":
            self._text(_BR)
        elif tag in _BLOCKS or tag == "hr":
            self._open_block(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.hiding is not None:
            if tag == self.hiding:
                self.hiding_depth -= 1
                if self.hiding_depth == 0:
                    self.hiding = None
            return
        if self.dropping:
            if self._drops(tag):
                self.dropping -= 1
            return
        if tag == "title":
            self.in_title = False
        elif tag == "article":
            self.articles = max(0, self.articles - 1)
        if tag == "table" and self.table.depth:
            self._close_table()
        elif self.table.depth:
            self.table.end(tag)
        elif tag in _BLOCKS:
            self._close_block(tag)

    def handle_data(self, data: str) -> None:
        if self.dropping or self.hiding is not None:
            return
        if self.in_title:
            self.title_parts.append(data)
        elif self.table.depth:
            self.table.text(data)
        else:
            self._text(data)

    # -- blocks ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Emit whatever is still open at the end of the page."""
        if self.table.depth:
            self.table.depth = 1
            self._close_table()
        self._flush()

    def page_title(self) -> str | None:
        return " ".join("".join(self.title_parts).split()) or None

    def _drops(self, tag: str) -> bool:
        return tag in _DROP and not (tag == "header" and self.articles and not self.dropping)

    def _open_block(self, tag: str) -> None:
        self._flush()
        if self.stack and self.stack[-1] == tag and tag in ("p", "li"):
            self._pop()  # an unclosed <p> or <li> closes when the next one opens
        if tag != "hr":
            self.stack.append(tag)
            self.open_tags[tag] += 1
            if tag in _KIND_TAGS:
                self.kind_tags.append(tag)

    def _close_block(self, tag: str) -> None:
        self._flush()
        if self.open_tags[tag]:  # closes whatever was left open inside it too
            while self._pop() != tag:
                pass

    def _pop(self) -> str:
        tag = self.stack.pop()
        self.open_tags[tag] -= 1
        if tag in _KIND_TAGS:
            self.kind_tags.pop()
        return tag

    def _kind(self) -> tuple[BlockKind, int | None]:
        """Decided by the innermost heading, <pre> or <li>; paragraph otherwise."""
        tag = self.kind_tags[-1] if self.kind_tags else ""
        if tag in _HEADINGS:
            return "heading", _HEADINGS[tag]
        if tag == "pre":
            return "code", None
        if tag == "li":
            return "list_item", None
        return "paragraph", None

    def _text(self, data: str) -> None:
        self.buffer.append(data)
        self.buffered += len(data)
        if self.builder.length + self.buffered > self.limits.max_chars * 2:
            raise too_many_chars(self.limits)  # whitespace collapses later, hence the slack

    def _flush(self) -> None:
        raw = "".join(self.buffer)
        self.buffer, self.buffered = [], 0
        kind, level = self._kind()
        text = raw.replace(_BR, "\n").strip("\n") if kind == "code" else _collapse(raw)
        block = self.builder.add(kind, text, level=level)
        if block is not None and level == 1 and self.first_h1 is None:
            self.first_h1 = block.text

    def _open_table(self) -> None:
        if self.table.depth == 0:
            self._flush()
        self.table.depth += 1

    def _close_table(self) -> None:
        self.table.depth -= 1
        if self.table.depth == 0:
            self.builder.add("table", "\n".join(self.table.finish()))


class _TableState:
    """Rows of the outermost open table; nested tables fold into their cell's text."""

    def __init__(self) -> None:
        self.depth = 0
        self.rows: list[str] = []
        self.cells: list[str] = []
        self.cell: list[str] | None = None

    def start(self, tag: str) -> None:
        if self.depth > 1:
            self.text(" ")
        elif tag == "tr":
            self._end_row()
        elif tag in _CELLS:
            self._end_cell()
            self.cell = []
        elif tag == "br" or tag in _BLOCKS:
            self.text(" ")

    def end(self, tag: str) -> None:
        if self.depth > 1:
            return
        if tag in _CELLS:
            self._end_cell()
        elif tag == "tr":
            self._end_row()

    def text(self, data: str) -> None:
        if self.cell is None:
            self.cell = []  # text outside a cell (a caption) still belongs to the table
        self.cell.append(data)

    def finish(self) -> list[str]:
        self._end_row()
        rows, self.rows = self.rows, []
        return rows

    def _end_cell(self) -> None:
        if self.cell is not None:
            self.cells.append(" ".join("".join(self.cell).split()))
        self.cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if any(self.cells):
            self.rows.append(" | ".join(self.cells))
        self.cells = []


def _collapse(raw: str) -> str:
    """Whitespace runs to one space, keeping the line breaks that <br> made."""
    lines = (" ".join(line.split()) for line in raw.split(_BR))
    return "\n".join(line for line in lines if line)
