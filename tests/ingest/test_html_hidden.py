"""HTML that a browser does not show is not indexed either."""

from __future__ import annotations

from shared.ingest import parse_document


def _text(html: str) -> str:
    return parse_document(html.encode()).text


def test_inline_xbrl_header_is_dropped_with_everything_inside_it():
    html = (
        "<html><body><div style='display:none'><ix:header><ix:hidden>"
        "<ix:nonNumeric name='dei:EntityCentralIndexKey'>0001234567</ix:nonNumeric>"
        "<div><div>FY false P1Y</div></div></ix:hidden></ix:header></div>"
        "<p>Annual report of Galaxy Gaming, Inc.</p></body></html>"
    )
    assert _text(html) == "Annual report of Galaxy Gaming, Inc."


def test_ix_header_outside_a_hidden_div_is_still_dropped():
    html = "<html><body><ix:header><div>0001234567 FY false</div></ix:header><p>Visible.</p></body></html>"
    assert _text(html) == "Visible."


def test_hidden_attribute_and_hiding_styles_drop_the_element():
    html = (
        "<html><body><p>Shown one.</p>"
        "<div hidden><p>Secret one.</p><div>nested <div>deeper</div></div></div>"
        "<p style='color: red; display: none'>Secret two.</p>"
        "<span style='visibility:hidden'>Secret three.</span>"
        "<p style='display: block'>Shown two.</p></body></html>"
    )
    text = _text(html)
    assert "Secret" not in text and "deeper" not in text
    assert "Shown one." in text and "Shown two." in text


def test_a_hidden_input_does_not_hide_what_follows_it():
    html = "<html><body><p>Before <input type='hidden' hidden value='x'> after.</p></body></html>"
    assert _text(html) == "Before after."
