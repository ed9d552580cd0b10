"""Tests for shared.ingest: sniffing, parsers, limits and chunking."""
