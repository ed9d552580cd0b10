"""Word's automatic numbering and clause headings, with numbering parts written the way Word writes them."""

from __future__ import annotations

import io

import docx
from docx.oxml import parse_xml

from shared.ingest import chunk_document, parse_document

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _numbered_contract(*, second_list_restarts: bool) -> bytes:
    """Heading 1 and 2 numbered "%1." / "%1.%2" through their styles, clauses as list paragraphs."""
    document = docx.Document()
    numbering = document.part.numbering_part.element
    numbering.append(
        parse_xml(
            f"<w:abstractNum {_W} w:abstractNumId='7'>"
            "<w:lvl w:ilvl='0'><w:start w:val='1'/><w:numFmt w:val='decimal'/><w:lvlText w:val='%1.'/></w:lvl>"
            "<w:lvl w:ilvl='1'><w:start w:val='1'/><w:numFmt w:val='decimal'/><w:lvlText w:val='%1.%2'/></w:lvl>"
            "<w:lvl w:ilvl='2'><w:start w:val='1'/><w:numFmt w:val='lowerLetter'/><w:lvlText w:val='(%3)'/></w:lvl>"
            "</w:abstractNum>"
        )
    )
    numbering.append(parse_xml(f"<w:num {_W} w:numId='41'><w:abstractNumId w:val='7'/></w:num>"))
    override = "<w:lvlOverride w:ilvl='0'><w:startOverride w:val='1'/></w:lvlOverride>" if second_list_restarts else ""
    numbering.append(parse_xml(f"<w:num {_W} w:numId='42'><w:abstractNumId w:val='7'/>{override}</w:num>"))

    def numbered(text: str, num_id: int, level: int) -> None:
        paragraph = document.add_paragraph(text)
        paragraph._p.get_or_add_pPr().append(
            parse_xml(f"<w:numPr {_W}><w:ilvl w:val='{level}'/><w:numId w:val='{num_id}'/></w:numPr>")
        )

    document.add_heading("Data Processing Agreement", level=0)
    numbered("Definitions", 41, 0)
    numbered("Personal Data means any information relating to a person.", 41, 1)
    numbered("Processing", 41, 0)
    numbered("Provider will process data only on instructions.", 41, 1)
    numbered("Instructions. Customer instructs Provider as follows:", 41, 1)
    numbered("to provide the Service;", 41, 2)
    numbered("to comply with Section 2.2(b) of this DPA.", 41, 2)
    numbered("Audit", 42, 0)
    numbered("Customer may audit once a year.", 42, 1)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_word_numbering_is_drawn_into_the_text_as_word_shows_it():
    doc = parse_document(_numbered_contract(second_list_restarts=False))
    texts = [b.text for b in doc.blocks]
    assert texts[1:] == [
        "1. Definitions",
        "1.1 Personal Data means any information relating to a person.",
        "2. Processing",
        "2.1 Provider will process data only on instructions.",
        "2.2 Instructions. Customer instructs Provider as follows:",
        "(a) to provide the Service;",
        "(b) to comply with Section 2.2(b) of this DPA.",
        "3. Audit",  # another instance of the same list continues its count
        "3.1 Customer may audit once a year.",
    ]


def test_a_start_override_restarts_the_list_where_its_instance_begins():
    doc = parse_document(_numbered_contract(second_list_restarts=True))
    assert [b.text for b in doc.blocks][-2:] == ["1. Audit", "1.1 Customer may audit once a year."]


def test_numbered_clauses_become_sections_a_citation_can_find():
    chunks = chunk_document(parse_document(_numbered_contract(second_list_restarts=False)), max_tokens=64)
    paths = {tuple(c.heading_path) for c in chunks}
    assert any(path[-1].startswith("2.2") for path in paths), paths
    cited = next(c for c in chunks if "Section 2.2(b)" in c.text)
    assert cited.heading_path[-1].startswith("2.2")


def _clauses_styled_as_headings() -> bytes:
    """The Common Paper pattern: every clause is a Heading 2 paragraph holding title and body."""
    document = docx.Document()
    document.add_heading("Service", level=1)
    document.add_heading("Access and Use.  During the Subscription Period, Customer may access the Product.", 2)
    document.add_heading("Support.  Provider will provide Technical Support as described.", 2)
    document.add_heading("Definitions", level=1)
    document.add_heading("“Affiliate” means an entity that controls a party.", 2)
    document.add_heading("“User” means any individual who uses the Product.", 2)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_a_clause_styled_as_a_heading_keeps_its_run_in_title_as_the_heading():
    doc = parse_document(_clauses_styled_as_headings())
    assert [(b.kind, b.text) for b in doc.blocks] == [
        ("heading", "Service"),
        ("heading", "Access and Use."),
        ("paragraph", "During the Subscription Period, Customer may access the Product."),
        ("heading", "Support."),
        ("paragraph", "Provider will provide Technical Support as described."),
        ("heading", "Definitions"),
        ("paragraph", "“Affiliate” means an entity that controls a party."),
        ("paragraph", "“User” means any individual who uses the Product."),
    ]
    chunks = chunk_document(doc)
    access = next(c for c in chunks if "Subscription Period" in c.text)
    assert access.heading_path == ["Service", "Access and Use"]
    assert all(not any("means" in entry for entry in c.heading_path) for c in chunks)


def test_table_cell_paragraphs_stay_apart():
    document = docx.Document()
    cell = document.add_table(rows=1, cols=2).cell(0, 0)
    cell.text = "Purpose"
    cell.add_paragraph("How Confidential Information may be used")
    buffer = io.BytesIO()
    document.save(buffer)
    doc = parse_document(buffer.getvalue())
    assert doc.blocks[0].text.startswith("Purpose How Confidential Information may be used")


def test_a_question_styled_as_a_heading_stays_a_heading():
    document = docx.Document()
    document.add_heading("How do I cancel my subscription?", level=2)
    document.add_paragraph("Open the account page and choose Cancel.")
    buffer = io.BytesIO()
    document.save(buffer)
    doc = parse_document(buffer.getvalue())
    assert (doc.blocks[0].kind, doc.blocks[0].text) == ("heading", "How do I cancel my subscription?")


def test_a_huge_start_value_draws_a_number_not_megabytes_of_letters():
    from shared.ingest.parsers.docx_numbering import _format

    assert _format(27, "lowerLetter") == "aa"
    assert _format(10**9, "lowerLetter") == str(10**9)
    assert _format(4, "upperRoman") == "IV"
