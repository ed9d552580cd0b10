"""One instance per process, created on first use: how Folio holds its clients (never at import)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessSingleton(Generic[T]):
    """A lazily built, thread-safe, resettable process-wide value."""

    def __init__(self, factory: Callable[[], T], close: Callable[[T], None] | None = None) -> None:
        self._factory = factory
        self._close = close
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
                value = self._value
        return value

    def set(self, value: T | None) -> None:
        """Replace the instance (tests use this to inject a fake); None means "build on next use"."""
        with self._lock:
            self._value = value

    def reset(self) -> None:
        """Close (if it has a closer) and forget the instance; the next get() builds a new one."""
        with self._lock:
            value, self._value = self._value, None
        if value is not None and self._close is not None:
            self._close(value)
