"""CSV (and TSV): the dialect sniffed from the text, rows rendered as table blocks whose header row
repeats at the top of every block (see :mod:`shared.ingest.parsers.tables`)."""

from __future__ import annotations

import csv
import io

from shared.ingest.document import DocumentBuilder, ParsedDocument, too_many_chars
from shared.ingest.errors import CorruptDocument
from shared.ingest.limits import Limits
from shared.ingest.parsers.tables import TableBudget, TableWriter
from shared.ingest.sniff import sniff_dialect
from shared.ingest.textcodec import decode_text


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Parse delimited text: UTF-8 (or BOM-marked UTF-16, or clearly Windows-1252) like plain text."""
    deadline = limits.deadline()
    text = decode_text(data)
    if len(text) > limits.max_chars * 2:  # separators shrink to " | ", padding goes; still bounded
        raise too_many_chars(limits)
    dialect = sniff_dialect(text)
    builder = DocumentBuilder("csv", limits)
    budget = TableBudget(limits, deadline)
    table = TableWriter(builder)
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        for row in reader:
            budget.take(len(row), "the rows")
            table.add([" ".join(cell.split()) for cell in row])
    except csv.Error as exc:  # a field past csv.field_size_limit, a NUL, a broken quote under strict
        raise CorruptDocument(f"This CSV file cannot be read past line {reader.line_num:,}: {exc}.") from exc
    table.close()
    deadline.check("the rows")
    return builder.build(title=None, pages=None)
