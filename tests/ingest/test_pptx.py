"""PPTX: slide titles as headings (the slide number is the page), text frames, tables, speaker notes;
and the guards (ZIP bomb, XML entities, table cells, damage)."""

from __future__ import annotations

import io

import pptx
import pytest
from pptx.util import Inches

from shared.ingest import CorruptDocument, Limits, TooLarge, UnsupportedType, chunk_document, parse_document, sniff

from .fixtures import rewrite_member


def presentation(*, hidden_second: bool = False) -> bytes:
    deck = pptx.Presentation()
    deck.core_properties.title = "Quarterly review"
    first = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    first.shapes.title.text = "Revenue grew"
    body = first.placeholders[1].text_frame
    body.text = "Revenue rose 12% year on year."
    body.add_paragraph().text = "Churn fell to 3%."
    first.notes_slide.notes_text_frame.text = "Mention the new enterprise customers."
    second = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    second.shapes.title.text = "Regional figures"
    table = second.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for row, values in enumerate([("Region", "Revenue"), ("EMEA", "4.1m"), ("Americas", "6.3m")]):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    if hidden_second:
        second.element.set("show", "0")
    third = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title
    box = third.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(1))
    box.text_frame.text = "Questions welcome."
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def test_slides_become_headed_sections_with_their_slide_as_the_page():
    data = presentation()
    assert sniff(data) == "pptx"
    doc = parse_document(data)
    assert doc.doc_type == "pptx" and doc.title == "Quarterly review" and doc.pages == 3
    assert [(b.kind, b.text, b.page) for b in doc.blocks] == [
        ("heading", "Revenue grew", 1),
        ("list_item", "Revenue rose 12% year on year.", 1),
        ("list_item", "Churn fell to 3%.", 1),
        ("paragraph", "Mention the new enterprise customers.", 1),
        ("heading", "Regional figures", 2),
        ("table", "Region | Revenue\nEMEA | 4.1m\nAmericas | 6.3m", 2),
        ("heading", "Slide 3", 3),
        ("paragraph", "Questions welcome.", 3),
    ]
    chunks = chunk_document(doc)
    assert [(c.heading_path, c.page_start, c.page_end) for c in chunks] == [
        (["Revenue grew"], 1, 1),
        (["Regional figures"], 2, 2),
        (["Slide 3"], 3, 3),
    ]


def test_hidden_slides_are_not_indexed():
    doc = parse_document(presentation(hidden_second=True))
    assert "Regional figures" not in doc.text and "EMEA" not in doc.text
    assert doc.pages == 3  # still three slides in the file


def test_table_cells_count_against_the_cell_cap():
    with pytest.raises(TooLarge) as caught:
        parse_document(presentation(), Limits(max_cells=4))
    assert caught.value.limit == "max_cells"


def test_entity_declarations_in_a_slide_are_refused():
    laughs = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    data = rewrite_member(presentation(), "ppt/slides/slide1.xml", lambda xml: laughs + xml.split(b"?>", 1)[1])
    with pytest.raises(UnsupportedType, match="XML entities"):
        parse_document(data)


def test_a_zip_bomb_presentation_is_refused():
    from .test_xlsx import office_bomb

    bomb = office_bomb("ppt/presentation.xml", "ppt/slides/slide1.xml")
    assert sniff(bomb) == "pptx"
    with pytest.raises(TooLarge) as caught:
        parse_document(bomb)
    assert caught.value.limit == "zip_max_ratio"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: rewrite_member(data, "ppt/slides/slide1.xml", lambda xml: xml[: len(xml) // 2]),
        lambda data: rewrite_member(data, "ppt/presentation.xml", lambda xml: b"<p:presentation"),
        lambda data: data[: len(data) - 300],
    ],
)
def test_a_damaged_presentation_is_corrupt(damage):
    with pytest.raises(CorruptDocument):
        parse_document(damage(presentation()))
