"""Hostile uploads against today's formats (CSV/TSV sniffing, XLSX, PPTX, OCR page counting): each test is an attack."""

from __future__ import annotations

import time

import pytest

from shared.ingest.parsers import parse_document
from shared.ingest.sniff import sniff, sniff_dialect

# csv.Sniffer's quote-guessing regexes backtrack quadratically (and worse) over runs of quotes and
# delimiters. Every text upload is sniffed for CSV, so 64 KB of these cost the indexer about a minute
# of CPU before any parse deadline was checked (measured: 22 s in sniff(), 34 s more in the parse).
_QUOTE_RUNS = [
    pytest.param((',"' * 16_000 + "\n") * 2, id="comma-quote"),
    pytest.param((", '" * 10_000 + "\n") * 2, id="comma-space-apostrophe"),
    pytest.param(('"a",' * 8_000 + "\n") * 2, id="quoted-cells"),
    pytest.param(('He said, "Hello, there," and she answered, "No." Then, "why?" ' * 20 + "\n") * 50, id="prose"),
]


@pytest.mark.parametrize("text", _QUOTE_RUNS)
def test_quote_runs_in_a_text_file_are_sniffed_in_linear_time(text):
    started = time.perf_counter()
    sniff(text.encode())
    sniff_dialect(text)
    assert time.perf_counter() - started < 1.5


@pytest.mark.parametrize("text", _QUOTE_RUNS)
def test_quote_runs_cost_the_whole_parse_little(text):
    started = time.perf_counter()
    try:
        parse_document(text.encode())
    except Exception:  # refusing the file is fine; taking a minute is not
        pass
    assert time.perf_counter() - started < 3.0


# --- XLSX: the shared-string table ----------------------------------------------------------------


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _workbook_with_shared_strings(count: int) -> bytes:
    """A two-cell workbook whose shared-string table holds ``count`` distinct strings (openpyxl loads them all)."""
    import io
    import zipfile

    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/></Types>',
        "_rels/.rels": f'<Relationships xmlns="{_REL}"><Relationship Id="rId1" Target="xl/workbook.xml"'
        f' Type="{_DOC_REL}/officeDocument"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_REL}"><sheets>'
        '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{_REL}">'
        f'<Relationship Id="rId1" Type="{_DOC_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_DOC_REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{_MAIN}"><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row>'
        "</sheetData></worksheet>",
        "xl/sharedStrings.xml": f'<sst xmlns="{_MAIN}" count="{count}" uniqueCount="{count}">'
        + "".join(f"<si><t>{i:x}</t></si>" for i in range(count))
        + "</sst>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, body in parts.items():
            package.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>' + body)
    return out.getvalue()


def test_a_shared_string_table_larger_than_the_cell_cap_is_refused():
    """The cell cap counted cells only: a 19 MB workbook of two cells and 8 million shared strings
    took 104 s and over 600 MB in openpyxl's load. A workbook cannot use more strings than it has
    cells, so the table is held to ``max_cells`` before openpyxl reads it."""
    from shared.ingest import Limits, TooLarge

    limits = Limits(max_cells=1_000)
    with pytest.raises(TooLarge) as caught:
        parse_document(_workbook_with_shared_strings(5_000), limits)
    assert caught.value.limit == "max_cells"
    readable = parse_document(_workbook_with_shared_strings(900), limits)
    assert [b.text for b in readable.blocks] == ["S", "0\n1"]


# --- PPTX: parts python-pptx parses whole ---------------------------------------------------------


def _presentation_with_slide_paragraphs(count: int) -> bytes:
    """A one-slide deck whose text box holds ``count`` short paragraphs (varied, so it deflates only ~14:1)."""
    import io
    import re
    import zipfile

    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    slide.shapes.add_textbox(Inches(1), Inches(1), Inches(5), Inches(1)).text_frame.text = "MARKER"
    saved = io.BytesIO()
    deck.save(saved)
    paragraphs = "".join(f"<a:p><a:r><a:t>w{k:x}</a:t></a:r></a:p>" for k in range(count)).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == "ppt/slides/slide1.xml":
                marker = re.compile(rb"<a:p>(?:(?!</a:p>).)*MARKER(?:(?!</a:p>).)*</a:p>", re.S)
                body = marker.sub(lambda _: paragraphs, body)
            target.writestr(info.filename, body)
    return out.getvalue()


def test_a_presentation_whose_slides_parse_into_gigabytes_is_refused_before_python_pptx_opens_it():
    """python-pptx parses every XML part into an lxml tree when it opens a deck. A 5.3 MB PPTX with one
    75 MB slide of short paragraphs (within the 200 MB inflate cap and the 100:1 ratio) raised the
    worker's peak memory by 1.24 GB before max_chars refused it; at the 200 MB cap that is over 3 GB,
    past a Consumption instance's 1.5 GB. The XML python-pptx would parse is now capped first."""
    import resource

    from shared.ingest import TooLarge

    data = _presentation_with_slide_paragraphs(1_000_000)  # a ~37 MB slide in a ~2.7 MB file
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(TooLarge) as caught:
        parse_document(data)
    assert caught.value.limit == "max_loaded_xml"
    assert time.perf_counter() - started < 3.0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 150, f"peak memory grew {grown_mib:.0f} MiB"


def test_an_ordinary_deck_is_well_under_the_loaded_xml_cap():
    data = _presentation_with_slide_paragraphs(2_000)
    assert parse_document(data).doc_type == "pptx"


def _workbook_with_cell_formats(count: int) -> bytes:
    """A two-cell workbook whose style sheet lists ``count`` cell formats (random ids, so it deflates only ~8:1)."""
    import io
    import random
    import re
    import zipfile

    import openpyxl  # type: ignore[import-untyped]

    book = openpyxl.Workbook()
    book.active.append(["header"])
    book.active.append(["value"])
    saved = io.BytesIO()
    book.save(saved)
    pick = random.Random(7).randrange
    formats = "".join(
        f'<xf numFmtId="{pick(200)}" fontId="{pick(99)}" fillId="{pick(99)}" borderId="{pick(99)}" xfId="0"/>'
        for _ in range(count)
    ).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == "xl/styles.xml":
                body = re.sub(
                    rb'<cellXfs count="\d+">', lambda _: b'<cellXfs count="%d">' % (count + 1) + formats, body
                )
            target.writestr(info.filename, body)
    return out.getvalue()


def test_a_workbook_whose_style_sheet_parses_into_gigabytes_is_refused_before_openpyxl_opens_it():
    """openpyxl streams worksheets in read-only mode but builds the whole style sheet as objects: a 3.7 MB
    workbook with 500,000 cell formats (a 31 MB styles.xml) took 10.8 s and raised peak memory by 820 MB,
    and was indexed; at the 200 MB inflate cap that is over 5 GB. Excel itself allows about 64,000 formats."""
    import resource

    from shared.ingest import TooLarge

    data = _workbook_with_cell_formats(250_000)  # a ~15 MB styles.xml
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(TooLarge) as caught:
        parse_document(data)
    assert caught.value.limit == "xlsx_max_loaded_xml"
    assert time.perf_counter() - started < 3.0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 150, f"peak memory grew {grown_mib:.0f} MiB"
    # Excel's own ceiling of cell formats is still read.
    assert [b.text for b in parse_document(_workbook_with_cell_formats(64_000)).blocks] == ["Sheet", "header\nvalue"]


def test_a_workbook_part_named_like_a_worksheet_is_still_capped():
    """The workbook part's name comes from [Content_Types].xml, so a bloated workbook part moved under
    xl/worksheets/ (a decoy left at xl/workbook.xml) must not pass as a streamed worksheet."""
    import io
    import zipfile

    from shared.ingest import Limits, TooLarge

    data = _workbook_with_shared_strings(2)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            name = info.filename
            if name == "xl/workbook.xml":  # left as a decoy (the type sniffer looks for it), and moved
                target.writestr(name, body)
                name, body = (
                    "xl/worksheets/book.xml",
                    body.replace(b"<sheets>", b"<!-- " + b"x" * 20_000 + b" --><sheets>"),
                )
            elif name in ("[Content_Types].xml", "_rels/.rels"):
                body = body.replace(b"/xl/workbook.xml", b"/xl/worksheets/book.xml").replace(
                    b'"xl/workbook.xml"', b'"xl/worksheets/book.xml"'
                )
            elif name == "xl/_rels/workbook.xml.rels":
                name = "xl/worksheets/_rels/book.xml.rels"
                body = body.replace(b'Target="worksheets/sheet1.xml"', b'Target="sheet1.xml"').replace(
                    b'Target="sharedStrings.xml"', b'Target="../sharedStrings.xml"'
                )
            target.writestr(name, body)
    moved = out.getvalue()
    roomy = parse_document(moved, Limits())
    assert [b.text for b in roomy.blocks] == ["S", "0\n1"]  # openpyxl really reads the moved workbook
    with pytest.raises(TooLarge) as caught:
        parse_document(moved, Limits(xlsx_max_loaded_xml=16_000))
    assert caught.value.limit == "xlsx_max_loaded_xml"


# --- OCR: page counting before anything is sent --------------------------------------------------


def _tiff(frames: int, *, loop: bool = False) -> bytes:
    """A little-endian TIFF whose chain of image directories has ``frames`` entries (each with no tags);
    with ``loop``, the last one points back to the first."""
    import struct

    header = b"II*\x00" + struct.pack("<I", 8)
    body = b""
    for index in range(frames):
        offset = 8 + 6 * index
        following = offset + 6 if index < frames - 1 else (8 if loop else 0)
        body += struct.pack("<HI", 0, following)
    return header + body


class _RefusingAnalyzer:
    """Document Intelligence that must not be called: anything sent would be paid for."""

    def __init__(self) -> None:
        self.calls: list[str | None] = []

    def analyze(self, data: bytes, *, pages: str | None = None) -> dict[str, object]:
        self.calls.append(pages)
        return {"paragraphs": [{"content": "page text", "spans": [{"offset": 0, "length": 9}]}], "pages": [{}]}


def test_a_tiff_of_ten_thousand_frames_is_refused_before_the_service_is_paid() -> None:
    from shared.ingest import Limits, TooLarge
    from shared.ingest.parsers.docintel import OcrRoute, count_pages

    admitted: list[int] = []
    analyzer = _RefusingAnalyzer()
    route = OcrRoute(analyzer=analyzer, max_pages=2_000, admit=admitted.append)
    data = _tiff(10_000)
    assert count_pages(data, "image", Limits()) == 10_000
    with pytest.raises(TooLarge) as caught:
        parse_document(data, Limits(), ocr=route)
    assert caught.value.limit == "document_intelligence_max_pages"
    assert analyzer.calls == [] and admitted == []
    # A directory chain that loops is counted once round, and the range sent caps what is analysed.
    looped = _tiff(3, loop=True)
    assert count_pages(looped, "image", Limits()) == 3
    parse_document(looped, Limits(), ocr=route)
    assert analyzer.calls == ["1-3"] and admitted == [3]
