"""Decide a document's type from its bytes alone; names and Content-Type headers lie."""

from __future__ import annotations

import csv
import io
import re
import struct
import zipfile

from shared.ingest.document import DocType
from shared.ingest.errors import (
    SUPPORTED_FORMATS,
    CorruptDocument,
    EmptyDocument,
    UnsupportedType,
)
from shared.ingest.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_zip_entry_count,
    declared_zip_entries,
)
from shared.ingest.textcodec import bom_encoding, decode_legacy, is_binary_text, try_decode

_HEAD = 8192
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# Images read by OCR (Azure AI Document Intelligence, when configured): PNG, JPEG, TIFF.
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")
# Magic numbers of common non-document uploads, so the message can say what the file is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x7fELF", "a Linux executable (ELF)"),
    (b"\xcf\xfa\xed\xfe", "a macOS executable"),
    (b"\xce\xfa\xed\xfe", "a macOS executable"),
    (b"\xca\xfe\xba\xbe", "a compiled program (Java class or macOS binary)"),
    (b"\x00asm", "a WebAssembly module"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office file (.doc, .xls or .ppt)"),
    (b"{\\rtf", "a Rich Text Format (RTF) file"),
    (b"%!PS", "a PostScript file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS", "an audio or video file"),
    (b"ID3", "an MP3 audio file"),
    (b"fLaC", "an audio file (FLAC)"),
)
_HINTS = {
    "a legacy Microsoft Office file (.doc, .xls or .ppt)": " Save it as .docx or PDF first.",
    "a Rich Text Format (RTF) file": " Save it as .docx or PDF first.",
}

_STRONG_HTML = re.compile(r"<(?:!doctype\s+html|html|head|body)[\s>/]", re.I)
_HTML_TAG = re.compile(
    r"<(?:div|p|h[1-6]|table|ul|ol|section|article|main|span|a|meta|title|link|script|style"
    r"|nav|header|footer|form|img|br|center|font|b|i|strong|em)[\s>/]",
    re.I,
)
# Comments and an XML declaration may precede the first real tag.
_LEADING_JUNK = re.compile(r"^(?:\s+|<!--.*?-->|<\?xml[^>]*\?>)*", re.S)

_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.M)
# Anchored on the first non-blank character so a failed match costs one pass per line.
_SETEXT = re.compile(r"^[ \t]*\S[^\n]*\n {0,3}(?:={3,}|-{3,})[ \t]*$", re.M)
_FENCE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})", re.M)
_TABLE_RULE = re.compile(r"^ {0,3}\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$", re.M)
_BULLET = re.compile(r"^ {0,3}[-*+][ \t]+\S", re.M)
# Repeats are bounded so a line of unclosed "[a](" costs linear time, not quadratic.
_LINK = re.compile(r"\[[^\]\n]{1,300}\]\([^)\s]{1,300}\)")
_QUOTE = re.compile(r"^ {0,3}>[ \t]?\S", re.M)
_MD_SAMPLE = 200_000
CSV_DELIMITERS = ",;\t|"
_CSV_SAMPLE = 64 * 1024
# csv.Sniffer's quote-guessing regexes backtrack quadratically over runs of quotes and delimiters
# (64 KB of ',"' took 22 s), so it only sees the first few lines; the consistency check that picks
# the dialect still reads the whole sample, with csv.reader, in linear time.
_SNIFFER_SAMPLE = 4 * 1024


def sniff(data: bytes, limits: Limits = DEFAULT_LIMITS) -> DocType:
    """Return the document type, or raise :class:`EmptyDocument` / :class:`UnsupportedType`."""
    if not data:
        raise EmptyDocument("The file is empty (0 bytes).")
    head = data[:_HEAD]
    if _is_pdf(head):
        return "pdf"
    if head.startswith(_ZIP_MAGIC):
        return _sniff_zip(data, limits)
    if head.startswith(_IMAGE_MAGIC):
        return "image"
    _reject_known_binary(head)
    return _sniff_text(data, head)


def looks_like_markdown(text: str) -> bool:
    """Markdown structure (headings, fences, tables, lists) in enough proportion."""
    sample = text[:_MD_SAMPLE]
    strong = (
        len(_ATX.findall(sample))
        + len(_SETEXT.findall(sample))
        + len(_FENCE.findall(sample)) // 2
        + len(_TABLE_RULE.findall(sample))
    )
    weak = len(_BULLET.findall(sample)) + len(_LINK.findall(sample)) + len(_QUOTE.findall(sample))
    nonblank = sum(1 for line in sample.splitlines() if line.strip())
    if strong >= 2:
        return True
    if strong == 1 and (weak >= 1 or nonblank <= 20 or _ATX.match(sample.lstrip("\n"))):
        return True
    return weak >= 3 and weak >= 0.2 * nonblank


def _is_pdf(head: bytes) -> bool:
    """``%PDF-`` at the start, or after a short binary preamble (mail gateways add some)."""
    stripped = head.lstrip(b" \t\r\n\x00")
    if stripped.startswith(b"%PDF-"):
        return True
    at = head.find(b"%PDF-", 0, 1024)
    return at > 0 and try_decode(head[:at]) is None


def _reject_known_binary(head: bytes) -> None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            raise _unsupported(name)
    if head[4:8] == b"ftyp":
        raise _unsupported("a video or image file (MP4/HEIC)")
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        raise _unsupported("an image or media file (RIFF)")
    if head.startswith(b"MZ") and b"\x00" in head[:64]:
        raise _unsupported("a Windows executable")


def _sniff_text(data: bytes, head: bytes) -> DocType:
    raw = _head_text(head)
    prefix = _LEADING_JUNK.sub("", raw, count=1)
    if _STRONG_HTML.match(prefix):
        return "html"  # may be in a legacy charset; the HTML parser handles its meta charset
    if raw.startswith("<?xml") or prefix.lower().startswith("<svg"):
        raise _unsupported("an XML or SVG file")
    text = try_decode(data)
    if text is None:
        text = decode_legacy(data)  # Latin-1 / Windows-1252 text that is clearly text
    if text is None or is_binary_text(text):
        if _HTML_TAG.match(prefix):
            return "html"
        raise UnsupportedType(
            "This file is neither a supported document format nor UTF-8 text (it looks like "
            f"binary data). Folio can read {SUPPORTED_FORMATS} files; save text files as UTF-8."
        )
    if not text.strip():
        raise EmptyDocument("The file contains only whitespace; there is no text to index.")
    if _HTML_TAG.match(prefix):
        # READMEs often open with <p align="center">; their headings are still Markdown.
        return "markdown" if _ATX.search(text[:_MD_SAMPLE]) else "html"
    if looks_like_markdown(text):
        return "markdown"
    return "csv" if looks_like_csv(text) else "text"


def sniff_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """The CSV dialect that reads the sample most consistently (Excel's comma dialect when none does)."""
    return _best_dialect(text)[0]


def looks_like_csv(text: str) -> bool:
    """Delimited rows: the same number of fields (at least two) in nearly every row of the sample.

    Tabs are strong evidence (prose has none): two consistent rows suffice. Commas, semicolons and
    bars also occur in prose, so those need at least three rows and, unless there are five or more,
    at least three fields per row.
    """
    dialect, rows, width, share = _best_dialect(text)
    if width < 2 or share < 0.9 or rows < 2:
        return False
    if dialect.delimiter == "\t":
        return True
    return rows >= 3 and (rows >= 5 or width >= 3)


def _best_dialect(text: str) -> tuple[type[csv.Dialect] | csv.Dialect, int, int, float]:
    """(dialect, rows, width, share): among csv.Sniffer's guess and Excel's dialect with each usual
    delimiter, the one whose most common row width (at least two fields) covers most rows of the sample."""
    sample = text[:_CSV_SAMPLE]
    if len(text) > _CSV_SAMPLE:
        sample = sample[: sample.rfind("\n") + 1]  # whole lines only
    candidates: list[type[csv.Dialect] | csv.Dialect] = []
    head = sample[:_SNIFFER_SAMPLE]
    if len(sample) > _SNIFFER_SAMPLE:
        head = head[: head.rfind("\n") + 1]  # whole lines only (none: Excel's dialects below still compete)
    try:
        candidates.append(csv.Sniffer().sniff(head, delimiters=CSV_DELIMITERS))
    except csv.Error:
        pass
    for delimiter in CSV_DELIMITERS:
        candidates.append(type("_Delimited", (csv.excel,), {"delimiter": delimiter}))
    best: tuple[type[csv.Dialect] | csv.Dialect, int, int, float] = (csv.excel, 0, 0, 0.0)
    for dialect in candidates:
        try:
            widths = [len(row) for row in csv.reader(io.StringIO(sample, newline=""), dialect) if any(row)][:200]
        except csv.Error:
            continue
        if not widths:
            continue
        width = max(set(widths), key=lambda w: (widths.count(w), w))
        share = widths.count(width) / len(widths)
        if width >= 2 and (share, width) > (best[3], best[2]):
            best = (dialect, len(widths), width, share)
    return best


def _head_text(head: bytes) -> str:
    """The first characters past any BOM and leading whitespace."""
    encoding, skip = bom_encoding(head)
    # latin-1 never fails and tag names are ASCII, so it is enough to read the markup.
    return head[skip:].decode(encoding or "latin-1", errors="ignore").lstrip()


def _sniff_zip(data: bytes, limits: Limits) -> DocType:
    """DOCX, XLSX and PPTX are ZIPs holding ``[Content_Types].xml`` and their main part
    (``word/document.xml``, ``xl/workbook.xml``, ``ppt/presentation.xml``)."""
    names = _zip_names(data, limits)
    if "[Content_Types].xml" in names:
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        if "ppt/presentation.xml" in names:
            return "pptx"
    if "META-INF/container.xml" in names:
        raise _unsupported("an EPUB e-book")
    if "content.xml" in names and "mimetype" in names:
        raise _unsupported("an OpenDocument file")
    for part, name in (
        ("word/document.xml", "a Word document"),
        ("xl/workbook.xml", "an Excel workbook"),
        ("ppt/presentation.xml", "a PowerPoint presentation"),
    ):
        if part in names:
            raise _unsupported(f"{name} missing its [Content_Types].xml part")
    raise _unsupported("a ZIP archive")


def _zip_names(data: bytes, limits: Limits) -> set[str]:
    """Member names from the central directory only; nothing is inflated."""
    # Before zipfile builds one ZipInfo per entry of a possibly enormous directory.
    check_zip_entry_count(declared_zip_entries(data) or 0, limits)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, OSError) as exc:
        raise CorruptDocument(
            "The file starts like a ZIP-based document (such as .docx) but its archive is damaged and cannot be opened."
        ) from exc


def _unsupported(name: str) -> UnsupportedType:
    hint = _HINTS.get(name, "")
    return UnsupportedType(
        f"This file looks like {name}, which Folio cannot index.{hint} Supported formats: {SUPPORTED_FORMATS}."
    )
