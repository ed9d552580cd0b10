"""Text layers that are not words are refused; a broken page tree is read from the page objects."""

from __future__ import annotations

import pytest

from shared.ingest import UnreadableText, parse_document

from .fixtures import build_pdf

_GLYPHS = "/g18/g152/g3/g44/g87/g3/g90/g4/g17/g3/g24/g68/g79/g72/g3/g87/g72/g85/g80/g86"
_PROSE = "The supplier delivers the goods within thirty days of the order and invoices them monthly."


def test_a_text_layer_of_glyph_names_is_refused_as_unreadable():
    with pytest.raises(UnreadableText) as caught:
        parse_document(build_pdf([[_GLYPHS] * 12 for _ in range(3)]))
    assert "the text layer is unreadable (OCR is not supported)" in caught.value.detail


def test_letters_spaced_out_one_by_one_are_refused_as_unreadable():
    spaced = " ".join("Thesupplierdeliversthegoodswithinthirtydays")
    with pytest.raises(UnreadableText):
        parse_document(build_pdf([[spaced] * 4]))


def test_one_page_of_glyph_names_is_left_out_and_the_rest_is_indexed():
    doc = parse_document(build_pdf([[_PROSE] * 8, [_GLYPHS] * 3, [_PROSE] * 8]))
    assert "/g18" not in doc.text
    assert [b.page for b in doc.blocks if "supplier" in b.text] == [1, 3]


def test_an_xfa_form_placeholder_is_refused_not_indexed():
    notice = [
        "Please wait...",
        "If this message is not eventually replaced by the proper contents of the document, your PDF",
        "viewer may not be able to display this type of document.",
    ]
    data = build_pdf([notice], catalog_extra=b"/AcroForm << /Fields [] /XFA [(template) 1 0 R] >> ")
    with pytest.raises(UnreadableText) as caught:
        parse_document(data)
    assert "XFA form" in caught.value.detail


def test_a_pdf_whose_page_tree_is_missing_is_read_from_its_page_objects():
    data = build_pdf([["First page of the datasheet."], ["Second page of the datasheet."]])
    # Point the catalog at an object that does not exist, as in files other readers still open.
    broken = data.replace(b"/Type /Catalog /Pages 3 0 R", b"/Type /Catalog /Pages 99 0 R")
    assert broken != data
    doc = parse_document(broken)
    assert doc.pages == 2
    assert [b.text for b in doc.blocks] == ["First page of the datasheet.", "Second page of the datasheet."]


def test_paths_and_urls_are_not_taken_for_glyph_names():
    lines = ["Call GET /api/users/{id} or /static/app/main.js from the web app at /home/ann/docs."] * 10
    doc = parse_document(build_pdf([lines]))
    assert "/api/users" in doc.text
