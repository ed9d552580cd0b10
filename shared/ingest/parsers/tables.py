"""Tables as text for spreadsheets, CSV, slides and scans: one row a line, cells joined by `` | ``,
cut into blocks that each fit one chunk and each open with the table's header row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from shared.ingest.document import DocumentBuilder
from shared.ingest.limits import Deadline, Limits, too_many_cells, too_many_rows
from shared.ingest.tokens import estimate_tokens

CELL_SEPARATOR = " | "
# Under the chunker's default cap (256 tokens) with room for the blank line that joins two
# blocks, so each block is one chunk and every chunk of a long table repeats its header row.
BLOCK_TOKENS = 200
_ROWS_PER_CLOCK_CHECK = 512


class TableBudget:
    """Rows and cells read so far in one document, against ``max_rows`` and ``max_cells``."""

    def __init__(self, limits: Limits, deadline: Deadline) -> None:
        self.limits = limits
        self.deadline = deadline
        self.rows = 0
        self.cells = 0

    def take(self, cells: int, where: str) -> None:
        """Count one row of ``cells`` cells (empty ones included); raise past a cap."""
        self.rows += 1
        self.cells += cells
        if self.rows > self.limits.max_rows:
            raise too_many_rows(self.limits)
        if self.cells > self.limits.max_cells:
            raise too_many_cells(self.limits)
        if self.rows % _ROWS_PER_CLOCK_CHECK == 0:
            self.deadline.check(where)


def cell_text(value: object) -> str:
    """One cell on one line: whitespace collapsed; whole floats without ``.0``; dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def trim_row(cells: Sequence[str]) -> list[str]:
    """The row without its trailing empty cells ([] when it has no content at all)."""
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return list(cells[:end])


class TableWriter:
    """Adds one table's rows to a builder as ``table`` blocks of at most ``BLOCK_TOKENS`` tokens.

    The first row with content is the header; every block opens with it, so a chunk of row 900 still
    says what its columns are. A row that alone is over the budget is a block of its own (with the
    header), which the chunker then splits by line.
    """

    def __init__(self, builder: DocumentBuilder, *, page: int | None = None, block_tokens: int = BLOCK_TOKENS) -> None:
        self.builder = builder
        self.page = page
        self.block_tokens = block_tokens
        self.header: str | None = None
        self._header_tokens = 0
        self._rows: list[str] = []
        self._tokens = 0
        self.rows_written = 0

    def add(self, cells: Sequence[str]) -> None:
        """One row of cell texts (already one line each); a row with no content is skipped."""
        trimmed = trim_row(cells)
        if not trimmed:
            return
        line = CELL_SEPARATOR.join(trimmed)
        if self.header is None:
            self.header, self._header_tokens = line, estimate_tokens(line) + 1
            return
        tokens = estimate_tokens(line) + 1
        if self._rows and self._header_tokens + self._tokens + tokens > self.block_tokens:
            self._flush()
        self._rows.append(line)
        self._tokens += tokens
        self.rows_written += 1

    def close(self) -> None:
        """Write what is pending; a table of only a header row is written as that row."""
        if self._rows:
            self._flush()
        elif self.header is not None and self.rows_written == 0:
            self.builder.add("table", self.header, page=self.page)
        self.header = None

    def _flush(self) -> None:
        lines = [self.header, *self._rows] if self.header is not None else self._rows
        self.builder.add("table", "\n".join(lines), page=self.page)
        self._rows, self._tokens = [], 0
