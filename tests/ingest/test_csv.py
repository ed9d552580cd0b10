"""CSV and TSV: told from prose by their rows, dialect sniffed, rows as table blocks with the header row
in every chunk; and the caps (rows, cells, field size) and damage."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from shared.ingest import CorruptDocument, Limits, TooLarge, chunk_document, parse_document, sniff

REALDOCS = Path(__file__).resolve().parents[3] / "shared" / "data" / "realdocs"


def table(rows: list[list[str]], **fmt: object) -> bytes:
    out = io.StringIO()
    csv.writer(out, **fmt).writerows(rows)  # type: ignore[arg-type]
    return out.getvalue().encode()


def test_comma_separated_rows_are_csv_and_render_as_a_table():
    data = table([["Name", "City", "Joined"], ["Ann Lee", "Oslo", "2021"], ["Bo, Jr.", "Rome", "2022"]])
    assert sniff(data) == "csv"
    doc = parse_document(data)
    assert doc.doc_type == "csv"
    assert [(b.kind, b.text) for b in doc.blocks] == [
        ("table", "Name | City | Joined\nAnn Lee | Oslo | 2021\nBo, Jr. | Rome | 2022")
    ]


def test_semicolons_and_quoted_newlines_are_sniffed():
    data = table(
        [["Artikel", "Preis", "Hinweis"], ["Tisch", "12,50", "zwei\nZeilen"], ["Stuhl", "8,00", ""]], delimiter=";"
    )
    doc = parse_document(data)
    assert doc.text == "Artikel | Preis | Hinweis\nTisch | 12,50 | zwei Zeilen\nStuhl | 8,00"


@pytest.mark.skipif(
    not (REALDOCS / "pairs.tsv").is_file(), reason="../shared/data/realdocs is not beside this checkout"
)
def test_the_real_tab_separated_file_is_read_as_a_table():
    data = (REALDOCS / "pairs.tsv").read_bytes()
    assert sniff(data) == "csv"
    doc = parse_document(data)
    first, *rest = doc.text.split("\n")
    assert first == "legal-docs__en-subscription_services_tos.pdf | legal-docs__en-subscription_services_tos.md"
    assert len(rest) == 2


@pytest.mark.parametrize(
    "prose",
    [
        b"Dear Ann,\nthanks for the call, as agreed.\nBest, Bo\n",
        b"The parties, each a company, agree as follows.\nPayment is due, in full, within 30 days.\n",
        b"one line, with, commas\n",
    ],
)
def test_prose_with_commas_is_still_text(prose):
    assert sniff(prose) == "text"


def test_every_chunk_of_a_long_file_repeats_the_header_row():
    rows = [["Order", "Customer", "Amount", "Status"]]
    rows += [[f"O-{n:05d}", f"Customer {n % 37}", f"{n * 3.5:.2f}", "shipped"] for n in range(500)]
    chunks = chunk_document(parse_document(table(rows)))
    assert len(chunks) > 10
    assert all(c.text.startswith("Order | Customer | Amount | Status\n") for c in chunks)
    body = "\n".join(c.text for c in chunks)
    assert all(f"O-{n:05d} |" in body for n in range(500))


def test_rows_and_cells_over_their_caps_are_refused():
    data = table([["a", "b", "c"]] + [[str(n), "x", "y"] for n in range(300)])
    with pytest.raises(TooLarge) as rows:
        parse_document(data, Limits(max_rows=200))
    assert rows.value.limit == "max_rows"
    with pytest.raises(TooLarge) as cells:
        parse_document(data, Limits(max_cells=600))
    assert cells.value.limit == "max_cells"
    text = parse_document(data, Limits(max_rows=400, max_cells=1000)).text  # the control: under the caps
    assert sum(1 for line in text.split("\n") if line.endswith(" | x | y")) == 300


def test_a_field_past_the_csv_field_limit_is_refused_as_corrupt():
    huge = "x" * (csv.field_size_limit() + 10)
    rows = "".join(f"{n:06d},222222,333333\n" for n in range(5000))  # past the sniffer's 64 KiB sample
    data = f'a,b,c\n{rows}7,"{huge}",9\n'.encode()
    assert sniff(data) == "csv"
    with pytest.raises(CorruptDocument, match="line"):
        parse_document(data)
