"""Folio's tests."""
