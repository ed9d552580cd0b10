"""Trigger adapters: parse the input, call shared/, shape the output."""

from __future__ import annotations

import azure.functions as func


def new_blueprint() -> func.Blueprint:
    """A Functions blueprint to register triggers on (its constructor is untyped: called here only)."""
    return func.Blueprint()  # type: ignore[no-untyped-call]
