"""Hostile text inputs stay near-linear: no regex may rescan the document from each opener."""

from __future__ import annotations

import time

import pytest

from shared.ingest import chunk_document, parse_document

# Each input took tens of seconds or more before its scanner was made linear; the bound is
# generous so slow CI machines pass while a quadratic regression still fails.
CASES = {
    "unclosed markdown links": b"# T\n\n" + b"[a](" * 200_000,
    "unclosed markdown bold": b"# T\n\n" + b"**a *b _c " * 100_000,
    "unclosed html comment": b"<html><body><p>hi</p><!--" + b"x" * 1_000_000,
    "deeply nested html": b"<html><body>" + b"<div>" * 50_000 + b"text" + b"</div>" * 50_000,
    "run of bare headings": b"HEADING LINE\n" * 50_000,
    "one sentence of a million characters": b"word " * 200_000,
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_hostile_input_is_processed_in_bounded_time(data):
    started = time.monotonic()
    chunks = chunk_document(parse_document(data))
    assert chunks
    assert time.monotonic() - started < 15
