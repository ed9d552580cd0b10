"""Bytes to text for the text-like formats: UTF-8, UTF-16 with a byte-order mark, or a legacy
single-byte encoding (Windows-1252, a superset of Latin-1's printable range) when the bytes are
clearly text that is not UTF-8."""

from __future__ import annotations

import codecs
import re

from shared.ingest.errors import UnsupportedType

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 controls other than tab, newline, carriage return and form feed, plus DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# More than this share of control characters means binary that happens to decode.
_MAX_CONTROL_SHARE = 0.01
# Legacy text is mostly ASCII with accented letters here and there; binary data is not.
_MAX_HIGH_BYTE_SHARE = 0.3
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")


def bom_encoding(data: bytes) -> tuple[str | None, int]:
    """The encoding named by a leading byte-order mark and the mark's length."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None, 0


def try_decode(data: bytes) -> str | None:
    """Decode as BOM-declared UTF-16/UTF-8 or plain UTF-8; None if that fails."""
    encoding, skip = bom_encoding(data)
    try:
        return data[skip:].decode(encoding or "utf-8")
    except UnicodeDecodeError:
        return None


def decode_legacy(data: bytes) -> str | None:
    """Windows-1252 text (which reads Latin-1 text the same), or None unless the bytes are
    clearly such text: no NULs, few bytes above 127, none that Windows-1252 leaves undefined,
    few control characters, and the bytes above 127 mostly letters or typographic marks."""
    sample = data[:65_536]
    if not sample or b"\x00" in sample:
        return None
    high = [b for b in sample if b >= 0x80]
    if len(high) > _MAX_HIGH_BYTE_SHARE * len(sample) or any(b in _CP1252_UNDEFINED for b in high):
        return None
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    decoded_high = [c for c in text[:65_536] if ord(c) >= 0x80]
    plausible = sum(1 for c in decoded_high if c.isalpha() or c in "–—‘’“”…•€£§°©®™«»·×¿¡½¼¾")
    if decoded_high and plausible < 0.6 * len(decoded_high):
        return None
    return None if is_binary_text(text) else text


def is_binary_text(text: str) -> bool:
    """True when decoded text is really binary: NULs, or many control characters."""
    if "\x00" in text:
        return True
    sample = text[:65_536]
    return len(_CONTROL.findall(sample)) > _MAX_CONTROL_SHARE * max(len(sample), 1)


def decode_text(data: bytes) -> str:
    """Decode an upload as text, or raise :class:`UnsupportedType` naming what to do."""
    text = try_decode(data)
    if text is None:
        text = decode_legacy(data)
    if text is None:
        raise UnsupportedType(
            "This file is not UTF-8 text and not a recognised document format. If it is a "
            "text file, save it with UTF-8 encoding and upload it again."
        )
    if is_binary_text(text):
        raise UnsupportedType("This file looks like binary data, not a document Folio can read.")
    return text


def normalise_text(text: str) -> str:
    """Unix newlines, form feeds as paragraph breaks, stray control characters removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    return _CONTROL.sub("", text)


def strip_html_comments(text: str) -> str:
    """Drop ``<!-- ... -->``; an unclosed comment runs to the end, as browsers read it.

    Done with ``str.find``: a lazy regex rescans to the end from every unclosed opener.
    """
    out: list[str] = []
    pos = 0
    start = text.find("<!--")
    while start >= 0:
        out.append(text[pos:start])
        end = text.find("-->", start + 4)
        pos = len(text) if end < 0 else end + 3
        start = text.find("<!--", pos)
    out.append(text[pos:])
    return "".join(out)
