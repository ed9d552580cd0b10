"""Resource limits for parsing untrusted uploads, and the guards that enforce them."""

from __future__ import annotations

import io
import re
import struct
import time
import zipfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from shared.ingest.errors import CorruptDocument, ParseTimeout, TooLarge, UnsupportedType

MiB = 1024 * 1024

# Methods python-docx files use. Anything else (bzip2, lzma, deflate64...) is refused rather
# than handed to a decompressor nobody here has hardened against.
_ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_READ_CHUNK = 64 * 1024
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps for one parse. Defaults fit a Consumption-plan function (1.5 GB, 10 min)."""

    max_bytes: int = 50 * MiB
    max_pages: int = 2_000
    max_chars: int = 5_000_000
    max_seconds: float = 120.0
    zip_max_entries: int = 10_000
    zip_max_inflated: int = 200 * MiB
    zip_max_ratio: float = 100.0
    # Ratios are judged only past this many inflated bytes: a 40 KiB styles.xml that deflates
    # 200:1 is normal and harmless; the ratio matters when the absolute size does.
    zip_ratio_floor: int = 1 * MiB
    # Passed to pypdf as its per-stream decompression caps (its own default is 75 MB).
    pdf_max_stream_bytes: int = 75 * MiB
    # Spreadsheets and CSV: rows with any content, and cells read (empty ones included, since a
    # sparse sheet still costs a cell per column up to its last one). Also caps PPTX table cells.
    max_rows: int = 200_000
    max_cells: int = 2_000_000
    # XML that a library parses whole into a tree when it opens the file (python-pptx: every part of a
    # deck). lxml took ~16 bytes of memory per byte of short-element XML (a 75 MB slide: +1.24 GB), so
    # the 200 MB inflate cap alone let a 5 MB upload exhaust a 1.5 GB instance.
    max_loaded_xml: int = 32 * MiB
    # The same for an XLSX's parts other than its worksheets (streamed) and shared strings (counted
    # against max_cells): openpyxl builds the style sheet as Python objects, ~26 bytes per byte of XML
    # (500,000 cell formats in a 31 MB styles.xml: +820 MB). Excel's ~64,000 formats take ~4 MB.
    xlsx_max_loaded_xml: int = 8 * MiB

    def deadline(self) -> Deadline:
        """A fresh wall-time budget for one parse."""
        return Deadline(self.max_seconds)


DEFAULT_LIMITS = Limits()


class Deadline:
    """Wall-time budget checked between units of work (pages, lines, ZIP chunks)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._expires = time.monotonic() + seconds

    def check(self, where: str = "") -> None:
        """Raise :class:`ParseTimeout` once the budget is spent."""
        if time.monotonic() > self._expires:
            suffix = f" (stopped while reading {where})" if where else ""
            raise ParseTimeout(
                f"Reading this document took longer than the {self.seconds:g}-second limit"
                f"{suffix}. Try splitting it into smaller files.",
                limit="max_seconds",
                value=self.seconds,
            )


def check_size(data: bytes, limits: Limits) -> None:
    """Reject uploads over ``max_bytes`` before any parser sees them."""
    if len(data) > limits.max_bytes:
        raise TooLarge(
            f"The file is {_mib(len(data))} ({len(data):,} bytes), over the {_mib(limits.max_bytes)} "
            "limit (max_bytes). Split it into smaller files.",
            limit="max_bytes",
            value=limits.max_bytes,
        )


def declared_zip_entries(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record, or None if there is none.

    Read by hand so a ZIP claiming millions of entries is refused before ``zipfile`` builds a
    ``ZipInfo`` for each of them.
    """
    eocd = data.rfind(_EOCD, max(0, len(data) - 65_557))  # 22-byte record + 64 KiB comment
    if eocd < 0 or eocd + 22 > len(data):
        return None
    count: int = struct.unpack_from("<H", data, eocd + 10)[0]
    if count != 0xFFFF:
        return count
    locator = eocd - 20  # ZIP64: the real count lives in the ZIP64 end record
    if locator < 0 or data[locator : locator + 4] != _EOCD64_LOCATOR:
        return count
    eocd64: int = struct.unpack_from("<Q", data, locator + 8)[0]
    if eocd64 + 40 > len(data):
        return count
    count64: int = struct.unpack_from("<Q", data, eocd64 + 32)[0]
    return count64


def check_zip(data: bytes, limits: Limits) -> zipfile.ZipFile:
    """Open a ZIP after judging its central directory; nothing is inflated here.

    Checks entry count, encryption, compression methods, declared sizes (per entry and in
    total) and compression ratios. Declared sizes can lie, so whoever reads members must go
    through :func:`read_zip_member` (or :func:`verify_zip_members`), which caps actual output.
    """
    check_zip_entry_count(declared_zip_entries(data) or 0, limits)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, OSError) as exc:
        raise CorruptDocument(
            "The file looks like a ZIP-based document (such as .docx) but its archive is damaged and cannot be opened."
        ) from exc
    infos = archive.infolist()
    check_zip_entry_count(len(infos), limits)
    total = 0
    for info in infos:
        _check_entry(info, limits)
        total += info.file_size
    _check_total(total, len(data), limits)
    return archive


def verify_zip_members(archive: zipfile.ZipFile, limits: Limits, deadline: Deadline) -> int:
    """Inflate every member in bounded chunks, discarding output; returns total bytes.

    Proves the declared sizes true before a library that trusts them (python-docx) opens the
    same bytes. Memory stays at one chunk whatever the archive holds.
    """
    budget = _InflateBudget(limits)
    for info in archive.infolist():
        for _ in _iter_member(archive, info, budget, deadline):
            pass
    return budget.total


def read_zip_member(archive: zipfile.ZipFile, name: str, limits: Limits, deadline: Deadline) -> bytes:
    """Read one member with the same caps as :func:`verify_zip_members`."""
    budget = _InflateBudget(limits)
    return b"".join(_iter_member(archive, archive.getinfo(name), budget, deadline))


class _InflateBudget:
    """Running total of actually inflated bytes across one archive."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0

    def add(self, info: zipfile.ZipInfo, member_bytes: int, chunk: int) -> None:
        self.total += chunk
        if member_bytes > info.file_size:  # the directory understated this member
            raise CorruptDocument(
                f"The archive entry {info.filename!r} inflates to more than the "
                f"{info.file_size:,} bytes it declares; the file is damaged or malicious."
            )
        if self.total > self.limits.zip_max_inflated:
            raise _zip_too_large("zip_max_inflated", self.limits.zip_max_inflated)


def _iter_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _InflateBudget, deadline: Deadline
) -> Iterator[bytes]:
    """Yield a member's bytes chunk by chunk, enforcing the budget as they appear."""
    produced = 0
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(_READ_CHUNK):
                produced += len(chunk)
                budget.add(info, produced, len(chunk))
                deadline.check("the archive")
                yield chunk
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        # zipfile stops at the declared size and then fails the CRC when the size lied.
        raise CorruptDocument(
            f"The archive entry {info.filename!r} is damaged (its contents do not match what the archive declares)."
        ) from exc


# A DTD in an Office part: OOXML never needs one, and entity definitions are how billion-laughs and
# external-entity attacks start. Refused before any XML parser sees the part.
_XML_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_XML_MARKER_TAIL = max(len(marker) for marker in _XML_DTD_MARKERS) - 1
_XML_PART_SUFFIXES = (".xml", ".rels", ".vml")


def verify_office_members(archive: zipfile.ZipFile, limits: Limits, deadline: Deadline) -> int:
    """:func:`verify_zip_members` for an Office package, refusing any part that declares a DTD or entities.

    Every member is inflated in bounded chunks (the same caps), and its bytes are searched for
    ``<!DOCTYPE`` and ``<!ENTITY`` across chunk boundaries. Returns the total inflated bytes.
    """
    budget = _InflateBudget(limits)
    for info in archive.infolist():
        tail = b""
        is_xml: bool | None = info.filename.lower().endswith(_XML_PART_SUFFIXES) or None
        for chunk in _iter_member(archive, info, budget, deadline):
            if is_xml is None:  # decided by the first bytes: binary parts (printer settings, images) may hold anything
                is_xml = chunk.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")
            if not is_xml:
                continue
            window = tail + chunk
            if any(marker in window for marker in _XML_DTD_MARKERS):
                raise UnsupportedType(
                    f"The part {info.filename!r} of this file declares XML entities (a DTD), which Office "
                    "documents never need and which can make a parser expand text without bound. It was not read."
                )
            tail = window[-_XML_MARKER_TAIL:]
    return budget.total


def count_xml_elements(archive: zipfile.ZipFile, pattern: re.Pattern[bytes], limits: Limits, deadline: Deadline) -> int:
    """How many times ``pattern`` (an element's start tag, at most 64 bytes) occurs in the package's XML
    parts, inflated in bounded chunks with the same caps as :func:`verify_zip_members`."""
    budget = _InflateBudget(limits)
    count = 0
    for info in archive.infolist():
        if not info.filename.lower().endswith(_XML_PART_SUFFIXES):
            continue
        tail = b""
        for chunk in _iter_member(archive, info, budget, deadline):
            window = tail + chunk
            count += sum(1 for match in pattern.finditer(window) if match.end() > len(tail))
            tail = window[-64:]
    return count


def check_loaded_xml(
    archive: zipfile.ZipFile, limits: Limits, *, limit: str = "max_loaded_xml", streamed: Collection[str] = ()
) -> None:
    """Refuse a package whose XML parts (but the ``streamed`` ones) declare more than the ``limit`` field
    of ``limits`` in all.

    Call after :func:`verify_office_members`, which proved no part inflates past what it declares.
    """
    cap: int = getattr(limits, limit)
    total = sum(
        info.file_size
        for info in archive.infolist()
        if info.filename.lower().endswith(_XML_PART_SUFFIXES) and info.filename not in streamed
    )
    if total > cap:
        raise TooLarge(
            f"The XML inside this file that is read into memory at once unpacks to {_mib(total)}, over the "
            f"{_mib(cap)} limit ({limit}). Split it into smaller files, or save it again from Office.",
            limit=limit,
            value=cap,
        )


def too_many_rows(limits: Limits) -> TooLarge:
    """The error for a table (spreadsheet, CSV) past ``max_rows``."""
    return TooLarge(
        f"This document has more than {limits.max_rows:,} rows (max_rows). Split it into smaller files.",
        limit="max_rows",
        value=limits.max_rows,
    )


def too_many_cells(limits: Limits) -> TooLarge:
    """The error for tables past ``max_cells`` (empty cells up to each row's last one count)."""
    return TooLarge(
        f"This document has more than {limits.max_cells:,} table cells (max_cells). Split it into smaller "
        "files, or delete unused columns (a value far to the right makes every row that wide).",
        limit="max_cells",
        value=limits.max_cells,
    )


def check_zip_entry_count(count: int, limits: Limits) -> None:
    """Raise :class:`TooLarge` for archives with more than ``zip_max_entries`` entries."""
    if count > limits.zip_max_entries:
        raise TooLarge(
            f"The archive inside this file has {count:,} entries; the limit is "
            f"{limits.zip_max_entries:,} (zip_max_entries).",
            limit="zip_max_entries",
            value=limits.zip_max_entries,
        )


def _check_entry(info: zipfile.ZipInfo, limits: Limits) -> None:
    if info.flag_bits & 0x1:
        raise UnsupportedType("This document is password-protected. Remove the password and upload it again.")
    if info.compress_type not in _ZIP_METHODS:
        raise UnsupportedType(
            f"The archive entry {info.filename!r} uses a compression method Folio does not "
            "read. Re-save the document from Word and upload it again."
        )
    if info.file_size > limits.zip_max_inflated:
        raise _zip_too_large("zip_max_inflated", limits.zip_max_inflated)
    ratio = _ratio(info.file_size, info.compress_size)
    if info.file_size > limits.zip_ratio_floor and ratio > limits.zip_max_ratio:
        raise _zip_too_large("zip_max_ratio", limits.zip_max_ratio)


def _check_total(total: int, packed: int, limits: Limits) -> None:
    if total > limits.zip_max_inflated:
        raise _zip_too_large("zip_max_inflated", limits.zip_max_inflated)
    if total > limits.zip_ratio_floor and _ratio(total, packed) > limits.zip_max_ratio:
        raise _zip_too_large("zip_max_ratio", limits.zip_max_ratio)


def _ratio(inflated: int, packed: int) -> float:
    return inflated / max(packed, 1)


def _zip_too_large(limit: str, value: float) -> TooLarge:
    if limit == "zip_max_ratio":
        detail = (
            f"The archive inside this file expands more than {value:g}:1 when unpacked "
            f"(zip_max_ratio), which is how decompression bombs look. It was not unpacked."
        )
    else:
        detail = (
            f"The archive inside this file unpacks to more than the {_mib(int(value))} limit "
            f"(zip_max_inflated). It was not unpacked."
        )
    return TooLarge(detail, limit=limit, value=value)


def _mib(size: int) -> str:
    """ "50 MiB" for a whole number of MiB, else one decimal ("50.3 MiB")."""
    return f"{size // MiB} MiB" if size % MiB == 0 else f"{size / MiB:.1f} MiB"
