"""Trigger adapters: parse the input, call shared/, shape the output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import azure.functions as func

from shared.bootstrap import Services, services
from shared.config import Settings
from shared.telemetry import bind_invocation, configure_logging, unbind_invocation


def new_blueprint() -> func.Blueprint:
    """A Functions blueprint to register triggers on (its constructor is untyped: called here only)."""
    return func.Blueprint()  # type: ignore[no-untyped-call]


@contextmanager
def trigger_run(context: func.Context) -> Iterator[tuple[Services, Settings]]:
    """One run of a non-HTTP trigger: its invocation id bound to every log record, logging configured,
    and the process's services with the settings read once for the run. (HTTP functions: blueprints/_http.py.)"""
    token = bind_invocation(getattr(context, "invocation_id", None))
    try:
        parts = services()
        settings = parts.settings
        configure_logging(settings)
        yield parts, settings
    finally:
        unbind_invocation(token)
