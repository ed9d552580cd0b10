"""Cut a parsed document into retrieval chunks along its own structure.

1. Headings open sections. Styled headings (Markdown, HTML, DOCX) nest by level; numbered
   sections and clauses ("ARTICLE 1", "Section 1.1", "4.2.1 Title") nest by rank (see
   :mod:`shared.ingest.structure`) below the last styled heading. In plain text and PDFs every
   heading is of the numbered kind. A heading with no text of its own before a heading
   beneath it (``ARTICLE 1`` directly followed by ``Section 1.1``, a title before the first
   heading) is carried into that section's first chunk, whose heading path it already heads;
   one followed by a sibling or a higher heading stays a chunk of its own.
2. A section that fits under ``max_tokens`` is one chunk. A longer one is packed from
   sentences (table rows, code lines) under the cap, preferring to end a chunk where a
   sub-clause ("(a)", "(iv)") begins, else at a paragraph end, else at a sentence end, as
   long as the chunk is at least half full. Consecutive chunks of one section overlap by whole
   sentences worth up to ``overlap_tokens``. A sentence is only cut when it alone exceeds the
   cap (at a line break if possible, else between words). Tables stay whole when they fit.
3. A tail smaller than ``max_tokens // 8`` is not left alone: it joins the previous chunk when
   that fits, otherwise the previous chunk ends earlier to leave it company.

Every chunk is an exact slice: ``doc.text[chunk.char_start:chunk.char_end] == chunk.text``.
Nothing is normalised; blocks inside a chunk are separated by the blank line that separates
them in ``doc.text``. Heading paths are kept apart from the text so embedders can prefix them.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from itertools import accumulate

from shared.ingest.document import Block, ParsedDocument
from shared.ingest.structure import ALL_CAPS_RANK, detect_marker, heading_title, run_in_heading
from shared.ingest.tokens import TokenCounter, estimate_tokens

DEFAULT_MAX_TOKENS = 256
DEFAULT_OVERLAP_TOKENS = 32
_STYLED = frozenset({"markdown", "html", "docx"})

# Boundary strength before an atom: where a chunk would rather end.
_MID_SENTENCE, _SENTENCE, _BLOCK, _SUBCLAUSE = 0, 1, 2, 3

# A sentence ends at . ! ? … (plus closing quotes/brackets) before whitespace and a word that
# does not start in lower case (checked in code: any script's capitals, digits, CJK); CJK full
# stops need no space.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+(?=\S)|[。！？]+[」』”’]*\s*")
_OPENERS = "\"'“‘«([¿¡"
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "inc",
        "ltd",
        "co",
        "corp",
        "plc",
        "llc",
        "no",
        "nos",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "al",
        "art",
        "arts",
        "sec",
        "secs",
        "para",
        "paras",
        "fig",
        "figs",
        "vol",
        "ch",
        "cl",
        "sch",
        "pp",
        "p",
        "approx",
        "dept",
        "est",
        "govt",
        "u.s",
        "u.k",
        "e.u",
    ]
)
_LABEL_WORDS = ("section", "article", "clause", "chapter", "§", "part", "schedule", "no")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrieval unit; ``text`` is ``doc.text[char_start:char_end]`` exactly."""

    ordinal: int
    text: str
    heading_path: list[str]
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    content_hash: str
    token_count: int


def chunk_document(
    doc: ParsedDocument,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[Chunk]:
    """Chunks for ``doc``, in document order, numbered from 0. Deterministic."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    if not 0 <= overlap_tokens <= max_tokens // 2:
        raise ValueError("overlap_tokens must be between 0 and max_tokens // 2")
    chunker = _Chunker(doc, max_tokens, overlap_tokens, count_tokens)
    return chunker.run()


def content_hash(text: str, heading_path: list[str]) -> str:
    """sha256 hex of heading path and text: an unchanged chunk can reuse its stored vector."""
    payload = "\x1f".join(heading_path) + "\x1e" + text  # separators no text contains
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class _Section:
    path: list[str]
    blocks: list[Block] = field(default_factory=list)
    heading_only: bool = True


@dataclass(frozen=True, slots=True)
class _Entry:
    """A heading on the path stack."""

    styled: bool
    rank: int
    title: str


@dataclass(frozen=True, slots=True)
class _Atom:
    start: int
    end: int
    tokens: int
    strength: int


class _Chunker:
    """One run over one document: sections, then chunks per section."""

    def __init__(self, doc: ParsedDocument, max_tokens: int, overlap: int, count: TokenCounter) -> None:
        self.doc = doc
        self.text = doc.text
        self.max = max_tokens
        self.overlap = overlap
        self.count = count
        self.min_fill = max_tokens // 2
        self.min_tail = max(1, max_tokens // 8)
        self.styled = doc.doc_type in _STYLED
        self.starts = [block.start for block in doc.blocks]
        self.chunks: list[Chunk] = []

    def run(self) -> list[Chunk]:
        for section in _carry_empty_headings(self._sections()):
            self._chunk_section(section)
        return self.chunks

    # -- sections -------------------------------------------------------------------------

    def _sections(self) -> list[_Section]:
        stack: list[_Entry] = []
        sections = [_Section(path=[])]
        for block in self.doc.blocks:
            entry = self._heading_entry(block)
            if entry is None:
                sections[-1].blocks.append(block)
                sections[-1].heading_only = False
                continue
            _push(stack, entry)
            sections.append(_Section([e.title for e in stack], [block], block.kind == "heading"))
        return [s for s in sections if s.blocks]

    def _heading_entry(self, block: Block) -> _Entry | None:
        if block.kind == "heading":
            if self.styled:
                return _Entry(True, block.level or 1, heading_title(block.text))
            marker = detect_marker(block.text, whole_is_heading=True)
            rank = marker.rank if marker else (block.level or ALL_CAPS_RANK)
            return _Entry(False, rank, heading_title(block.text, shouting_to_title=True))
        if block.kind == "paragraph" or (block.kind == "list_item" and run_in_heading(block.text) is not None):
            # A numbered list item opens a section only as a clause with a run-in title
            # ("3. License to the Company. In some cases..."), never as a short item ("1. Install").
            marker = detect_marker(block.text)
            if marker is not None and marker.kind == "heading":
                return _Entry(False, marker.rank, marker.title)
        return None

    # -- chunking one section -------------------------------------------------------------

    def _chunk_section(self, section: _Section) -> None:
        start, end = section.blocks[0].start, section.blocks[-1].end
        block_tokens = sum(self.count(block.text) for block in section.blocks)
        if block_tokens <= self.max:
            tokens = self.count(self.text[start:end])
            if tokens <= self.max:
                self._emit(start, end, section.path, tokens)
                return
        atoms = self._atoms(section.blocks)
        for first, last, tokens in _Packer(self, atoms).spans():
            self._emit(atoms[first].start, atoms[last - 1].end, section.path, tokens)

    def _atoms(self, blocks: list[Block]) -> list[_Atom]:
        atoms: list[_Atom] = []
        for block in blocks:
            lead = _SUBCLAUSE if self._is_subclause(block) else _BLOCK
            for index, (start, end) in enumerate(self._block_spans(block)):
                atoms.extend(self._sized(start, end, lead if index == 0 else _SENTENCE))
        return atoms

    def _is_subclause(self, block: Block) -> bool:
        if block.kind not in ("paragraph", "list_item"):
            return False
        marker = detect_marker(block.text)
        return marker is not None and marker.kind == "subclause"

    def _block_spans(self, block: Block) -> list[tuple[int, int]]:
        """Sentences for prose; for tables and code, the whole block when it fits, else lines."""
        if block.kind in ("table", "code"):
            if self.count(block.text) <= self.max:
                return [(block.start, block.end)]
            return _line_spans(self.text, block.start, block.end)
        if block.kind == "heading":
            return [(block.start, block.end)]
        return _sentence_spans(self.text, block.start, block.end)

    def _sized(self, start: int, end: int, strength: int) -> list[_Atom]:
        """One atom, or several when a single sentence/row/line exceeds the cap."""
        tokens = self.count(self.text[start:end])
        if tokens <= self.max:
            return [_Atom(start, end, tokens, strength)]
        pieces = _HardSplitter(self, start, end, tokens).pieces()
        return [_Atom(s, e, t, strength if i == 0 else _MID_SENTENCE) for i, (s, e, t) in enumerate(pieces)]

    # -- output ---------------------------------------------------------------------------

    def _emit(self, start: int, end: int, path: list[str], tokens: int) -> None:
        text = self.text[start:end]
        page_start, page_end = self._pages(start, end)
        self.chunks.append(
            Chunk(
                ordinal=len(self.chunks),
                text=text,
                heading_path=list(path),
                page_start=page_start,
                page_end=page_end,
                char_start=start,
                char_end=end,
                content_hash=content_hash(text, path),
                token_count=tokens,
            )
        )

    def _pages(self, start: int, end: int) -> tuple[int | None, int | None]:
        first = max(0, bisect.bisect_right(self.starts, start) - 1)
        last = bisect.bisect_left(self.starts, end)
        pages = [b.page for b in self.doc.blocks[first:last] if b.page is not None]
        return (min(pages), max(pages)) if pages else (None, None)


class _Packer:
    """Greedy packing of a long section's atoms into ``(first, last, tokens)`` spans."""

    def __init__(self, chunker: _Chunker, atoms: list[_Atom]) -> None:
        self.c = chunker
        self.atoms = atoms
        self.n = len(atoms)
        self.pre = [0, *accumulate(a.tokens for a in atoms)]

    def spans(self) -> list[tuple[int, int, int]]:
        out: list[tuple[int, int, int]] = []
        start, done = 0, 0  # done: first atom not yet in any chunk
        while done < self.n:
            start, end, tokens = self._next(start, done)
            out.append((start, end, tokens))
            done = end
            start = self._overlap_start(start, done)
        return out

    def _tokens(self, first: int, last: int) -> int:
        return self.pre[last] - self.pre[first]

    def _next(self, start: int, done: int) -> tuple[int, int, int]:
        end = self._fill(start, done + 1)
        if end < self.n:
            end = self._prefer_boundary(start, done, end)
            end = self._avoid_tiny_tail(start, done, end)
        return self._verify(start, done, end)

    def _fill(self, start: int, end: int) -> int:
        while end < self.n and self._tokens(start, end + 1) <= self.c.max:
            end += 1
        return end

    def _prefer_boundary(self, start: int, done: int, end: int) -> int:
        """The strongest boundary in the half-full-or-more range; the latest among equals."""
        best, best_strength = end, -1
        for cut in range(done + 1, end + 1):
            if self._tokens(start, cut) < self.c.min_fill:
                continue
            strength = self.atoms[cut].strength
            if strength >= best_strength:
                best, best_strength = cut, strength
        return best

    def _avoid_tiny_tail(self, start: int, done: int, end: int) -> int:
        rest = self._tokens(end, self.n)
        if rest == 0 or rest >= self.c.min_tail:
            return end
        if self._tokens(start, self.n) <= self.c.max:
            return self.n
        while end - 1 > done and self._tokens(end, self.n) < self.c.min_tail:
            end -= 1
        return end

    def _verify(self, start: int, done: int, end: int) -> tuple[int, int, int]:
        """Measure the real text: atom sums are an estimate for tokenizers that merge pieces."""
        while True:
            tokens = self.c.count(self.c.text[self.atoms[start].start : self.atoms[end - 1].end])
            if tokens <= self.c.max:
                return start, end, tokens
            if end > done + 1:
                end -= 1
            elif start < done:
                start = done  # drop the overlap rather than exceed the cap
            else:
                return start, end, tokens  # one atom, already split to fit; cannot happen

    def _overlap_start(self, start: int, done: int) -> int:
        """Back up over whole atoms worth up to ``overlap`` tokens, leaving room for new text."""
        if done >= self.n:
            return done
        room = self.c.max - self.atoms[done].tokens
        back, total = done, 0
        while back - 1 > start:
            tokens = self.atoms[back - 1].tokens
            if total + tokens > min(self.c.overlap, room):
                break
            total += tokens
            back -= 1
        return back


class _HardSplitter:
    """Cuts one over-long sentence into pieces under the cap, at line breaks or spaces."""

    def __init__(self, chunker: _Chunker, start: int, end: int, tokens: int) -> None:
        self.c = chunker
        self.start, self.end = start, end
        # Characters per token from the whole span, so most cuts are right on the first try.
        self.window = max(1, int(self.c.max * (end - start) / max(tokens, 1) * 0.9))

    def pieces(self) -> list[tuple[int, int, int]]:
        text, out, pos = self.c.text, [], self.start
        while pos < self.end:
            if self.end - pos <= self.window:
                tokens = self.c.count(text[pos : self.end])
                if tokens <= self.c.max:
                    out.append((pos, self.end, tokens))
                    break
            cut, tokens = self._cut(pos)
            out.append((pos, cut, tokens))
            pos = _skip_space(text, cut, self.end)
        return out

    def _cut(self, pos: int) -> tuple[int, int]:
        limit = min(self.end, pos + self.window)
        while True:
            cut = _snap(self.c.text, pos, limit)
            tokens = self.c.count(self.c.text[pos:cut])
            if tokens <= self.c.max or cut - pos <= 1:
                return cut, tokens
            limit = pos + max(1, (limit - pos) * 9 // 10)


def _snap(text: str, pos: int, limit: int) -> int:
    """Last line break in the second half of the window, else last space, else ``limit``."""
    newline = text.rfind("\n", pos + (limit - pos) // 2, limit)
    if newline > pos:
        return _trim_end(text, pos, newline)
    space = max(text.rfind(" ", pos + 1, limit), text.rfind("\t", pos + 1, limit))
    if space > pos:
        return _trim_end(text, pos, space)
    return limit


def _trim_end(text: str, pos: int, end: int) -> int:
    while end > pos + 1 and text[end - 1].isspace():
        end -= 1
    return end


def _skip_space(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos].isspace():
        pos += 1
    return pos


def _push(stack: list[_Entry], entry: _Entry) -> None:
    """Pop what the new heading closes, then push it.

    A styled heading closes every numbered heading and styled ones of its level or deeper; a
    numbered heading closes numbered ones of its rank or deeper but never a styled heading,
    because numbering inside a styled section belongs to that section.
    """
    while stack:
        top = stack[-1]
        closes = (entry.styled and (not top.styled or top.rank >= entry.rank)) or (
            not entry.styled and not top.styled and top.rank >= entry.rank
        )
        if not closes:
            break
        stack.pop()
    stack.append(entry)


def _carry_empty_headings(sections: list[_Section]) -> list[_Section]:
    """Fold a heading-only section into the next section when that section is beneath it.

    A heading alone makes a useless chunk; its text stays at the start of its first
    subsection, whose heading path it already heads. A heading whose next section is a sibling
    or higher (a clause heading with no body, followed by the next clause) is never folded
    forward: that would hand the sibling's path to it, and a run of them to the last one.
    """
    out: list[_Section] = []
    carried: list[Block] = []  # extended in place: a run of bare headings stays linear
    for index, section in enumerate(sections):
        carried.extend(section.blocks)
        if section.heading_only and index + 1 < len(sections) and _beneath(sections[index + 1].path, section.path):
            continue
        out.append(_Section(section.path, carried, section.heading_only))
        carried = []
    return out


def _beneath(path: list[str], parent: list[str]) -> bool:
    return len(path) > len(parent) and path[: len(parent)] == parent


def _sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Trimmed sentence spans of ``text[start:end]``, abbreviation- and label-aware."""
    spans: list[tuple[int, int]] = []
    begin = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if _next_is_lower(text, match.end(), end) or _is_false_stop(text, begin, match.start()):
            continue
        spans.append((begin, _trim_end(text, begin, match.end())))
        begin = match.end()
    if begin < end:
        spans.append((begin, end))
    return [(s, e) for s, e in spans if e > s and not text[s:e].isspace()]


def _next_is_lower(text: str, pos: int, end: int) -> bool:
    """True when the text after a stop goes on in lower case ("approx. five", "e.g. this")."""
    while pos < end and text[pos] in _OPENERS:
        pos += 1
    return pos < end and text[pos].islower()


def _is_false_stop(text: str, begin: int, stop: int) -> bool:
    """A period after an abbreviation, an initial, or a section label is not a sentence end."""
    if stop <= begin:
        return True
    window = text[max(begin, stop - 40) : stop]
    tokens = window.rsplit(None, 1)
    if not tokens:
        return False
    word = tokens[-1].lstrip("([\"'“‘").lower()
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return True
    # "Section 1. Definitions": the stop follows a number that a keyword introduces.
    if len(tokens) < 2 or not word.replace(".", "").isdigit():
        return False
    return tokens[0].rstrip().lower().endswith(_LABEL_WORDS)


def _line_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, pos = [], start
    while pos < end:
        newline = text.find("\n", pos, end)
        stop = end if newline < 0 else newline
        if text[pos:stop].strip():
            left = _skip_space(text, pos, stop)
            spans.append((left, _trim_end(text, left, stop)))
        pos = stop + 1
    return spans
