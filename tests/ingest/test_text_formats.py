"""Plain text, Markdown and HTML parsers."""

from __future__ import annotations

import pytest

from shared.ingest import EmptyDocument, ParsedDocument, get_parser, parse_document
from shared.ingest.limits import Limits


def assert_blocks_tile_text(doc: ParsedDocument) -> None:
    """Every block is the exact slice its offsets name, joined by blank lines."""
    assert doc.blocks
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text
    assert doc.text == "\n\n".join(block.text for block in doc.blocks)


def kinds(doc: ParsedDocument) -> list[tuple[str, str, int | None]]:
    return [(b.kind, b.text, b.level) for b in doc.blocks]


# -- plain text -------------------------------------------------------------------------


def test_text_paragraphs_split_at_blank_lines_with_exact_offsets():
    doc = parse_document(b"First paragraph,\nwrapped.\n\n\nSecond one.\r\n\r\nThird.")
    assert doc.doc_type == "text" and doc.pages is None
    assert [b.text for b in doc.blocks] == ["First paragraph,\nwrapped.", "Second one.", "Third."]
    assert {b.page for b in doc.blocks} == {None}
    assert_blocks_tile_text(doc)


def test_text_numbered_sections_and_shouting_lines_become_headings():
    data = (
        b"MASTER AGREEMENT\n\nARTICLE 1\nDEFINITIONS\n\nSection 1.1 Terms. Words mean things.\n"
        b"(a) one thing;\n(b) another.\n\n4.2.1 Data Retention\nKeep it short.\n"
    )
    doc = parse_document(data)
    assert kinds(doc) == [
        ("heading", "MASTER AGREEMENT", 3),
        ("heading", "ARTICLE 1\nDEFINITIONS", 3),
        ("paragraph", "Section 1.1 Terms. Words mean things.", None),
        ("paragraph", "(a) one thing;", None),
        ("paragraph", "(b) another.", None),
        ("heading", "4.2.1 Data Retention", 6),
        ("paragraph", "Keep it short.", None),
    ]
    assert doc.title == "MASTER AGREEMENT"
    assert_blocks_tile_text(doc)


def test_text_reference_on_a_wrapped_line_does_not_open_a_section():
    doc = parse_document(b"The fee is set out in\nSection 4.2 of this Agreement and is final.\n")
    assert len(doc.blocks) == 1 and doc.blocks[0].kind == "paragraph"


def test_utf16_text_decodes():
    doc = parse_document("Grüße aus Köln.\n".encode("utf-16"))
    assert doc.text == "Grüße aus Köln."


def test_text_parser_rejects_binary_directly():
    from shared.ingest import UnsupportedType

    with pytest.raises(UnsupportedType):
        get_parser("text")(b"\xff\xfe\x00\x00binary", Limits())


# -- markdown ---------------------------------------------------------------------------

NESTED_MD = b"""---
title: Operations Handbook
---
# Handbook

Welcome to the **handbook**. See [the site](https://example.com).

## Deployments

Deploy with care.

### Rollbacks

Roll back fast.

## Incidents

Page the on-call.
"""


def test_markdown_nested_headings_keep_their_levels():
    doc = parse_document(NESTED_MD)
    assert doc.doc_type == "markdown"
    assert [(b.text, b.level) for b in doc.blocks if b.kind == "heading"] == [
        ("Handbook", 1),
        ("Deployments", 2),
        ("Rollbacks", 3),
        ("Incidents", 2),
    ]
    assert doc.title == "Operations Handbook"  # front matter wins over the first heading
    assert "title:" not in doc.text
    assert_blocks_tile_text(doc)


def test_markdown_inline_syntax_is_reduced_to_visible_text():
    doc = parse_document(NESTED_MD)
    assert doc.blocks[1].text == "Welcome to the handbook. See the site."


def test_markdown_lists_fences_tables_and_setext():
    data = (
        b"Guide\n=====\n\nSteps:\n\n1. Install\n2. Run `folio`\n\n- bullet\n  continued\n\n"
        b"```python\nprint('hi')\n\n# not a heading\n```\n\n| Name | Value |\n|------|------:|\n"
        b"| a | 1 |\n| b | 2 |\n\nSub\n---\n\nEnd.\n"
    )
    doc = parse_document(data)
    assert kinds(doc) == [
        ("heading", "Guide", 1),
        ("paragraph", "Steps:", None),
        ("list_item", "1. Install", None),
        ("list_item", "2. Run folio", None),
        ("list_item", "bullet\ncontinued", None),
        ("code", "print('hi')\n\n# not a heading", None),
        ("table", "Name | Value\na | 1\nb | 2", None),
        ("heading", "Sub", 2),
        ("paragraph", "End.", None),
    ]
    assert_blocks_tile_text(doc)


def test_markdown_paragraph_splits_where_a_numbered_clause_starts():
    doc = get_parser("markdown")(b"# Terms\n\nSection 1 Scope. It applies.\nSection 2 Fees. Pay.\n", Limits())
    assert [b.text for b in doc.blocks[1:]] == [
        "Section 1 Scope. It applies.",
        "Section 2 Fees. Pay.",
    ]


# -- html -------------------------------------------------------------------------------

PAGE = b"""<!DOCTYPE html>
<html><head>
<title>Privacy &amp; Cookies</title>
<style>body { color: red; } .secret { }</style>
<script>var tracking = "<p>not text</p>";</script>
</head><body>
<header><a href="/">Site name</a> <nav>Home | About</nav></header>
<nav><ul><li>Menu item</li></ul></nav>
<main>
<h1>Privacy&nbsp;Policy</h1>
<p>We respect your privacy &mdash; really. Caf&eacute; &lt;3 &#169; 2024</p>
<h2>Data   we
collect</h2>
<p>Line one<br>Line two</p>
<ul><li>Email</li><li>Name <b>and</b> address</ul>
<table><tr><th>Data<th>Kept for</tr><tr><td>Logs</td><td>30 days</td></tr></table>
<pre>  code   stays
as is</pre>
<noscript>Enable JavaScript</noscript>
</main>
<footer>&copy; Example Corp. All rights reserved.</footer>
</body></html>"""


def test_html_keeps_content_and_drops_script_style_nav_header_footer():
    doc = parse_document(PAGE)
    assert doc.doc_type == "html"
    for noise in ("tracking", "color", "Site name", "Menu item", "Home", "rights reserved", "JavaScript"):
        assert noise not in doc.text
    assert kinds(doc) == [
        ("heading", "Privacy Policy", 1),
        ("paragraph", "We respect your privacy — really. Café <3 © 2024", None),
        ("heading", "Data we collect", 2),
        ("paragraph", "Line one\nLine two", None),
        ("list_item", "Email", None),
        ("list_item", "Name and address", None),
        ("table", "Data | Kept for\nLogs | 30 days", None),
        ("code", "  code   stays\nas is", None),
    ]
    assert doc.title == "Privacy & Cookies"
    assert_blocks_tile_text(doc)


def test_html_article_header_is_content_but_page_header_is_not():
    data = (
        b"<html><body><header>Brand</header><article><header><h1>Post title</h1></header>"
        b"<p>Body.</p></article></body></html>"
    )
    doc = parse_document(data)
    assert [b.text for b in doc.blocks] == ["Post title", "Body."]


def test_html_in_windows_1252_uses_its_meta_charset():
    data = b"<html><head><meta charset='windows-1252'></head><body><p>caf\xe9 \x93quoted\x94</p>"
    doc = parse_document(data)
    assert doc.text == "café “quoted”"


def test_html_with_only_chrome_is_empty():
    with pytest.raises(EmptyDocument, match="No text"):
        parse_document(b"<html><body><nav>Menu</nav><script>x()</script></body></html>")


def test_html_unclosed_paragraphs_and_cells_still_split():
    doc = parse_document(b"<html><body><p>One<p>Two<table><tr><td>a<td>b<tr><td>c</table>")
    assert kinds(doc) == [
        ("paragraph", "One", None),
        ("paragraph", "Two", None),
        ("table", "a | b\nc", None),
    ]
