"""PDF structure from typography, running heads whose digits change, page numbers, pypdf's log noise."""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.ingest import chunk_document, parse_document

from .fixtures import build_pdf, page_stream, typeset_stream

BODY = 11.0
_PROSE = [
    "Mozilla offers these services to people who want to protect their privacy when they go",
    "online, and these terms explain what you and Mozilla agree to when you subscribe to one.",
]


def _terms_of_service() -> bytes:
    page = [
        ("Subscription Services", 22, True),
        ("Terms of Service", 22, True),
        *[(line, BODY, False) for line in _PROSE],
        ("Subscribing to Services", 16, True),
        ("Your Privacy", BODY, True),
        *[(line, BODY, False) for line in _PROSE],
        ("1 Preliminary Accident Investigation Report", 7, False),
        ("Your Payment", BODY, True),
        *[(line, BODY, False) for line in _PROSE],
    ]
    return build_pdf(streams=[typeset_stream(page)])


def test_pdf_headings_come_from_type_size_and_weight():
    doc = parse_document(_terms_of_service())
    headings = [(b.text, b.level) for b in doc.blocks if b.kind == "heading"]
    assert headings == [
        ("Subscription Services Terms of Service", 1),  # two lines of one heading
        ("Subscribing to Services", 2),
        ("Your Privacy", 3),
        ("Your Payment", 3),
    ]
    chunks = chunk_document(doc)
    payment = next(c for c in chunks if c.heading_path[-1] == "Your Payment")
    assert payment.heading_path == ["Subscription Services Terms of Service", "Subscribing to Services", "Your Payment"]


def test_a_footnote_is_never_a_heading_however_it_is_numbered():
    doc = parse_document(_terms_of_service())
    footnote = next(b for b in doc.blocks if "Preliminary" in b.text)
    assert footnote.kind == "paragraph"
    assert all("Preliminary" not in entry for c in chunk_document(doc) for entry in c.heading_path)


_WORDS = ["Alabama", "Boston", "Chicago", "Denver", "Everett", "Fresno", "Georgia"]


def _federal_register(pages: int) -> bytes:
    out: list[list[str]] = []
    for number in range(pages):
        lines = [f"{47699 + number} Federal Register / Vol. 85, No. 152 / Thursday, August 6, 2020 / Proposed Rules"]
        lines += [
            f"The FAA proposes to amend {_WORDS[(number + i) % 7]} of the rule as described below." for i in range(6)
        ]
        lines += [f"Units affected in {_WORDS[number]} | 17", "17"]  # a table's last cell: content, not a page number
        lines += [f"VerDate Sep<11>2014 16:21 Aug 05, 2020 Jkt 250001 PO 00000 Frm {number:05d} Fmt 4702"]
        out.append(lines)
    return build_pdf(out)


def test_running_headers_whose_numbers_change_from_page_to_page_are_removed():
    doc = parse_document(_federal_register(5))
    assert "Federal Register" not in doc.text
    assert "VerDate" not in doc.text
    assert doc.text.count("The FAA proposes") == 30 and doc.text.count("Units affected") == 5


def test_a_bare_number_is_kept_unless_the_numbers_count_up_with_the_pages():
    doc = parse_document(_federal_register(5))
    assert doc.text.count("| 17 17") == 5  # the table's last cell on every page stays
    numbered = build_pdf([[f"Body text about {_WORDS[n]} that goes on for a while.", str(n + 1)] for n in range(4)])
    text = parse_document(numbered).text
    assert all(f"about {_WORDS[n]} that" in text for n in range(4))
    assert [line for line in text.split("\n\n") if line.strip().isdigit()] == []


def _bad_startxref() -> bytes:
    data = build_pdf([["A page whose cross-reference offset is wrong."]])
    head, _, tail = data.rpartition(b"startxref\n")
    return head + b"startxref\n" + b"12" + tail[tail.index(b"\n") :]


def test_pypdf_repair_chatter_stays_out_of_the_logs(caplog):
    with caplog.at_level(logging.WARNING):
        doc = parse_document(_bad_startxref())
    assert "cross-reference offset is wrong" in doc.text
    assert [r for r in caplog.records if r.name.startswith("pypdf")] == []


def test_unchanged_single_font_pdf_still_finds_numbered_headings():
    doc = parse_document(build_pdf(streams=[page_stream(["ARTICLE 2", "PAYMENT", "Fees are due monthly."])]))
    assert (doc.blocks[0].kind, doc.blocks[0].text) == ("heading", "ARTICLE 2 PAYMENT")


def test_an_unnumbered_heading_set_like_numbered_ones_is_their_sibling():
    prose = [(line, BODY, False) for line in _PROSE]
    page = [
        ("Dense Passage Retrieval", 16, True),
        ("Abstract", 12, True),
        *prose,
        ("1 Introduction", 12, True),
        *prose,
        ("2 Background", 12, True),
        *prose,
    ]
    chunks = chunk_document(parse_document(build_pdf(streams=[typeset_stream(page)])))
    paths = {tuple(c.heading_path) for c in chunks}
    assert ("Dense Passage Retrieval", "1 Introduction") in paths
    assert not any("Abstract" in path and "1 Introduction" in path for path in paths)


def test_bold_table_rows_and_captions_are_not_headings():
    prose = [(line, BODY, False) for line in _PROSE]
    page = [
        *prose,
        ("Figure 3. Retrieval accuracy by training size", BODY, True),
        *prose,
        ("Country", BODY, True),
        ("Population", BODY, True),
        ("Capital City", BODY, True),
        ("Official Language", BODY, True),
        *prose,
    ]
    doc = parse_document(build_pdf(streams=[typeset_stream(page)]))
    assert [b.text for b in doc.blocks if b.kind == "heading"] == []


def _name(number: int) -> str:
    """A different word for every number: 0 -> "Ba", 27 -> "Bbb"."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters += chr(ord("a") + digit)
        if not number:
            return "B" + letters


def _book(chapters: int, pages_each: int) -> bytes:
    out: list[list[str]] = []
    for chapter in range(1, chapters + 1):
        for _ in range(pages_each):
            page = len(out) + 1
            head = f"Chapter {chapter} The {_WORDS[chapter]} Voyage {page}"  # a chapter's own running head
            lines = [head, *[f"The crew sailed past the isle of {_name(page * 10 + i)} that day." for i in range(5)]]
            out.append(lines)
    return build_pdf(out)


def test_a_chapter_running_head_with_its_page_number_is_removed():
    doc = parse_document(_book(chapters=3, pages_each=4))
    assert "Voyage" not in doc.text
    assert doc.text.count("The crew sailed") == 60


def test_articles_that_each_open_a_page_are_kept():
    pages = [[f"ARTICLE {n}", f"The {_WORDS[n]} clause says what it says in detail."] for n in range(1, 6)]
    doc = parse_document(build_pdf(pages))
    assert all(f"ARTICLE {n}" in doc.text for n in range(1, 6))


def test_a_diagrams_lettering_and_an_author_list_are_not_headings():
    prose = [(line, BODY, False) for line in _PROSE]
    title_page = [
        ("Trace Trees for Dynamic Languages", 18, False),
        ("Andreas Gal, Brendan Eich, Mike Shaver, David Anderson", 13, False),
        *prose,
        ("1. Introduction", 12, True),
        *prose,
    ]
    diagram = [(label, 13, True) for label in ("Trunk Trace", "Tree Anchor", "Branch Trace", "Side Exit")]
    figure_page = [*prose, *diagram, *prose, ("Nested Tree", 13, True), *prose, ("2. Overview", 12, True), *prose]
    doc = parse_document(build_pdf(streams=[typeset_stream(title_page), typeset_stream(figure_page)]))
    headings = [b.text for b in doc.blocks if b.kind == "heading"]
    assert headings == ["Trace Trees for Dynamic Languages", "1. Introduction", "2. Overview"]


def _contract_pages(head: Callable[[int], str | None], foot: Callable[[int], str | None], pages: int = 8) -> bytes:
    out = []
    for page in range(pages):
        body = [f"The buyer in {_name(page)} pays invoice {_name(50 + i)} within thirty days." for i in range(6)]
        out.append([line for line in [head(page), *body, foot(page)] if line is not None])
    return build_pdf(out)


def test_a_running_head_naming_its_section_and_page_is_removed():
    titles = ["Scope", "Payment", "Liability"]
    doc = parse_document(
        _contract_pages(lambda p: f"Part {p // 3 + 1} - {titles[p // 3]} | Page {p + 1}", lambda p: None)
    )
    assert "Part " not in doc.text and "| Page" not in doc.text  # "Part 3" runs over two pages only
    assert doc.text.count("The buyer") == 48


def test_a_running_footer_whose_date_changes_month_is_removed():
    months = ["January", "February", "March", "April", "May", "June", "July", "August"]
    doc = parse_document(
        _contract_pages(lambda p: None, lambda p: f"Retrieved {months[p]} {p + 2}, 2026 from the registry")
    )
    assert "Retrieved" not in doc.text
    assert doc.text.count("The buyer") == 48


def test_a_line_that_mentions_a_page_is_content_when_the_numbers_do_not_count_up():
    pages = [4, 9, 2, 7, 1, 8, 3, 5]
    doc = parse_document(_contract_pages(lambda p: None, lambda p: f"See the {_name(p)} schedule on page {pages[p]}."))
    assert doc.text.count("schedule on page") == 8


def test_a_heading_wrapped_onto_a_line_in_lower_case_is_one_heading():
    page = [
        ("Terms of Service", 22, True),
        *[(line, BODY, False) for line in _PROSE],
        ("You Are Responsible For the Consequences of Your Use of", 14, True),
        ("the Service", 14, True),
        *[(line, BODY, False) for line in _PROSE],
        ("Your Payment", 14, True),
        *[(line, BODY, False) for line in _PROSE],
    ]
    doc = parse_document(build_pdf(streams=[typeset_stream(page)]))
    headings = [b.text for b in doc.blocks if b.kind == "heading"]
    assert headings == [
        "Terms of Service",
        "You Are Responsible For the Consequences of Your Use of the Service",
        "Your Payment",
    ]
