"""How long a throttled HTTP service asks us to wait: `retry-after-ms` (Azure) or `Retry-After`."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any


def retry_after(headers: Any) -> float | None:
    """Seconds to wait, or None when the response does not say. ``Retry-After`` may be seconds or
    an HTTP date; Azure OpenAI's ``retry-after-ms`` is more precise and wins when present."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None
