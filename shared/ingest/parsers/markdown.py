"""Markdown: ATX/setext headings, lists, fenced code, pipe tables; inline syntax stripped."""

from __future__ import annotations

import bisect
import re

from shared.ingest.document import DocumentBuilder, ParsedDocument, too_many_chars
from shared.ingest.limits import Deadline, Limits
from shared.ingest.structure import split_at_markers
from shared.ingest.textcodec import decode_text, normalise_text, strip_html_comments

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST = re.compile(r"^([ \t]*)(?:([-*+])|(\d{1,9})([.)]))[ \t]+(.*)$")
_TABLE_RULE = re.compile(r"^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}> ?")
_LINK_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]+\S")
_LINK_OPEN = re.compile(r"!?\[([^\]\n]{0,500})\]\(")
_MAX_URL = 500
_MAX_SPAN = 500
_FRONT_TITLE = re.compile(r"^title:[ \t]*[\"']?(.*?)[\"']?[ \t]*$", re.I)

# Inline syntax, replaced by its visible text, in this order. Every repeat is bounded and
# stays on one line: an opener without a closer must not rescan the rest of the document.
_INLINE = (
    (re.compile(r"\[([^\]\n]{1,500})\]\[[^\]\n]{0,200}\]"), r"\1"),  # [text][ref]
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # autolinks
    (
        re.compile(  # inline HTML tags; "List<T>" in prose is left alone
            r"</?(?:a|b|i|u|em|strong|span|div|p|br|hr|img|sup|sub|small|code|kbd|mark|details"
            r"|summary|center|font|picture|source)\b[^>\n]{0,2000}>",
            re.I,
        ),
        "",
    ),
    (re.compile(r"`+([^`]+?)`+"), r"\1"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]{1,500}?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]{1,500}?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])"), r"\1"),  # backslash escapes
)


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Parse CommonMark-ish Markdown (GitHub flavour tables and fences)."""
    text = normalise_text(decode_text(data))
    if len(text) > limits.max_chars * 2:  # markup is a small share of Markdown
        raise too_many_chars(limits)
    text = strip_html_comments(text)
    lines = text.split("\n")
    front_title, lines = _front_matter(lines)
    reader = _Reader(DocumentBuilder("markdown", limits), limits.deadline())
    reader.run(lines)
    return reader.builder.build(title=front_title or reader.title(), pages=None)


def inline_text(text: str) -> str:
    """Visible text of a Markdown span: links to their text, emphasis and code marks gone."""
    text = _strip_links(text)
    for marker in ("**", "__", "~~"):
        text = _strip_pairs(text, marker)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


def _strip_pairs(text: str, marker: str) -> str:
    """``**bold**`` (or ``__``, ``~~``) to ``bold``: the body hugs its markers, one line.

    Closers are located once and found by bisection, so a line full of unclosed markers
    stays near-linear (a regex would rescan a window from every opener).
    """
    start = text.find(marker)
    if start < 0:
        return text
    closers = [m.start() for m in re.finditer(r"(?<=\S)" + re.escape(marker), text)]
    out: list[str] = []
    pos, width = 0, len(marker)
    while start >= 0:
        body = start + width
        close = _closing(text, closers, body)
        if close < 0:
            start = text.find(marker, start + 1)
            continue
        out += (text[pos:start], text[body:close])
        pos = close + width
        start = text.find(marker, pos)
    out.append(text[pos:])
    return "".join(out)


def _closing(text: str, closers: list[int], body: int) -> int:
    """The first closer after a non-blank body start, on the same line, within reach; or -1."""
    if body >= len(text) or text[body].isspace():
        return -1
    index = bisect.bisect_right(closers, body)
    if index == len(closers):
        return -1
    close = closers[index]
    if close - body > _MAX_SPAN or "\n" in text[body:close]:
        return -1
    return close


def _strip_links(text: str) -> str:
    """``[text](url)`` and ``![alt](src)`` to their text.

    The closing parenthesis is found with ``str.find`` over a bounded window, so a line of
    unclosed ``[a](`` stays linear (a regex would rescan the window from every opener).
    """
    out: list[str] = []
    pos = 0
    for match in _LINK_OPEN.finditer(text):
        if match.start() < pos:
            continue
        close = text.find(")", match.end(), match.end() + _MAX_URL)
        if close < 0 or "\n" in text[match.end() : close]:
            continue
        out += (text[pos : match.start()], match.group(1))
        pos = close + 1
    out.append(text[pos:])
    return "".join(out)


class _Reader:
    """Line-by-line block reader; each method consumes lines from ``self.lines[self.i]``."""

    def __init__(self, builder: DocumentBuilder, deadline: Deadline) -> None:
        self.builder = builder
        self.deadline = deadline
        self.lines: list[str] = []
        self.i = 0
        self.para: list[str] = []
        self.after_list = False  # indented lines after a list continue it, they are not code
        self.headings: list[tuple[int, str]] = []

    def run(self, lines: list[str]) -> None:
        self.lines = lines
        while self.i < len(lines):
            if self.i % 2048 == 0:
                self.deadline.check("the Markdown")
            self._step(_QUOTE.sub("", lines[self.i]))
        self._flush()

    def title(self) -> str | None:
        """The first level-1 heading, else the first heading of any level."""
        top = [text for level, text in self.headings if level == 1]
        candidates = top or [text for _, text in self.headings]
        return candidates[0] if candidates else None

    def _step(self, line: str) -> None:
        if not line.strip():
            self._flush()
            self.i += 1
            return
        for handler in (
            self._fence,
            self._atx,
            self._setext,
            self._thematic,
            self._table,
            self._list_item,
            self._indented_code,
            self._link_def,
        ):
            if handler(line):
                return
        self.para.append(line.strip())
        self.i += 1

    def _fence(self, line: str) -> bool:
        match = _FENCE.match(line)
        if not match:
            return False
        self._flush()
        marker = match.group(2)
        body: list[str] = []
        self.i += 1
        while self.i < len(self.lines):
            current = self.lines[self.i]
            self.i += 1
            if current.strip().startswith(marker[0] * len(marker)) and not current.strip(marker[0] + " \t"):
                break
            body.append(current)
        self.builder.add("code", "\n".join(body))
        return True

    def _atx(self, line: str) -> bool:
        match = _ATX.match(line)
        if not match:
            return False
        self._flush()
        self._heading(len(match.group(1)), _strip_closing_hashes(match.group(2) or ""))
        self.i += 1
        return True

    def _setext(self, line: str) -> bool:
        match = _SETEXT.match(line)
        if not (match and self.para):
            return False
        text = " ".join(self.para)
        self.para = []
        self._heading(1 if match.group(1)[0] == "=" else 2, text)
        self.i += 1
        return True

    def _thematic(self, line: str) -> bool:
        if not _THEMATIC.match(line):
            return False
        self._flush()
        self.i += 1
        return True

    def _table(self, line: str) -> bool:
        following = self.lines[self.i + 1] if self.i + 1 < len(self.lines) else ""
        if "|" not in line or "|" not in following or not _TABLE_RULE.match(following):
            return False
        self._flush()
        rows = [_table_row(line)]
        self.i += 2
        while self.i < len(self.lines) and "|" in self.lines[self.i]:
            rows.append(_table_row(self.lines[self.i]))
            self.i += 1
        self.builder.add("table", "\n".join(row for row in rows if row))
        return True

    def _list_item(self, line: str) -> bool:
        match = _LIST.match(line)
        if not match:
            return False
        if self.para and match.group(3) and match.group(3) != "1":
            return False  # "2019. A year..." inside a paragraph is not a list
        self._flush()
        number, delimiter, rest = match.group(3, 4, 5)
        item = [f"{number}{delimiter} {rest}" if number else rest]
        self.i += 1
        item.extend(self._continuation())
        self.builder.add("list_item", inline_text("\n".join(item)))
        self.after_list = True
        return True

    def _continuation(self) -> list[str]:
        """Lines that continue a list item up to a blank line, another item or a block."""
        out: list[str] = []
        while self.i < len(self.lines):
            line = _QUOTE.sub("", self.lines[self.i])
            if not line.strip() or _LIST.match(line) or _starts_block(line):
                break
            out.append(line.strip())
            self.i += 1
        return out

    def _indented_code(self, line: str) -> bool:
        if self.para or self.after_list or not line.startswith(("    ", "\t")):
            return False
        body: list[str] = []
        while self.i < len(self.lines):
            current = self.lines[self.i]
            if current.strip() and not current.startswith(("    ", "\t")):
                break
            body.append(current[4:] if current.startswith("    ") else current[1:])
            self.i += 1
        self.builder.add("code", "\n".join(body))
        return True

    def _link_def(self, line: str) -> bool:
        if self.para or not _LINK_DEF.match(line):
            return False
        self.i += 1
        return True

    def _heading(self, level: int, text: str) -> None:
        text = inline_text(text).strip()
        if self.builder.add("heading", text, level=level) is not None:
            self.headings.append((level, " ".join(text.split())))
        self.after_list = False

    def _flush(self) -> None:
        if self.para:
            for group in split_at_markers(self.para):
                self.builder.add("paragraph", inline_text("\n".join(group)))
            self.after_list = False
        self.para = []


def _strip_closing_hashes(text: str) -> str:
    """ "Title ##" -> "Title" (done by hand: a regex for it backtracks on long space runs)."""
    text = text.rstrip()
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        return bare.rstrip()
    return text


def _starts_block(line: str) -> bool:
    return bool(_ATX.match(line) or _FENCE.match(line) or _THEMATIC.match(line))


def _table_row(line: str) -> str:
    cells = line.strip().strip("|").split("|")
    return " | ".join(inline_text(cell.strip()) for cell in cells).strip(" |")


def _front_matter(lines: list[str]) -> tuple[str | None, list[str]]:
    """YAML front matter is metadata, not text; its ``title:`` is the document title."""
    if not lines or lines[0].strip() != "---":
        return None, lines
    for end in range(1, min(len(lines), 200)):
        if lines[end].strip() in ("---", "..."):
            title = None
            for line in lines[1:end]:
                match = _FRONT_TITLE.match(line)
                if match and match.group(1):
                    title = match.group(1)
            return title, lines[end + 1 :]
    return None, lines
