"""Plain text: paragraphs at blank lines; numbered sections and ALL-CAPS lines as headings."""

from __future__ import annotations

from shared.ingest.document import DocumentBuilder, ParsedDocument, too_many_chars
from shared.ingest.limits import Limits
from shared.ingest.structure import segment_lines
from shared.ingest.textcodec import decode_text, normalise_text


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Parse UTF-8 (or BOM-marked UTF-16) text."""
    deadline = limits.deadline()
    text = normalise_text(decode_text(data))
    if len(text) > limits.max_chars * 2:  # generous: blank lines and indentation go away
        raise too_many_chars(limits)
    builder = DocumentBuilder("text", limits)
    lines = text.split("\n")
    deadline.check("the text")
    for segment in segment_lines(lines, join="\n"):
        builder.add(segment.kind, segment.text, level=segment.level)
    deadline.check("the text")
    return builder.build(title=_title(lines), pages=None)


def _title(lines: list[str]) -> str | None:
    """The first non-blank line, when it is short enough to be one."""
    for line in lines:
        if line.strip():
            return line.strip() if len(line.strip()) <= 120 else None
    return None
