"""DOCX parsing with documents made by python-docx in the test."""

from __future__ import annotations

import dataclasses
import io
import os

import docx
import pytest
from docx.enum.style import WD_STYLE_TYPE

from shared.ingest import (
    CorruptDocument,
    EmptyDocument,
    TooLarge,
    UnsupportedType,
    chunk_document,
    parse_document,
)
from shared.ingest.limits import DEFAULT_LIMITS, MiB

from .fixtures import docx_shaped_zip, rewrite_member


def save(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def agreement(page_breaks: bool = True) -> bytes:
    document = docx.Document()
    document.add_paragraph("Supply Agreement", style="Title")
    document.add_heading("Article 1 Definitions", level=1)
    document.add_paragraph("Section 1.1 Terms. The terms below apply to this Agreement.")
    document.add_paragraph("first bullet", style="List Bullet")
    document.add_paragraph("second numbered", style="List Number")
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "Item", (0, 1): "Fee", (1, 0): "Support", (1, 1): "100 EUR"}.items():
        table.cell(row, col).text = text
    if page_breaks:
        document.add_page_break()
    document.add_heading("Article 2 Term", level=1)
    document.add_heading("Renewal", level=2)
    document.add_paragraph("It renews every year unless cancelled.")
    return save(document)


def test_docx_styles_become_headings_lists_and_tables():
    doc = parse_document(agreement())
    assert doc.doc_type == "docx"
    assert [(b.kind, b.text, b.level) for b in doc.blocks] == [
        ("heading", "Supply Agreement", 1),
        ("heading", "Article 1 Definitions", 1),
        ("paragraph", "Section 1.1 Terms. The terms below apply to this Agreement.", None),
        ("list_item", "first bullet", None),
        ("list_item", "1. second numbered", None),  # Word draws the number; so does the text
        ("table", "Item | Fee\nSupport | 100 EUR", None),
        ("heading", "Article 2 Term", 1),
        ("heading", "Renewal", 2),
        ("paragraph", "It renews every year unless cancelled.", None),
    ]
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text


def test_docx_title_prefers_core_properties_then_title_style():
    assert parse_document(agreement()).title == "Supply Agreement"
    document = docx.Document(io.BytesIO(agreement()))
    document.core_properties.title = "Framework Supply Agreement"
    assert parse_document(save(document)).title == "Framework Supply Agreement"


def test_docx_reports_no_page_numbers_even_with_page_breaks():
    # Pages come from Word's layout, which the file does not hold: a break gives a lower bound
    # at most, and a guessed page must not be cited as if it were real.
    doc = parse_document(agreement())
    assert doc.pages is None
    assert {b.page for b in doc.blocks} == {None}


def test_docx_without_page_breaks_has_no_page_numbers():
    doc = parse_document(agreement(page_breaks=False))
    assert doc.pages is None
    assert {b.page for b in doc.blocks} == {None}


def test_docx_chunks_follow_styled_heading_paths():
    chunks = chunk_document(parse_document(agreement()))
    paths = [c.heading_path for c in chunks]
    assert ["Article 1 Definitions", "Section 1.1 Terms"] in paths
    assert ["Article 2 Term", "Renewal"] in paths
    assert chunks[-1].page_start is None and chunks[-1].page_end is None


def test_docx_custom_style_based_on_a_heading_is_a_heading():
    document = docx.Document()
    style = document.styles.add_style("Clause Heading", WD_STYLE_TYPE.PARAGRAPH)
    style.base_style = document.styles["Heading 2"]
    document.add_paragraph("Payment", style="Clause Heading")
    document.add_paragraph("Pay within 30 days.")
    doc = parse_document(save(document))
    assert (doc.blocks[0].kind, doc.blocks[0].level) == ("heading", 2)


def test_docx_with_no_text_is_empty():
    with pytest.raises(EmptyDocument):
        parse_document(save(docx.Document()))


def test_docx_shaped_zip_missing_its_relationships_is_corrupt():
    data = docx_shaped_zip({"word/document.xml": b"<w:document/>"})
    with pytest.raises(CorruptDocument, match="Word document is damaged"):
        parse_document(data)


def test_docx_with_broken_xml_is_corrupt():
    data = rewrite_member(agreement(), "word/document.xml", lambda xml: xml[: len(xml) // 2])
    with pytest.raises(CorruptDocument, match="damaged"):
        parse_document(data)


def test_macro_enabled_word_document_is_unsupported():
    main = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    macro = b"application/vnd.ms-word.document.macroEnabled.main+xml"

    def declare_macros(types: bytes) -> bytes:
        assert main in types
        return types.replace(main, macro)

    data = rewrite_member(agreement(), "[Content_Types].xml", declare_macros)
    with pytest.raises(UnsupportedType, match="not a Word document"):
        parse_document(data)


def test_docx_whose_xml_python_docx_would_load_whole_is_refused_before_it_opens():
    """python-docx parses document.xml into one tree (about 14 bytes of memory per byte of XML): a
    few MB of compressed paragraphs would cost gigabytes before the character cap could stop them."""
    # Varied text, so the file stays under the ZIP ratio cap as a real long document would.
    paragraphs = b"".join(b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>" % os.urandom(24).hex().encode() for _ in range(20_000))
    padded = rewrite_member(
        agreement(), "word/document.xml", lambda xml: xml.replace(b"</w:body>", paragraphs + b"</w:body>")
    )
    limits = dataclasses.replace(DEFAULT_LIMITS, max_loaded_xml=1 * MiB)
    with pytest.raises(TooLarge, match="max_loaded_xml") as refused:
        parse_document(padded, limits)
    assert refused.value.limit == "max_loaded_xml"
    assert parse_document(agreement(), limits).title == "Supply Agreement"  # an ordinary document still reads


def test_docx_declaring_xml_entities_is_refused():
    bomb = b'<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    data = rewrite_member(agreement(), "word/document.xml", lambda xml: xml.replace(b"?>", b"?>" + bomb, 1))
    with pytest.raises(UnsupportedType, match="declares XML entities"):
        parse_document(data)
