"""Structure-aware chunking: heading paths, exact offsets, caps, overlap, determinism."""

from __future__ import annotations

import itertools
import re

import pytest

from shared.ingest import (
    Chunk,
    ParsedDocument,
    chunk_document,
    content_hash,
    estimate_tokens,
    parse_document,
)

LEGAL = b"""MASTER SERVICES AGREEMENT

This Agreement is made between the Customer and the Supplier.

ARTICLE 1 DEFINITIONS

Section 1.1 Defined Terms. In this Agreement:
(a) "Affiliate" means an entity controlling or controlled by a party; and
(b) "Services" means the services in Schedule 2.
Section 1.2 Interpretation. Headings do not affect interpretation.

ARTICLE 2
TERM AND TERMINATION

Section 2.1 Term. This Agreement lasts three years.
Section 2.2 Termination. Either party may end it for material breach.
"""


VOCABULARY = [
    "the",
    "supplier",
    "shall",
    "deliver",
    "goods",
    "to",
    "customer",
    "within",
    "agreed",
    "time",
    "and",
    "price",
    "under",
    "this",
    "contract",
    "unless",
    "notice",
    "is",
    "given",
]


def sentences(count: int, words: int = 12, tag: str = "") -> str:
    """Distinct sentences of ordinary words (about one token per word)."""
    return " ".join(
        f"Sentence {tag}{i} " + " ".join(VOCABULARY[(i + j) % len(VOCABULARY)] for j in range(words - 2)) + "."
        for i in range(count)
    )


def assert_exact_slices(doc: ParsedDocument, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        assert doc.text[chunk.char_start : chunk.char_end] == chunk.text


def words(text: str) -> int:
    return len(text.split())


# -- structure --------------------------------------------------------------------------


def test_legal_text_chunks_carry_article_and_section_heading_paths():
    doc = parse_document(LEGAL)
    chunks = chunk_document(doc)
    assert [c.heading_path for c in chunks] == [
        ["Master Services Agreement"],
        ["Article 1 Definitions", "Section 1.1 Defined Terms"],
        ["Article 1 Definitions", "Section 1.2 Interpretation"],
        ["Article 2 Term and Termination", "Section 2.1 Term"],
        ["Article 2 Term and Termination", "Section 2.2 Termination"],
    ]
    assert_exact_slices(doc, chunks)


def test_sub_clauses_stay_inside_their_section_when_it_fits():
    chunks = chunk_document(parse_document(LEGAL))
    section = chunks[1]
    assert section.text.startswith("ARTICLE 1 DEFINITIONS\n\nSection 1.1")  # empty parent carried
    assert "(a)" in section.text and "(b)" in section.text


def test_sub_clauses_become_boundaries_when_the_section_is_too_long():
    clauses = "\n".join(f"({letter}) {sentences(3, tag=letter)}" for letter in "abcdef")
    doc = parse_document(f"Section 4.2 Obligations. The Supplier shall:\n{clauses}\n".encode())
    chunks = chunk_document(doc, max_tokens=120, overlap_tokens=0)
    assert len(chunks) > 1
    assert {tuple(c.heading_path) for c in chunks} == {("Section 4.2 Obligations",)}
    for chunk in chunks[1:]:
        assert re.match(r"\([a-f]\) ", chunk.text), chunk.text[:40]


def test_markdown_heading_path_is_a_stack_by_level():
    doc = parse_document(
        b"# Guide\n\nIntro.\n\n## Setup\n\nInstall it.\n\n### Linux\n\nUse apt.\n\n"
        b"## Usage\n\nRun it.\n\n# Appendix\n\nMore.\n"
    )
    assert [c.heading_path for c in chunk_document(doc)] == [
        ["Guide"],
        ["Guide", "Setup"],
        ["Guide", "Setup", "Linux"],
        ["Guide", "Usage"],
        ["Appendix"],
    ]


def test_numbered_paragraphs_nest_below_styled_headings():
    doc = parse_document(
        b"# Terms of Service\n\nSection 1 Scope. It applies to you.\n\n"
        b"Section 1.1 Accounts. Keep them safe.\n\n## Privacy\n\nSee the policy.\n"
    )
    assert [c.heading_path for c in chunk_document(doc)] == [
        ["Terms of Service", "Section 1 Scope"],
        ["Terms of Service", "Section 1 Scope", "Section 1.1 Accounts"],
        ["Terms of Service", "Privacy"],
    ]


@pytest.mark.parametrize(
    ("line", "entry"),
    [
        ("§ 4.2 Haftung. Text folgt hier.", "§ 4.2 Haftung"),
        ("Article 12 Governing Law. Text follows.", "Article 12 Governing Law"),
        ("ARTICLE XII MISCELLANEOUS", "Article XII Miscellaneous"),
        ("Chapter 3 Remedies. Text follows.", "Chapter 3 Remedies"),
        ("4.2.1 Data Retention", "4.2.1 Data Retention"),
        ("Schedule 2 Pricing. Text follows.", "Schedule 2 Pricing"),
        ("Clause 7 Notices. Text follows.", "Clause 7 Notices"),
    ],
)
def test_numbered_section_forms_are_recognised_in_plain_text(line, entry):
    doc = parse_document(f"Preamble text.\n\n{line}\nBody sentence here.\n".encode())
    assert chunk_document(doc)[-1].heading_path == [entry]


# -- sizes, offsets, overlap ------------------------------------------------------------


def long_document() -> ParsedDocument:
    body = "\n\n".join(sentences(6, tag=f"p{p}-") for p in range(12))
    return parse_document(f"# Long\n\n{body}\n\n## Short\n\nTiny section.\n".encode())


def test_chunk_text_is_the_exact_slice_of_document_text():
    doc = long_document()
    assert_exact_slices(doc, chunk_document(doc, max_tokens=80, overlap_tokens=16))


def test_token_cap_is_respected_with_default_and_custom_counters():
    doc = long_document()
    for counter, cap in ((estimate_tokens, 80), (words, 40)):
        chunks = chunk_document(doc, max_tokens=cap, overlap_tokens=8, count_tokens=counter)
        assert len(chunks) > 3
        assert all(counter(c.text) <= cap for c in chunks)
        assert all(c.token_count == counter(c.text) for c in chunks)


def test_consecutive_chunks_of_a_section_overlap_by_whole_sentences():
    doc = long_document()
    chunks = [c for c in chunk_document(doc, max_tokens=80, overlap_tokens=24) if c.heading_path == ["Long"]]
    assert len(chunks) > 2
    for previous, current in itertools.pairwise(chunks):
        assert current.char_start < previous.char_end  # overlap present
        shared = doc.text[current.char_start : previous.char_end]
        assert shared.startswith("Sentence ") and shared.endswith(".")
        assert estimate_tokens(shared) <= 24


def test_no_overlap_across_sections():
    doc = long_document()
    chunks = chunk_document(doc, max_tokens=80, overlap_tokens=24)
    last_long = [c for c in chunks if c.heading_path == ["Long"]][-1]
    short = next(c for c in chunks if c.heading_path == ["Long", "Short"])
    assert short.char_start > last_long.char_end


def test_chunks_never_split_inside_a_sentence():
    doc = long_document()
    for chunk in chunk_document(doc, max_tokens=80, overlap_tokens=16):
        assert chunk.text.startswith(("Sentence ", "Long", "Short"))
        assert chunk.text.endswith(".")


def test_a_single_sentence_longer_than_the_cap_is_split_between_words():
    giant = " ".join(f"word{i}" for i in range(400)) + "."
    doc = parse_document(f"Intro sentence.\n\n{giant}\n".encode())
    chunks = chunk_document(doc, max_tokens=64, overlap_tokens=8)
    assert len(chunks) > 4
    assert all(estimate_tokens(c.text) <= 64 for c in chunks)
    assert all(re.fullmatch(r"(Intro sentence\.\s+)?word\d+( word\d+)*\.?", c.text) for c in chunks)
    assert_exact_slices(doc, chunks)


def test_a_word_longer_than_the_cap_is_cut_anyway():
    doc = parse_document(("x" * 5000 + "\n").encode())
    chunks = chunk_document(doc, max_tokens=32, overlap_tokens=0)
    assert all(estimate_tokens(c.text) <= 32 for c in chunks)
    assert "".join(c.text for c in chunks) == "x" * 5000


def test_tables_stay_whole_when_they_fit():
    rows = "\n".join(f"| r{i} | v{i} |" for i in range(12))
    doc = parse_document(f"# Prices\n\n{sentences(8)}\n\n| Name | Value |\n|---|---|\n{rows}\n\nAfter.\n".encode())
    table = next(b for b in doc.blocks if b.kind == "table")
    chunks = chunk_document(doc, max_tokens=120, overlap_tokens=0)
    assert any(c.char_start <= table.start and table.end <= c.char_end for c in chunks)


def test_a_table_larger_than_the_cap_splits_between_rows():
    rows = "\n".join(f"| row {i} | value {i} |" for i in range(80))
    doc = parse_document(f"# Big\n\n| Name | Value |\n|---|---|\n{rows}\n".encode())
    chunks = chunk_document(doc, max_tokens=60, overlap_tokens=0)
    assert len(chunks) > 2
    for chunk in chunks:
        assert all(
            re.fullmatch(r"(Big|Name \| Value|row \d+ \| value \d+)", line) for line in chunk.text.split("\n") if line
        )


def test_tiny_trailing_fragment_merges_into_the_previous_chunk():
    text = sentences(9, words=10) + " Done."
    doc = parse_document(text.encode())
    chunks = chunk_document(doc, max_tokens=128, overlap_tokens=0)
    assert chunks[-1].text.endswith("Done.")
    assert estimate_tokens(chunks[-1].text) >= 128 // 8


def test_small_section_is_one_chunk_with_its_heading():
    doc = parse_document(b"# Title\n\nOne paragraph.\n\nAnother paragraph.\n")
    chunks = chunk_document(doc)
    assert len(chunks) == 1
    assert chunks[0].text == "Title\n\nOne paragraph.\n\nAnother paragraph."


# -- identity ---------------------------------------------------------------------------


def test_chunking_is_deterministic():
    doc = long_document()
    first = chunk_document(doc, max_tokens=80, overlap_tokens=16)
    second = chunk_document(long_document(), max_tokens=80, overlap_tokens=16)
    assert first == second
    assert [c.content_hash for c in first] == [c.content_hash for c in second]


def test_content_hash_covers_text_and_heading_path():
    chunk = chunk_document(parse_document(LEGAL))[1]
    assert chunk.content_hash == content_hash(chunk.text, chunk.heading_path)
    assert re.fullmatch(r"[0-9a-f]{64}", chunk.content_hash)
    assert content_hash(chunk.text, ["Other"]) != chunk.content_hash
    assert content_hash(chunk.text + " ", chunk.heading_path) != chunk.content_hash


def test_ordinals_count_from_zero_in_document_order():
    chunks = chunk_document(long_document(), max_tokens=80)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert [c.char_start for c in chunks] == sorted(c.char_start for c in chunks)


def test_text_documents_have_no_pages():
    assert {(c.page_start, c.page_end) for c in chunk_document(parse_document(LEGAL))} == {(None, None)}


@pytest.mark.parametrize(("max_tokens", "overlap"), [(4, 0), (64, 40), (64, -1)])
def test_nonsense_settings_are_refused(max_tokens, overlap):
    with pytest.raises(ValueError):
        chunk_document(parse_document(LEGAL), max_tokens=max_tokens, overlap_tokens=overlap)


def test_a_heading_without_body_is_never_the_heading_of_its_next_sibling():
    doc = parse_document(b"# Terms\n\n## Service\n\n## Support\n\nProvider answers within a day.\n")
    chunks = chunk_document(doc)
    support = next(c for c in chunks if "Provider answers" in c.text)
    assert support.heading_path == ["Terms", "Support"]
    assert "Service" not in support.text
    assert any(c.heading_path == ["Terms", "Service"] for c in chunks)


def test_numbered_list_clauses_with_run_in_titles_open_sections():
    text = (
        b"# Employee IP Agreement\n\n"
        b"1. **Your IP.** You keep what you make on your own time, with your own tools.\n\n"
        b"2. **License to the Company.** In some cases you grant the Company a licence to Your IP.\n\n"
        b"3. **Cooperation.** You help the Company defend the licence under Section 2.\n"
    )
    chunks = chunk_document(parse_document(text), max_tokens=24, overlap_tokens=0)
    paths = [c.heading_path for c in chunks]
    assert ["Employee IP Agreement", "2. License to the Company"] in paths


def test_short_numbered_list_items_stay_in_their_section():
    text = b"# Setup\n\nDo this:\n\n1. Install Python\n2. Run the tests\n3. Open the app\n"
    chunks = chunk_document(parse_document(text))
    assert [c.heading_path for c in chunks] == [["Setup"]]
