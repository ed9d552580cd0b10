"""PDF parsing from hand-built PDFs: pages, headings, running heads, caps, damage."""

from __future__ import annotations

import pytest

from shared.ingest import (
    CorruptDocument,
    EmptyDocument,
    Limits,
    ParseTimeout,
    TooLarge,
    UnsupportedType,
    chunk_document,
    parse_document,
)

from .fixtures import build_pdf, page_stream


def contract_pages(count: int) -> list[list[str]]:
    """Pages of a contract with a running header and a page-number footer."""
    pages = []
    for number in range(1, count + 1):
        lines = ["ACME CONFIDENTIAL", f"Section {number}.1 Topic {number}. The parties agree."]
        lines += [f"Sentence {i} on page {number} explains the obligations in some detail." for i in range(1, 9)]
        lines.append(f"Page {number} of {count}")
        pages.append(lines)
    return pages


def test_pdf_blocks_carry_one_based_page_numbers():
    doc = parse_document(build_pdf([["First page text."], ["Second page text."]]))
    assert doc.doc_type == "pdf" and doc.pages == 2
    assert [(b.text, b.page) for b in doc.blocks] == [
        ("First page text.", 1),
        ("Second page text.", 2),
    ]


def test_pdf_offsets_index_the_extracted_text():
    doc = parse_document(build_pdf(contract_pages(3)))
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text


def test_pdf_running_headers_and_page_numbers_are_removed():
    doc = parse_document(build_pdf(contract_pages(4)))
    assert "ACME CONFIDENTIAL" not in doc.text
    assert "Page 2 of 4" not in doc.text
    assert "Section 2.1 Topic 2" in doc.text


def test_pdf_wrapped_lines_join_and_hyphenation_is_undone():
    lines = [
        "The supplier shall deliver the goods to the customer at the agreed place and",
        "time, and the customer shall pay the agreed price for them with- ",
        "out delay.",
    ]
    doc = parse_document(build_pdf([lines]))
    assert doc.blocks[0].text.endswith("for them without delay.")
    assert "\n" not in doc.blocks[0].text


def test_pdf_numbered_headings_are_detected():
    doc = parse_document(
        build_pdf([["ARTICLE 12", "LIMITATION OF LIABILITY", "Section 12.1 Cap. Liability is capped."]])
    )
    assert [(b.kind, b.text, b.level) for b in doc.blocks] == [
        ("heading", "ARTICLE 12 LIMITATION OF LIABILITY", 3),
        ("paragraph", "Section 12.1 Cap. Liability is capped.", None),
    ]


def test_pdf_title_comes_from_metadata():
    doc = parse_document(build_pdf([["Body."]], title="Supply Contract"))
    assert doc.title == "Supply Contract"


def test_multi_page_pdf_chunks_report_the_pages_they_span():
    doc = parse_document(build_pdf(contract_pages(6)))
    chunks = chunk_document(doc, max_tokens=64, overlap_tokens=8)
    assert chunks
    for chunk in chunks:
        covered = {b.page for b in doc.blocks if b.start < chunk.char_end and b.end > chunk.char_start}
        assert (chunk.page_start, chunk.page_end) == (min(covered), max(covered))
    sections = {c.heading_path[-1]: c.page_start for c in chunks}
    assert sections["Section 3.1 Topic 3"] == 3
    assert sections["Section 6.1 Topic 6"] == 6


def test_pdf_over_the_page_cap_is_rejected():
    with pytest.raises(TooLarge) as caught:
        parse_document(build_pdf([["x"]] * 3), Limits(max_pages=2))
    assert caught.value.limit == "max_pages"
    assert "3 pages" in str(caught.value) and "max_pages" in str(caught.value)


def test_page_whose_text_explodes_stops_the_parse_mid_page():
    # One compressed page whose content stream shows 2,000,000 characters.
    stream = page_stream(["A" * 100] * 20_000)
    with pytest.raises(TooLarge) as caught:
        parse_document(build_pdf(streams=[stream], compress=True), Limits(max_chars=100_000))
    assert caught.value.limit == "max_chars"


def test_pdf_stream_decompression_bomb_is_capped():
    stream = page_stream(["hello"]) + b" " * (3 * 1024 * 1024)  # ~3 MiB inflated, ~3 KiB packed
    with pytest.raises(TooLarge) as caught:
        parse_document(build_pdf(streams=[stream], compress=True), Limits(pdf_max_stream_bytes=1024 * 1024))
    assert caught.value.limit == "pdf_max_stream_bytes"
    assert "decompression bomb" in str(caught.value)


def test_pdf_deadline_is_checked_between_pages():
    with pytest.raises(ParseTimeout, match="page 1"):
        parse_document(build_pdf([["x"]] * 3), Limits(max_seconds=-1))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda pdf: pdf[: len(pdf) // 2], id="truncated"),
        pytest.param(lambda pdf: pdf[:9] + b"\x13\x37garbage" * 200, id="garbage-after-header"),
        pytest.param(lambda pdf: b"%PDF-1.7\n", id="header-only"),
    ],
)
def test_corrupt_pdf_is_rejected_as_corrupt(data):
    with pytest.raises(CorruptDocument, match="damaged or malformed"):
        parse_document(data(build_pdf(contract_pages(2))))


def test_pdf_without_text_suggests_it_is_a_scan():
    with pytest.raises(EmptyDocument, match="scanned image"):
        parse_document(build_pdf(streams=[b"0 0 m 100 100 l S"]))


def test_parsing_pdf_imports_pypdf_lazily():
    import sys

    parse_document(build_pdf([["x"]]))
    assert "pypdf" in sys.modules  # loaded now, on demand (the cold-start test covers before)


def encrypted(pdf: bytes, user_password: str) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_password_protected_pdf_is_unsupported_with_advice():
    with pytest.raises(UnsupportedType, match="password-protected"):
        parse_document(encrypted(build_pdf([["Secret terms."]]), user_password="secret"))


def test_pdf_locked_only_against_editing_still_opens():
    doc = parse_document(encrypted(build_pdf([["Open terms."]]), user_password=""))
    assert doc.text == "Open terms."
