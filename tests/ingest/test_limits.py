"""ZIP bomb guards, size caps, deadlines and the error hierarchy."""

from __future__ import annotations

import io
import struct
import time
import zipfile

import pytest

from shared.errors import Invalid
from shared.ingest import (
    CorruptDocument,
    DocumentRejected,
    EmptyDocument,
    Limits,
    ParseTimeout,
    TooLarge,
    UnsupportedType,
    check_zip,
    parse_document,
)
from shared.ingest.limits import Deadline, declared_zip_entries, verify_zip_members

from .fixtures import docx_shaped_zip, lying_zip, many_entries_zip, zip_bomb


@pytest.fixture
def no_inflation(monkeypatch):
    """Fail the test if anything opens a ZIP member for reading (the first step of inflating)."""
    original = zipfile.ZipFile.open

    def guarded(self, name, mode="r", *args, **kwargs):
        if mode == "r":
            raise AssertionError(f"ZIP member {name!r} was opened for reading")
        return original(self, name, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", guarded)


def test_default_limits_are_the_documented_ones():
    limits = Limits()
    assert limits.max_bytes == 50 * 1024 * 1024
    assert limits.max_pages == 2_000
    assert limits.max_chars == 5_000_000
    assert limits.max_seconds == 120
    assert limits.zip_max_entries == 10_000
    assert limits.zip_max_inflated == 200 * 1024 * 1024
    assert limits.zip_max_ratio == 100


def test_docx_zip_bomb_is_rejected_before_inflating(no_inflation):
    bomb = zip_bomb()  # 64 MiB of zeros in ~65 KiB
    started = time.monotonic()
    with pytest.raises(TooLarge) as caught:
        parse_document(bomb)
    assert caught.value.limit == "zip_max_ratio"
    assert "100:1" in caught.value.detail and "not unpacked" in caught.value.detail
    assert time.monotonic() - started < 2


def test_zip_declaring_more_than_the_inflate_cap_is_rejected_before_inflating(no_inflation):
    limits = Limits(zip_max_inflated=16 * 1024 * 1024, zip_max_ratio=10_000)
    with pytest.raises(TooLarge) as caught:
        check_zip(zip_bomb(32 * 1024 * 1024), limits)
    assert caught.value.limit == "zip_max_inflated"
    assert "more than the 16 MiB limit" in str(caught.value)


def test_zip_with_more_than_10000_entries_is_rejected(no_inflation):
    data = many_entries_zip(10_001)
    assert declared_zip_entries(data) == 10_003
    with pytest.raises(TooLarge) as caught:
        parse_document(data)
    assert caught.value.limit == "zip_max_entries"
    assert "10,003 entries" in str(caught.value) and "10,000" in str(caught.value)


def test_zip_whose_declared_sizes_lie_is_stopped_while_reading():
    data = lying_zip(actual=4 * 1024 * 1024, declared=200_000)
    archive = check_zip(data, Limits())  # the directory alone looks harmless
    with pytest.raises(CorruptDocument, match=r"word/document\.xml"):
        verify_zip_members(archive, Limits(), Deadline(60))


def test_lying_zip_never_reaches_python_docx(monkeypatch):
    import docx

    def refuse(*args, **kwargs):
        raise AssertionError("python-docx was handed an unverified archive")

    monkeypatch.setattr(docx, "Document", refuse)
    with pytest.raises(CorruptDocument):
        parse_document(lying_zip())


def test_inflated_total_is_capped_on_actual_bytes_read():
    # Four honest 1 MiB members: the directory total (4 MiB) is what the cap sees first...
    members = {f"word/media/{i}.bin": bytes(range(256)) * 4096 for i in range(4)}
    data = docx_shaped_zip({"word/document.xml": b"<w:document/>", **members})
    with pytest.raises(TooLarge) as caught:
        check_zip(data, Limits(zip_max_inflated=3 * 1024 * 1024))
    assert caught.value.limit == "zip_max_inflated"
    # ...and the running count enforces the same cap while reading.
    archive = zipfile.ZipFile(io.BytesIO(data))
    with pytest.raises(TooLarge):
        verify_zip_members(archive, Limits(zip_max_inflated=3 * 1024 * 1024), Deadline(60))


def test_small_highly_compressible_parts_are_not_mistaken_for_bombs():
    # A 200 KiB styles part compresses ~500:1 but is harmless at that size.
    data = docx_shaped_zip({"word/document.xml": b"<w:document/>", "word/styles.xml": b" " * 200_000})
    archive = check_zip(data, Limits())
    assert verify_zip_members(archive, Limits(), Deadline(60)) > 200_000


def test_password_protected_zip_entry_is_unsupported():
    data = bytearray(docx_shaped_zip({"word/document.xml": b"<w:document/>"}))
    central = data.find(b"PK\x01\x02")
    flags = struct.unpack_from("<H", data, central + 8)[0]
    struct.pack_into("<H", data, central + 8, flags | 0x1)
    with pytest.raises(UnsupportedType, match="password"):
        check_zip(bytes(data), Limits())


def test_file_over_max_bytes_is_rejected_before_sniffing():
    with pytest.raises(TooLarge) as caught:
        parse_document(b"x" * 2048, Limits(max_bytes=1024))
    assert caught.value.limit == "max_bytes"
    assert "max_bytes" in str(caught.value)


def test_deadline_raises_parse_timeout_naming_the_limit():
    deadline = Deadline(0)
    time.sleep(0.001)
    with pytest.raises(ParseTimeout) as caught:
        deadline.check("page 7")
    assert "page 7" in str(caught.value)
    assert caught.value.extensions["limit"] == "max_seconds"


def test_text_parse_with_no_time_left_times_out():
    with pytest.raises(ParseTimeout, match="longer than"):
        parse_document(b"Some text.\n" * 10, Limits(max_seconds=-1))


def test_too_much_text_is_rejected_naming_max_chars():
    with pytest.raises(TooLarge) as caught:
        parse_document(b"A sentence of text.\n\n" * 100, Limits(max_chars=500))
    assert caught.value.limit == "max_chars"
    assert "500" in str(caught.value)


@pytest.mark.parametrize("cls", [UnsupportedType, EmptyDocument, CorruptDocument, TooLarge, ParseTimeout])
def test_rejections_share_a_permanent_base_and_are_invalid(cls):
    assert issubclass(cls, DocumentRejected)
    assert issubclass(cls, Invalid)


def test_rejection_slugs_are_distinct():
    slugs = {c.type_slug for c in (UnsupportedType, EmptyDocument, CorruptDocument, TooLarge, ParseTimeout)}
    assert len(slugs) == 5


def test_a_file_just_over_the_byte_limit_is_told_so_without_a_rounding_contradiction():
    limit = 50 * 1024 * 1024
    with pytest.raises(TooLarge) as caught:
        parse_document(b"x" * (limit + 10), Limits(max_bytes=limit))
    message = str(caught.value)
    assert "over the 50 MiB limit" in message and "52,428,810 bytes" in message
    assert "the limit is 50.0 MiB" not in message
