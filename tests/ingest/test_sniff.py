"""Type detection by content: magic bytes and structure, never names."""

from __future__ import annotations

import io
import zipfile

import pytest

from shared.errors import Invalid
from shared.ingest import (
    CorruptDocument,
    DocumentRejected,
    EmptyDocument,
    TooLarge,
    UnsupportedType,
    parse_document,
    sniff,
)

from .fixtures import build_pdf, docx_shaped_zip, many_entries_zip


def test_pdf_is_detected_by_magic_bytes():
    assert sniff(build_pdf([["Hello"]])) == "pdf"


def test_pdf_after_leading_whitespace_is_still_pdf():
    assert sniff(b"\r\n  " + build_pdf([["Hello"]])) == "pdf"


def test_text_mentioning_pdf_magic_is_not_pdf():
    assert sniff(b"Files start with %PDF- followed by a version.\n") == "text"


def test_docx_is_a_zip_with_document_and_content_types():
    data = docx_shaped_zip({"word/document.xml": b"<w:document/>"})
    assert sniff(data) == "docx"


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"notes.txt": b"hello"}, "a ZIP archive"),
        ({"META-INF/container.xml": b"<container/>"}, "an EPUB e-book"),
    ],
)
def test_other_zip_packages_are_unsupported_and_named(members, named):
    with pytest.raises(UnsupportedType) as caught:
        sniff(docx_shaped_zip(members))
    assert named in str(caught.value)
    assert "Supported formats" in str(caught.value)


@pytest.mark.parametrize(
    ("members", "doc_type"),
    [({"xl/workbook.xml": b"<workbook/>"}, "xlsx"), ({"ppt/presentation.xml": b"<p/>"}, "pptx")],
)
def test_excel_and_powerpoint_packages_are_detected(members, doc_type):
    assert sniff(docx_shaped_zip(members)) == doc_type


@pytest.mark.parametrize(
    "head", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"II*\x00\x08\x00\x00\x00"]
)
def test_png_jpeg_and_tiff_are_images_for_ocr(head):
    assert sniff(head + b"\x00" * 64) == "image"


def test_word_document_without_content_types_is_unsupported():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", b"<w:document/>")
    with pytest.raises(UnsupportedType, match=r"\[Content_Types\]\.xml"):
        sniff(buffer.getvalue())


def test_damaged_zip_is_corrupt():
    with pytest.raises(CorruptDocument, match="damaged"):
        sniff(b"PK\x03\x04" + b"\x00" * 200)


def test_zip_entry_count_is_checked_before_listing_names():
    with pytest.raises(TooLarge) as caught:
        sniff(many_entries_zip(10_001))
    assert caught.value.limit == "zip_max_entries"


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><body><p>Hi</p></body></html>",
        b"\xef\xbb\xbf  \n<html><p>Hi</p></html>",
        b"<!-- saved page -->\n<html lang='en'><p>Hi</p></html>",
        b"\n\n<div class='x'><p>Just a fragment</p></div>",
        "<html><p>caf\u00e9</p></html>".encode("utf-16"),
    ],
)
def test_html_is_detected_from_leading_markup(data):
    assert sniff(data) == "html"


def test_html_in_a_legacy_charset_is_still_html():
    assert sniff(b"<html><head><meta charset='windows-1252'></head><p>caf\xe9</p></html>") == "html"


def test_readme_opening_with_html_but_using_markdown_headings_is_markdown():
    data = b'<p align="center"><img src="logo.png"></p>\n\n# Project\n\nSome text.\n'
    assert sniff(data) == "markdown"


def test_markdown_is_detected_from_headings_and_lists():
    data = b"# Title\n\nIntro.\n\n## Usage\n\n- one\n- two\n"
    assert sniff(data) == "markdown"


def test_setext_headings_count_as_markdown():
    assert sniff(b"Title\n=====\n\nBody text.\n\nPart\n----\n\nMore.\n") == "markdown"


def test_prose_without_markdown_structure_is_text():
    data = b"Dear team,\n\nThe meeting moved to Tuesday. Please bring the report.\n\nThanks.\n"
    assert sniff(data) == "text"


def test_legal_text_with_numbered_clauses_is_text_not_markdown():
    data = b"ARTICLE 1 DEFINITIONS\n\n1. Terms.\n(a) one;\n(b) two.\n2. Scope.\n"
    assert sniff(data) == "text"


def test_utf16_text_with_bom_is_text():
    assert sniff("Plain words in UTF-16.\n".encode("utf-16")) == "text"


def test_empty_file_is_rejected_as_empty():
    with pytest.raises(EmptyDocument, match="empty"):
        sniff(b"")


def test_whitespace_only_file_is_rejected_as_empty():
    with pytest.raises(EmptyDocument, match="only whitespace"):
        sniff(b" \n\t\r\n")


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"GIF89a\x01\x00\x01\x00", "a GIF image"),
        (b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8, "a Linux executable (ELF)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "a legacy Microsoft Office file"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "a Windows executable"),
    ],
)
def test_known_binary_formats_are_unsupported_and_named(head, named):
    with pytest.raises(UnsupportedType) as caught:
        sniff(head + b"\x00" * 64)
    assert named in str(caught.value)


def test_invalid_utf8_is_unsupported_with_a_hint():
    # Not UTF-8, and not Windows-1252 text either: 0x81 and 0x8d are undefined there.
    with pytest.raises(UnsupportedType, match="UTF-8"):
        sniff(b"caf\xe9 au lait \x81\x8d\xfd")


def test_bytes_mostly_above_127_are_not_taken_for_legacy_text():
    with pytest.raises(UnsupportedType, match="UTF-8"):
        sniff(bytes(range(0xA0, 0x100)) * 8 + b" some ascii")


def test_latin1_markdown_is_read_not_refused_as_binary():
    data = "# Umlaute\n\nMarkdown können Sie auch in Latin-1 schreiben: äöüß, café, naïve.\n".encode("latin-1")
    assert sniff(data) == "markdown"
    doc = parse_document(data)
    assert "können" in doc.text and "café" in doc.text


def test_windows_1252_punctuation_is_decoded():
    data = "The \u201cSupplier\u201d shall pay \u20ac100 \u2013 net.\n".encode("cp1252")
    assert "\u201cSupplier\u201d shall pay \u20ac100 \u2013 net." in parse_document(data).text


def test_text_with_nul_bytes_is_binary():
    with pytest.raises(UnsupportedType, match="binary"):
        sniff(b"abc\x00def\x00ghi")


def test_xml_that_is_not_html_is_unsupported():
    with pytest.raises(UnsupportedType, match="XML"):
        sniff(b'<?xml version="1.0"?><invoice><total>3</total></invoice>')


def test_sniffing_ignores_the_file_name_because_it_never_sees_one():
    # parse_document takes bytes only: a PNG renamed to .pdf is still a PNG.
    with pytest.raises(UnsupportedType, match="PNG"):
        parse_document(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)


def test_every_rejection_is_a_permanent_invalid_error():
    for cls in (UnsupportedType, EmptyDocument, CorruptDocument, TooLarge):
        assert issubclass(cls, DocumentRejected)
        assert issubclass(cls, Invalid)
