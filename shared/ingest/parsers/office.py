"""What the Office parsers built on python-pptx and openpyxl share."""

from __future__ import annotations

import zipfile
from collections.abc import Callable

# What a damaged package raises from inside python-pptx or openpyxl (they do not wrap their errors).
MALFORMED = (KeyError, ValueError, TypeError, AttributeError, IndexError, SyntaxError, zipfile.BadZipFile, OSError)


def core_title(read: Callable[[], object]) -> str | None:
    """The document properties' title, as ``read`` returns it; None when absent, blank or unreadable."""
    try:
        title = read()
    except MALFORMED:
        return None
    return title if isinstance(title, str) and title.strip() else None
