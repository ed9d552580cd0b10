"""XLSX: sheets as headings, rows as table blocks with the header row in every chunk, cached formula
values; and the guards (ZIP bomb, rows, cells, XML entities, damage)."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl  # type: ignore[import-untyped]
import pytest

from shared.ingest import CorruptDocument, Limits, TooLarge, UnsupportedType, chunk_document, parse_document, sniff

from .fixtures import _raw_zip, rewrite_member


def workbook(sheets: dict[str, list[list[object]]], *, hidden: tuple[str, ...] = (), title: str | None = None) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        if name in hidden:
            sheet.sheet_state = "hidden"
    if title:
        book.properties.title = title
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_workbook_is_sniffed_and_each_sheet_is_a_heading_over_its_rows():
    data = workbook(
        {
            "Prices": [["Item", "Price", "Since"], ["Widget", 9.5, dt.datetime(2024, 3, 1)], ["Gadget", 12, None]],
            "Notes": [["Remark"], ["Prices exclude VAT."]],
        },
        title="Price list 2024",
    )
    assert sniff(data) == "xlsx"
    doc = parse_document(data)
    assert doc.doc_type == "xlsx" and doc.title == "Price list 2024"
    assert [(b.kind, b.text) for b in doc.blocks] == [
        ("heading", "Prices"),
        ("table", "Item | Price | Since\nWidget | 9.5 | 2024-03-01\nGadget | 12"),
        ("heading", "Notes"),
        ("table", "Remark\nPrices exclude VAT."),
    ]
    chunks = chunk_document(doc)
    assert [c.heading_path for c in chunks] == [["Prices"], ["Notes"]]


def test_every_chunk_of_a_long_sheet_repeats_the_header_row():
    rows = [["Case number", "Court", "Decided", "Outcome"]]
    rows += [[f"C-{n:04d}", "Court of Appeal", f"2023-{1 + n % 12:02d}-01", "dismissed"] for n in range(400)]
    chunks = chunk_document(parse_document(workbook({"Cases": rows})))
    assert len(chunks) > 10
    for chunk in chunks:
        assert chunk.heading_path == ["Cases"]
        # The first chunk opens with the sheet's heading; every chunk's rows open with the header row.
        assert chunk.text.removeprefix("Cases\n\n").startswith("Case number | Court | Decided | Outcome\n")
    body = "\n".join(chunk.text for chunk in chunks)
    assert all(f"C-{n:04d} |" in body for n in range(400))  # no row lost between chunks


def test_formulas_are_indexed_as_the_values_excel_calculated():
    data = workbook({"Totals": [["Qty", "Unit", "Total"], [6, 7, "=A2*B2"]]})
    data = rewrite_member(
        data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"<f>A2*B2</f><v></v>", b"<f>A2*B2</f><v>42</v>")
    )
    doc = parse_document(data)
    assert "6 | 7 | 42" in doc.text
    assert "A2*B2" not in doc.text


def test_hidden_sheets_and_empty_rows_are_left_out():
    data = workbook({"Visible": [["Name"], [], ["Ann"]], "Secret": [["Password"], ["hunter2"]]}, hidden=("Secret",))
    doc = parse_document(data)
    assert doc.text == "Visible\n\nName\nAnn"


def test_a_workbook_with_no_visible_content_is_empty():
    from shared.ingest import EmptyDocument

    with pytest.raises(EmptyDocument, match="visible sheet"):
        parse_document(workbook({"Empty": []}))


def test_rows_over_the_cap_are_refused():
    data = workbook({"Log": [["n"]] + [[n] for n in range(120)]})
    with pytest.raises(TooLarge) as caught:
        parse_document(data, Limits(max_rows=100))
    assert caught.value.limit == "max_rows"
    parse_document(data, Limits(max_rows=200))  # the control: under the cap it reads


def test_a_value_far_to_the_right_counts_every_cell_of_the_row():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A1"], sheet["A2"] = "Header", "value"
    sheet["XFD2"] = "far away"  # column 16,384: read-only mode yields every cell up to it
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(TooLarge) as caught:
        parse_document(out.getvalue(), Limits(max_cells=10_000))
    assert caught.value.limit == "max_cells"


def office_bomb(main_part: str, bombed_part: str, inflated: int = 64 * 1024 * 1024) -> bytes:
    """An Office-shaped ZIP whose ``bombed_part`` is ``inflated`` zero bytes (about 1000:1)."""
    import zlib

    from .fixtures import CONTENT_TYPES

    chunk = b"\0" * (1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = b"".join(compressor.compress(chunk) for _ in range(inflated // len(chunk))) + compressor.flush()
    crc = 0
    for _ in range(inflated // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return _raw_zip(
        [
            ("[Content_Types].xml", CONTENT_TYPES, None),
            (main_part, b"<main/>", None),
            (bombed_part, deflated, (inflated, crc)),
        ]
    )


def test_a_zip_bomb_sheet_is_refused_before_openpyxl_reads_it():
    bomb = office_bomb("xl/workbook.xml", "xl/worksheets/sheet1.xml")
    assert sniff(bomb) == "xlsx"
    with pytest.raises(TooLarge) as caught:
        parse_document(bomb)
    assert caught.value.limit == "zip_max_ratio"


def test_entity_declarations_in_a_sheet_are_refused():
    from shared.ingest.limits import DEFAULT_LIMITS, check_zip, verify_zip_members

    laughs = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    data = workbook({"S": [["a"], ["b"]]})
    data = rewrite_member(
        data, "xl/worksheets/sheet1.xml", lambda xml: laughs + xml.replace(b"<t>b</t>", b"<t>&lol2;</t>")
    )
    # The plain ZIP guard (sizes and ratios only) lets this through; the Office guard does not.
    verify_zip_members(check_zip(data, DEFAULT_LIMITS), DEFAULT_LIMITS, DEFAULT_LIMITS.deadline())
    with pytest.raises(UnsupportedType, match="XML entities"):
        parse_document(data)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: rewrite_member(data, "xl/workbook.xml", lambda xml: xml[: len(xml) // 2]),  # not well-formed
        lambda data: rewrite_member(data, "xl/worksheets/sheet1.xml", lambda xml: b"<worksheet><sheetData><row>"),
        lambda data: data[: len(data) - 300],  # the archive's directory cut off
    ],
)
def test_a_damaged_workbook_is_corrupt(damage):
    data = damage(workbook({"S": [["a", "b"], ["1", "2"]]}))
    with pytest.raises(CorruptDocument):
        parse_document(data)


def test_a_sheet_claiming_the_whole_grid_is_refused_quickly():
    """A dimension of A1:XFD1048576 and a value in the last row: openpyxl would yield a million rows of
    16,384 empty cells; the cell cap stops it after a few hundred."""
    import re
    import time

    def claim_everything(xml: bytes) -> bytes:
        xml = re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', xml)
        last = b'<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row>'
        return xml.replace(b"</sheetData>", last + b"</sheetData>")

    data = rewrite_member(workbook({"S": [["h"], ["v"]]}), "xl/worksheets/sheet1.xml", claim_everything)
    started = time.monotonic()
    with pytest.raises(TooLarge) as caught:
        parse_document(data)
    assert caught.value.limit == "max_cells"
    assert time.monotonic() - started < 5
