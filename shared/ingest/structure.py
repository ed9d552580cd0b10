"""Numbered sections and clauses ("Section 4.2", "ARTICLE XII", "(a)") and line segmentation.

Legal and technical documents carry their structure in numbering, not styles, and plain text
and most PDFs have no styles at all. This module recognises that numbering at the start of a
line. Ranks order headings: a smaller rank is higher in the hierarchy. Fixed ranks cannot fit
every drafting convention (some statutes nest articles inside sections); these fit contracts,
policies and most regulations:

    1 Part / Book   2 Chapter   3 Article, Schedule, Annex, Appendix, Exhibit (and unnumbered
    ALL-CAPS headings)   4 Section, Clause, §   +1 per extra level of dotted numbering
    ("Section 4.2" and "4.2 Title" are 5, "4.2.1 Title" is 6).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ALL_CAPS_RANK = 3
MAX_LEVEL = 6
_SUBCLAUSE_RANK = 100

_KEYWORD_RANK = {
    "part": 1,
    "book": 1,
    "chapter": 2,
    "article": 3,
    "art.": 3,
    "schedule": 3,
    "annex": 3,
    "annexure": 3,
    "appendix": 3,
    "exhibit": 3,
    "section": 4,
    "sec.": 4,
    "sect.": 4,
    "clause": 4,
    "§": 4,
    "§§": 4,
}
_KEYWORD = re.compile(
    r"(?:(?P<kw>(?i:part|book|chapter|article|art\.|schedule|annexure|annex|appendix|exhibit"
    r"|section|sect?\.|clause))[ \t]+|(?P<sect>§§?)[ \t]*)"
    r"(?P<id>\d{1,4}(?:\.\d{1,3})*[A-Za-z]?|[IVXLCDM]{1,7}|[A-Z])"
    r"(?P<dot>\.(?!\d))?(?=$|[\s:\-–—.)(,])"
)
_ROMAN_NUMERAL = re.compile(r"M{0,4}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_BARE_NUMBER = re.compile(r"(?P<id>\d{1,3}(?:\.\d{1,3})*)(?P<dot>[.)])?[ \t]+(?=\S)")
_SUBCLAUSE = re.compile(r"(?:\((?:[a-z]{1,2}|[ivxlcdm]{1,6}|[A-Z]|\d{1,2})\)|(?:[a-z]|[ivxlcdm]{1,6})\))[ \t]+(?=\S)")
_BULLET = re.compile(r"[•◦▪▫●○■□‣⁃∙·\-–*][ \t]+(?=\S)")
# Bullets that open an item even mid-paragraph; a dash may just be a wrapped line's start.
_HARD_BULLETS = frozenset("•◦▪▫●○■□‣⁃∙·*-")
_TITLE_STOP = re.compile(r"\.(?:\s|$)|:\s|\s[-–—]\s|;|\n")
_RUN_IN_STOP = re.compile(r"[.:](?=\s+\S)")
_SENTENCE_INSIDE = re.compile(r"[.!?:;][\"'”’)]*\s+\S")
_WORD = re.compile(r"[^\W\d_][\w'’\-]*")
# Words allowed to stay lower case inside a heading ("Limitation of Liability").
_SMALL_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "as",
        "at",
        "but",
        "by",
        "for",
        "from",
        "in",
        "into",
        "nor",
        "of",
        "on",
        "onto",
        "or",
        "over",
        "per",
        "the",
        "to",
        "upon",
        "via",
        "vs",
        "with",
        "within",
        "without",
        "under",
        "between",
    ]
)
_CLOSERS = tuple(".:;!?)]\"'”’")


@dataclass(frozen=True, slots=True)
class Marker:
    """Structure recognised at the start of a block."""

    kind: Literal["heading", "subclause"]
    rank: int
    title: str  # the heading-path entry; for sub-clauses, the label such as "(a)"


@dataclass(frozen=True, slots=True)
class Segment:
    """A block-to-be produced by :func:`segment_lines`."""

    kind: Literal["heading", "paragraph", "list_item", "table"]
    text: str
    level: int | None = None


def detect_marker(text: str, *, whole_is_heading: bool = False) -> Marker | None:
    """Recognise numbering at the start of ``text``.

    With ``whole_is_heading`` (a heading block) the whole text is the title; otherwise the
    title is the label plus a short title-like phrase after it, if there is one
    ("Section 1.1 Definitions. In this Agreement..." gives "Section 1.1 Definitions").
    """
    text = text.lstrip()
    found = _keyword_marker(text) or _bare_number_marker(text, whole_is_heading)
    if found is None:
        sub = _SUBCLAUSE.match(text)
        if sub:
            return Marker("subclause", _SUBCLAUSE_RANK, sub.group(0).strip())
        return None
    rank, label, rest, numbered_item = found
    if whole_is_heading:
        return Marker("heading", rank, heading_title(text, shouting_to_title=True))
    phrase = _title_phrase(rest)
    if numbered_item and phrase is None:
        return Marker("subclause", _SUBCLAUSE_RANK, label)  # "1. The Supplier shall..."
    title = f"{label} {phrase}" if phrase else label
    return Marker("heading", rank, heading_title(title, shouting_to_title=True))


def heading_line_level(line: str) -> int | None:
    """Level when a standalone line reads as a heading in unstyled text, else None."""
    line = line.strip()
    if not line or len(line) > 100 or line.endswith((",", ";")):
        return None
    found = _keyword_marker(line) or _bare_number_marker(line, True)
    if found is not None:
        rank, _label, rest, _item = found
        rest = rest.strip(" .:-–—\t")
        if not rest or (_is_title_like(rest) and not _TITLE_STOP.search(rest)):
            return min(rank, MAX_LEVEL)
        return None  # "Chapter 3 Remedies. Text follows." is a paragraph that opens a section
    if _is_shouting(line) and len(_WORD.findall(line)) <= 10 and not line.endswith("."):
        return ALL_CAPS_RANK
    return None


def run_in_heading(text: str) -> tuple[str, str] | None:
    """Split a clause whose title runs into its body: "1.1 Access and Use.  During the..." gives
    ("1.1 Access and Use.", "During the..."); None when the text does not open with such a title."""
    stripped = text.strip()
    offset = _label_end(stripped)
    rest = stripped[offset:]
    stop = _RUN_IN_STOP.search(rest, 0, 101)
    if stop is None:
        return None
    phrase, body = rest[: stop.start()], rest[stop.end() :].strip()
    if not body or not phrase.strip() or not _is_title_like(phrase):
        return None
    return stripped[: offset + stop.start() + 1].strip(), body


def reads_as_sentence(text: str) -> bool:
    """True for a styled "heading" that is really prose: several sentences, or one sentence
    that is not headline words ("Use of the Product must comply with all Documentation.")."""
    stripped = text.strip()
    rest = stripped[_label_end(stripped) :]
    if len(rest) > 200 or _SENTENCE_INSIDE.search(rest):
        return True
    # A question ("How do I cancel my subscription?") is a common heading; a statement is not.
    return rest.endswith((".", ";", ",")) and not _is_title_like(rest)


def _label_end(stripped: str) -> int:
    """Where an opening clause label ("Section 4", "1.1", "(a)") ends; 0 without one."""
    label = _KEYWORD.match(stripped) or _BARE_NUMBER.match(stripped) or _SUBCLAUSE.match(stripped)
    return label.end() if label else 0


def heading_title(text: str, *, shouting_to_title: bool = False) -> str:
    """A heading-path entry: one line, trailing punctuation gone, SHOUTING in title case."""
    title = " ".join(text.split()).rstrip(" .:;,-–—")
    if shouting_to_title and _is_shouting(title):
        title = _title_case(title)
    return title


def marker_rank(text: str) -> int | None:
    """Rank of a heading block's numbering, or None when it has none."""
    found = _keyword_marker(text.lstrip()) or _bare_number_marker(text.lstrip(), True)
    return found[0] if found else None


# Typographic hints for :func:`segment_lines`, one per line: a heading level (1 = top) set in
# larger or bold type, body text, text smaller than the body (footnotes, captions), which is
# never a heading however it is numbered, or a row of a table laid out on the page (its cells
# already joined by " | "), which keeps its line.
BODY_TEXT, SMALL_TEXT, TABLE_ROW = 0, -1, -2


def segment_lines(
    lines: Sequence[str],
    *,
    join: str = "\n",
    infer_paragraphs: bool = False,
    hints: Sequence[int] | None = None,
) -> list[Segment]:
    """Group unstyled lines (plain text, PDF pages) into headings, paragraphs and list items.

    Blank lines end paragraphs. A line opening a numbered section, a sub-clause or a bullet
    starts a new block, but only when the previous line closed a clause: a wrapped line that
    merely begins "Section 4.2 of this Agreement..." continues its sentence. With
    ``infer_paragraphs`` (PDF text has no blank lines) a short line ending a sentence also
    ends its paragraph. ``hints`` (PDF typography, one per line) make a line a heading of that
    level (consecutive lines of one heading join), forbid it to be one (``SMALL_TEXT``), or make
    it a table row (``TABLE_ROW``: consecutive rows are one table block, one row per line).
    """
    return _Segmenter(join, infer_paragraphs, _wide_line(lines)).run(lines, hints)


class _Segmenter:
    """State for :func:`segment_lines`: the open block and the blocks emitted so far."""

    def __init__(self, join: str, infer_paragraphs: bool, wide: int) -> None:
        self.join = join
        self.infer = infer_paragraphs
        self.wide = wide
        self.out: list[Segment] = []
        self.lines: list[str] = []
        self.kind: Literal["paragraph", "list_item", "table"] = "paragraph"
        self.pending_label: Segment | None = None  # "ARTICLE 1" waiting for its title line
        self.typeset_heading: Segment | None = None  # the last heading set by typography

    def run(self, lines: Sequence[str], hints: Sequence[int] | None = None) -> list[Segment]:
        for index, raw in enumerate(lines):
            self.feed(raw.strip(), BODY_TEXT if hints is None else hints[index])
        self.flush()
        return self.out

    def feed(self, line: str, hint: int = BODY_TEXT) -> None:
        if not line:
            self.flush(keep_label=True)
            self.typeset_heading = None
            return
        if hint > 0:
            self._typeset_heading(line, hint)
            return
        self.typeset_heading = None
        if (hint == TABLE_ROW) != (self.kind == "table"):
            self.flush()
        if hint == TABLE_ROW:
            self.kind = "table"
            self.lines.append(line)
            return
        boundary = not self.lines or _closes_clause(self.lines[-1])
        boundary = boundary or (line[0] in _HARD_BULLETS and _BULLET.match(line) is not None)
        if self.pending_label is not None:
            if self._completes_label(line):
                return
            self.out.append(self.pending_label)
            self.pending_label = None
        if boundary and self._start_structure(line, headings=hint != SMALL_TEXT):
            return
        if self.infer and self.lines and _ends_paragraph(self.lines[-1], self.wide):
            self.flush()
        self.lines.append(line)

    def _typeset_heading(self, line: str, level: int) -> None:
        """A line the typography marks as a heading; a second line of it joins the first."""
        last = self.typeset_heading
        if last is not None and last.level == level and not self.lines and self.out and self.out[-1] is last:
            self.out[-1] = self.typeset_heading = Segment("heading", last.text + self.join + line, level)
            return
        self.flush()
        rank = marker_rank(line)  # "4.2 Fees" in bold keeps its numbering's rank
        segment = Segment("heading", line, min(rank, MAX_LEVEL) if rank is not None else level)
        self.out.append(segment)
        self.typeset_heading = segment

    def _start_structure(self, line: str, *, headings: bool = True) -> bool:
        """Open a heading, list item or numbered paragraph; False for an ordinary line."""
        level = heading_line_level(line) if headings else None
        if level is not None:
            self.flush()
            segment = Segment("heading", line, level)
            if _is_bare_label(line):
                self.pending_label = segment
            else:
                self.out.append(segment)
            return True
        bullet = _BULLET.match(line)
        if bullet:
            self.flush()
            self.kind = "list_item"
            self.lines.append(line[bullet.end() :])
            return True
        if detect_marker(line) is not None:
            self.flush()
            self.lines.append(line)
            return True
        return False

    def _completes_label(self, line: str) -> bool:
        """Join "ARTICLE 1" with a following title line such as "DEFINITIONS"."""
        label = self.pending_label
        assert label is not None
        if marker_rank(line) is not None or not (_is_shouting(line) or _is_title_like(line)):
            return False
        if len(line) > 80 or line.endswith((".", ",", ";")):
            return False
        self.out.append(Segment("heading", label.text + self.join + line, label.level))
        self.pending_label = None
        return True

    def flush(self, keep_label: bool = False) -> None:
        if self.pending_label is not None and not keep_label:
            self.out.append(self.pending_label)
            self.pending_label = None
        if self.lines:
            self.out.append(Segment(self.kind, self._joined()))
        self.lines = []
        self.kind = "paragraph"

    def _joined(self) -> str:
        if self.join == "\n" or self.kind == "table":
            return "\n".join(self.lines)
        text = self.lines[0]
        for line in self.lines[1:]:
            # Undo end-of-line hyphenation: "exam-" + "ple" -> "example".
            if len(text) > 1 and text[-1] == "-" and text[-2].isalpha() and line[:1].islower():
                text = text[:-1] + line
            else:
                text = text + self.join + line
        return text


def _keyword_marker(text: str) -> tuple[int, str, str, bool] | None:
    match = _KEYWORD.match(text)
    if not match:
        return None
    keyword = match.group("kw") or match.group("sect")
    rest = text[match.end() :]
    if keyword[0].islower():  # "section 4 of the Act" is a reference, not a heading
        return None
    if rest[:1] in " \t" and rest.lstrip(" \t")[:1].islower():
        return None  # "Article 5 of the GDPR requires..." also opens with a reference
    ident = match.group("id")
    rank = _KEYWORD_RANK[keyword.lower()]
    if rank >= 3 and ident[0].isdigit():
        rank += ident.count(".")
    return rank, f"{keyword} {ident}", rest, False


def _bare_number_marker(text: str, standalone: bool) -> tuple[int, str, str, bool] | None:
    """ "4.2 Title" and "4.2.1 Title" are sections; "1. Title" one when the title reads as one."""
    match = _BARE_NUMBER.match(text)
    if not match:
        return None
    ident, dot, rest = match.group("id"), match.group("dot"), text[match.end() :]
    if not rest[:1].isupper() and rest[:1] not in "\"'“‘":
        return None
    depth = ident.count(".") + 1
    if depth == 1 and not dot:
        # "12 March 2024 ..." must not become a section; "1 Introduction" alone on a line may.
        if not standalone or "\n" in rest or any(c.isdigit() for c in rest):
            return None
        if not _is_title_like(rest):
            return None
    label = ident + (dot if dot == "." and depth == 1 else "")
    numbered_item = depth == 1 and dot is not None
    return 4 + depth - 1, label, rest, numbered_item


def _title_phrase(rest: str) -> str | None:
    """A short title right after a label ("Definitions" in "Section 1.1 Definitions. In...")."""
    rest = rest.lstrip(" \t.:-–—)")
    if not rest:
        return None
    stop = _TITLE_STOP.search(rest, 0, 81)
    phrase = rest[: stop.start()] if stop else rest[:81]
    return phrase.strip() if _is_title_like(phrase) and len(phrase) <= 80 else None


def _is_title_like(phrase: str) -> bool:
    """Headline words: short, capitalised first word, no long lower-case words (few words ok)."""
    words = _WORD.findall(phrase)
    if not words or len(words) > 10 or not words[0][0].isupper():
        return False
    if len(words) <= 3 or _is_shouting(phrase):
        return True
    return all(not w.islower() or len(w) < 4 or w in _SMALL_WORDS for w in words)


def _is_shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 3 and all(c.isupper() for c in letters)


def _title_case(text: str) -> str:
    """ "ARTICLE XII LIMITATION OF LIABILITY" -> "Article XII Limitation of Liability"."""
    words = text.split(" ")
    out: list[str] = []
    for i, word in enumerate(words):
        after_keyword = i > 0 and words[i - 1].lower() in _KEYWORD_RANK
        if any(c.isdigit() for c in word) or (after_keyword and _ROMAN_NUMERAL.fullmatch(word.rstrip("."))):
            out.append(word)
        elif i and word.lower() in _SMALL_WORDS:
            out.append(word.lower())
        else:
            out.append(word[:1] + word[1:].lower())
    return " ".join(out)


def _is_bare_label(line: str) -> bool:
    """ "ARTICLE 1" or "CHAPTER II" with nothing after it: its title may be on the next line."""
    match = _KEYWORD.match(line)
    return match is not None and not line[match.end() :].strip(" .:-–—")


def _closes_clause(line: str) -> bool:
    """True when a line ends a clause, so the next line may open a new block."""
    line = line.rstrip()
    if line.endswith(_CLOSERS):
        return True
    tail = line.rsplit(" ", 2)
    # "(a) the Customer; and" / "...; or" end a list entry.
    return len(tail) == 3 and tail[-1] in ("and", "or") and tail[-2].endswith((";", ","))


def _ends_paragraph(line: str, wide: int) -> bool:
    """PDF heuristic: a line ending a sentence well short of the column width ends a paragraph."""
    return line.endswith((".", "!", "?", ":", ".”", '."')) and len(line) < 0.75 * wide


def _wide_line(lines: Sequence[str]) -> int:
    """The typical full line width: the 80th percentile of non-trivial line lengths."""
    lengths = sorted(len(line.strip()) for line in lines if len(line.strip()) >= 20)
    return lengths[int(0.8 * (len(lengths) - 1))] if lengths else 80


def split_at_markers(lines: Sequence[str]) -> list[list[str]]:
    """Split a styled paragraph's lines where a numbered section or sub-clause line begins.

    For formats whose headings are explicit (Markdown): only numbering opens blocks here,
    never the ALL-CAPS heuristic.
    """
    groups: list[list[str]] = []
    for line in lines:
        opens = groups and _closes_clause(groups[-1][-1]) and detect_marker(line) is not None
        if not groups or opens:
            groups.append([line])
        else:
            groups[-1].append(line)
    return groups
