"""PDF reading order: columns drawn across the page line by line, and tables drawn cell by cell."""

from __future__ import annotations

from benchmarks.documents import _running_lines
from shared.ingest import chunk_document, parse_document
from shared.ingest.structure import BODY_TEXT, TABLE_ROW, segment_lines

from .fixtures import _pdf_string, build_pdf

# Three columns of instructions; each holds two paragraphs whose sentences run over its lines.
_COLUMNS = [
    [
        "Who Must File. You must file a return",
        "if your gross income was at least the",
        "amount shown in the table for your",
        "filing status and age at the end of",
        "the year. Dependents have other rules.",
        "Filing Status. Your filing status is",
        "single if you were unmarried on the",
        "last day of the tax year and did not",
        "qualify for another filing status.",
    ],
    [
        "When To File. File your return by",
        "April fifteen unless that date falls",
        "on a weekend or a legal holiday, in",
        "which case file on the next business",
        "day. An extension gives more time.",
        "Where To File. Mail your return to",
        "the address listed for the state you",
        "live in, or file it electronically",
        "with approved software.",
    ],
    [
        "Payments. If you owe tax, pay it with",
        "your return by check or money order",
        "made payable to the Treasury, or pay",
        "it electronically from your bank",
        "account. Interest accrues on late tax.",
        "Refunds. A refund is issued within",
        "weeks of a complete electronic return",
        "when you choose direct deposit into",
        "an account in your own name.",
    ],
]
_LEFT = (36, 222, 408)


def _show(x: float, y: float, text: str, size: float = 9) -> bytes:
    return b"BT /F1 %g Tf %g %g Td " % (size, x, y) + _pdf_string(text) + b" Tj ET"


def _columns_page(*, across: bool) -> bytes:
    """The three columns, drawn row by row across the page (``across``) or a column at a time."""
    cells = [(row, col) for row in range(9) for col in range(3)]
    if not across:
        cells.sort(key=lambda cell: (cell[1], cell[0]))
    return b"\n".join(_show(_LEFT[col], 740 - 12 * row, _COLUMNS[col][row]) for row, col in cells)


def _sentences(column: list[str]) -> str:
    return " ".join(column)


def test_columns_drawn_across_the_page_line_by_line_are_read_column_by_column():
    doc = parse_document(build_pdf(streams=[_columns_page(across=True)]))
    for column in _COLUMNS:
        assert _sentences(column) in doc.text
    chunk_text = " ".join(c.text for c in chunk_document(doc))
    assert "You must file a return if your gross income was at least the amount shown" in chunk_text


def test_columns_drawn_one_after_the_other_read_the_same():
    across = parse_document(build_pdf(streams=[_columns_page(across=True)]))
    in_order = parse_document(build_pdf(streams=[_columns_page(across=False)]))
    assert in_order.text == across.text
    assert all(b.kind != "table" for b in in_order.blocks)


_TABLE = [
    ("Notice Date", "Company", "City", "Layoff/Closure"),
    *[
        (f"07/{day:02d}/2015", company, city, status)
        for day, (company, city, status) in enumerate(
            [
                ("Maxim Integrated Product", "San Jose", "Closure Permanent"),
                ("McGraw-Hill Education", "Monterey", "Layoff Unknown at this time"),
                ("Long Beach Memorial", "Long Beach", "Layoff Permanent"),
                ("Leidos", "El Segundo", "Layoff Permanent"),
                ("Bosch Healthcare Systems", "Palo Alto", "Closure Permanent"),
                ("Encompass Digital Media", "Los Angeles", "Closure Permanent"),
            ],
            start=1,
        )
    ],
]
_TABLE_X = (36, 130, 330, 440)


def _table_page(rows: list[tuple[str, str, str, str]], page: int) -> bytes:
    """A table drawn a column at a time, as some report writers do, under a running header."""
    ops = [_show(36, 770, f"WARN Report {page} Summary by Received Date", 8)]
    for col, x in enumerate(_TABLE_X):
        ops += [_show(x, 720 - 14 * row, cells[col]) for row, cells in enumerate(rows)]
    return b"\n".join(ops)


def _table_pdf(pages: int = 3) -> bytes:
    return build_pdf(streams=[_table_page(_TABLE, page + 1) for page in range(pages)])


def test_a_table_drawn_column_by_column_keeps_its_rows_as_lines():
    doc = parse_document(_table_pdf(1))
    tables = [b for b in doc.blocks if b.kind == "table"]
    assert len(tables) == 1
    lines = tables[0].text.split("\n")
    assert lines[0] == "Notice Date | Company | City | Layoff/Closure"
    assert lines[2] == "07/02/2015 | McGraw-Hill Education | Monterey | Layoff Unknown at this time"
    assert len(lines) == 7
    chunk = next(c for c in chunk_document(doc) if "Leidos" in c.text)
    assert "07/04/2015 | Leidos | El Segundo | Layoff Permanent\n" in chunk.text


def test_table_rows_segment_as_one_table_block_between_paragraphs():
    lines = ["Notices received this month.", "Date | Company", "07/01 | Leidos", "Totals follow below."]
    segments = segment_lines(lines, join=" ", infer_paragraphs=True, hints=[BODY_TEXT, TABLE_ROW, TABLE_ROW, BODY_TEXT])
    assert [(s.kind, s.text) for s in segments] == [
        ("paragraph", "Notices received this month."),
        ("table", "Date | Company\n07/01 | Leidos"),
        ("paragraph", "Totals follow below."),
    ]


def test_the_benchmark_takes_a_table_row_not_a_cell_for_a_line():
    data = _table_pdf(3)
    rows, _ = _running_lines(data, "layout")
    cells, _ = _running_lines(data, "plain")
    assert "layoff permanent" in cells  # a cell on every page, taken for a line
    assert "layoff permanent" not in rows
    assert "warn report summary by received date" in rows  # the running header still is one


def test_a_table_whose_rows_are_each_one_shown_array_keeps_its_rows():
    """TeX and many report writers draw a table row as one TJ array, its cells kept apart by
    shifts inside it: no operator starts at a cell, yet the rows are rows."""
    rows = [("Country", "Capital", "Language"), ("Austria", "Vienna", "German"), ("Belgium", "Brussels", "Dutch")]
    rows += [("Denmark", "Copenhagen", "Danish"), ("Finland", "Helsinki", "Finnish")]
    ops = [
        b"BT /F1 10 Tf 72 %d Td [" % (700 - 14 * i) + b" -9000 ".join(_pdf_string(cell) for cell in row) + b"] TJ ET"
        for i, row in enumerate(rows)
    ]
    doc = parse_document(build_pdf(streams=[b"\n".join(ops)]))
    tables = [b.text for b in doc.blocks if b.kind == "table"]
    assert tables == ["\n".join(" | ".join(row) for row in rows)]
