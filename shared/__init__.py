"""Folio's product code: everything that matters, testable without the Functions host."""
