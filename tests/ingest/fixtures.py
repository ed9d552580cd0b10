"""Builders for test documents, made in memory so no binary fixture is committed."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def page_stream(lines: list[str]) -> bytes:
    """A content stream that shows each line below the previous one in Helvetica 11."""
    ops = [b"BT", b"/F1 11 Tf", b"14 TL", b"72 760 Td"]
    ops += [_pdf_string(line) + b" Tj T*" for line in lines]
    ops.append(b"ET")
    return b"\n".join(ops)


def typeset_stream(lines: list[tuple[str, float, bool]]) -> bytes:
    """A content stream of (text, font size, bold) lines, each below the previous one."""
    ops, y = [], 760.0
    for text, size, bold in lines:
        ops.append(b"BT /F%d %g Tf 72 %g Td " % (2 if bold else 1, size, y) + _pdf_string(text) + b" Tj ET")
        y -= size * 1.4
    return b"\n".join(ops)


def build_pdf(
    pages: list[list[str]] | None = None,
    *,
    streams: list[bytes] | None = None,
    compress: bool = False,
    title: str | None = None,
    catalog_extra: bytes = b"",
) -> bytes:
    """A minimal valid PDF: one page per entry, text lines or raw content streams.

    Streams may use ``/F1`` (Helvetica) and ``/F2`` (Helvetica-Bold)."""
    contents = streams if streams is not None else [page_stream(p) for p in pages or []]
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    bold = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    pages_id = add(b"")  # filled in once the kids are known
    kids = []
    for stream in contents:
        if compress:
            stream = zlib.compress(stream, 9)
            head = b"<< /Length %d /Filter /FlateDecode >>" % len(stream)
        else:
            head = b"<< /Length %d >>" % len(stream)
        content = add(head + b"\nstream\n" + stream + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> >>" % (pages_id, content, font, bold)
            )
        )
    objects[pages_id - 1] = (
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % len(kids)
    )
    info = add(b"<< /Title " + _pdf_string(title) + b" >>") if title else None
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R " % pages_id + catalog_extra + b">>")
    return _serialise(objects, catalog, info)


def _serialise(objects: list[bytes], catalog: int, info: int | None) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out.write(b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/content-types"></Types>'
)


def docx_shaped_zip(members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP with the two names that make the sniffer call it DOCX, plus ``members``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def rewrite_member(data: bytes, name: str, change: Callable[[bytes], bytes]) -> bytes:
    """The same ZIP package (DOCX, PPTX, XLSX) with member ``name``'s bytes passed through ``change``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            target.writestr(info.filename, change(body) if info.filename == name else body)
    return out.getvalue()


def zip_bomb(inflated: int = 64 * 1024 * 1024) -> bytes:
    """A DOCX-shaped ZIP whose document.xml is ``inflated`` zero bytes (about 1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * (1024 * 1024)
    deflated = b"".join(compressor.compress(chunk) for _ in range(inflated // len(chunk)))
    deflated += compressor.flush()
    crc = 0
    for _ in range(inflated // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return _raw_zip([("[Content_Types].xml", CONTENT_TYPES, None), ("word/document.xml", deflated, (inflated, crc))])


def _raw_zip(entries: list[tuple[str, bytes, tuple[int, int] | None]]) -> bytes:
    """Write a ZIP by hand so a pre-deflated member need not be inflated to build it.

    ``entries`` are (name, data, None) to store ``data`` deflated here, or
    (name, raw_deflate, (size, crc)) for data deflated already.
    """
    out = io.BytesIO()
    central = []
    for name, data, known in entries:
        if known is None:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            raw = compressor.compress(data) + compressor.flush()
            size, crc = len(data), zlib.crc32(data)
        else:
            raw, (size, crc) = data, known
        encoded = name.encode()
        offset = out.tell()
        out.write(
            struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(raw), size, len(encoded), 0)
            + encoded
            + raw
        )
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                len(raw),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), start, 0))
    return out.getvalue()


def many_entries_zip(count: int) -> bytes:
    """A DOCX-shaped ZIP with ``count`` tiny extra members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("word/document.xml", b"<w:document/>")
        for index in range(count):
            archive.writestr(f"word/media/{index}.bin", b"x")
    return buffer.getvalue()


def lying_zip(actual: int = 4 * 1024 * 1024, declared: int = 200_000) -> bytes:
    """A DOCX-shaped ZIP whose document.xml declares ``declared`` bytes but inflates to more.

    The declared sizes pass every up-front check (well under the ratio cap), so only the
    capped read can catch the lie.
    """
    name = b"word/document.xml"
    patched = bytearray(docx_shaped_zip({name.decode(): b"lorem ipsum " * (actual // 12)}))
    # The uncompressed-size field: offset 22 in a local header, 24 in a central entry.
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = patched.find(signature)
        while patched[at + name_at : at + name_at + len(name)] != name:
            at = patched.find(signature, at + 4)
            assert at >= 0
        struct.pack_into("<I", patched, at + size_at, declared)
    return bytes(patched)
