"""Hostile uploads against today's formats (CSV/TSV sniffing, XLSX, PPTX, OCR page counting): each test is an attack."""

from __future__ import annotations

import time

import pytest

from shared.ingest.parsers import parse_document
from shared.ingest.sniff import sniff, sniff_dialect

# csv.Sniffer's quote-guessing regexes backtrack quadratically (and worse) over runs of quotes and
# delimiters. Every text upload is sniffed for CSV, so 64 KB of these cost the indexer about a minute
# of CPU before any parse deadline was checked (measured: 22 s in sniff(), 34 s more in the parse).
_QUOTE_RUNS = [
    pytest.param((',"' * 16_000 + "\n") * 2, id="comma-quote"),
    pytest.param((", '" * 10_000 + "\n") * 2, id="comma-space-apostrophe"),
    pytest.param(('"a",' * 8_000 + "\n") * 2, id="quoted-cells"),
    pytest.param(('He said, "Hello, there," and she answered, "No." Then, "why?" ' * 20 + "\n") * 50, id="prose"),
]


@pytest.mark.parametrize("text", _QUOTE_RUNS)
def test_quote_runs_in_a_text_file_are_sniffed_in_linear_time(text):
    started = time.perf_counter()
    sniff(text.encode())
    sniff_dialect(text)
    assert time.perf_counter() - started < 1.5


@pytest.mark.parametrize("text", _QUOTE_RUNS)
def test_quote_runs_cost_the_whole_parse_little(text):
    started = time.perf_counter()
    try:
        parse_document(text.encode())
    except Exception:  # refusing the file is fine; taking a minute is not
        pass
    assert time.perf_counter() - started < 3.0
