"""The parsed form every format turns into: ordered blocks over one extracted text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from shared.ingest.errors import EmptyDocument, TooLarge
from shared.ingest.limits import Limits

DocType = Literal["pdf", "docx", "html", "markdown", "text", "pptx", "xlsx", "csv", "image"]
BlockKind = Literal["heading", "paragraph", "list_item", "table", "code"]

# Blocks are joined with one blank line; offsets below count these two characters.
BLOCK_SEPARATOR = "\n\n"
_LEADING_BLANK_LINES = re.compile(r"^(?:[ \t]*\n)+")


@dataclass(frozen=True, slots=True)
class Block:
    """One structural unit. ``text == document.text[start:end]`` always holds."""

    kind: BlockKind
    text: str
    level: int | None  # heading level (1 = top); None for other kinds
    page: int | None  # 1-based page; None when the format has no pages
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """What a parser returns: the full extracted text plus the blocks that tile it."""

    title: str | None
    doc_type: DocType
    pages: int | None
    blocks: list[Block] = field(default_factory=list)
    text: str = ""


class DocumentBuilder:
    """Appends blocks, tracks their offsets and enforces ``max_chars`` as text arrives.

    The char cap is checked on every append so a parser stops as soon as the text outgrows
    it, instead of first building a string of unbounded size.
    """

    def __init__(self, doc_type: DocType, limits: Limits) -> None:
        self.doc_type = doc_type
        self.limits = limits
        self._blocks: list[Block] = []
        self._parts: list[str] = []
        self._length = 0

    @property
    def length(self) -> int:
        """Characters of text so far, separators included."""
        return self._length

    @property
    def remaining_chars(self) -> int:
        """How many more characters fit under ``max_chars``."""
        return max(0, self.limits.max_chars - self._length)

    @property
    def blocks(self) -> list[Block]:
        return self._blocks

    def add(self, kind: BlockKind, text: str, *, level: int | None = None, page: int | None = None) -> Block | None:
        """Append a block; blank text is skipped (returns None). Surrounding space is trimmed,
        except a code block's first-line indentation, which is part of the code."""
        text = _LEADING_BLANK_LINES.sub("", text.rstrip()) if kind == "code" else text.strip()
        if not text.strip():
            return None
        start = self._length + (len(BLOCK_SEPARATOR) if self._parts else 0)
        end = start + len(text)
        if end > self.limits.max_chars:
            raise too_many_chars(self.limits)
        if self._parts:
            self._parts.append(BLOCK_SEPARATOR)
        self._parts.append(text)
        block = Block(kind, text, level if kind == "heading" else None, page, start, end)
        self._blocks.append(block)
        self._length = end
        return block

    def build(self, *, title: str | None, pages: int | None, empty_hint: str = "") -> ParsedDocument:
        """Freeze into a :class:`ParsedDocument`; no text at all is an :class:`EmptyDocument`."""
        if not self._blocks:
            raise EmptyDocument(f"No text could be found in this document.{empty_hint}")
        text = "".join(self._parts)
        return ParsedDocument(
            title=clean_title(title),
            doc_type=self.doc_type,
            pages=pages,
            blocks=self._blocks,
            text=text,
        )


def too_many_chars(limits: Limits) -> TooLarge:
    """The error for text beyond ``max_chars``, shared by every parser."""
    return TooLarge(
        f"This document contains more than {limits.max_chars:,} characters of text "
        "(max_chars). Split it into smaller documents.",
        limit="max_chars",
        value=limits.max_chars,
    )


def clean_title(title: str | None, max_len: int = 200) -> str | None:
    """Collapse whitespace; drop empty titles; cut very long ones at a word boundary."""
    if not title:
        return None
    title = " ".join(title.split())
    if len(title) > max_len:
        title = title[:max_len].rsplit(" ", 1)[0] + "…"
    return title or None
