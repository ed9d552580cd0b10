"""Event Grid trigger: BlobCreated/BlobDeleted in the upload container → document version → index job."""

from __future__ import annotations

import logging

import azure.functions as func

from blueprints import new_blueprint
from shared.blob_events import handle_blob_event, parse_event
from shared.bootstrap import services
from shared.errors import Invalid
from shared.telemetry import bind_invocation, configure_logging, unbind_invocation

bp = new_blueprint()
_log = logging.getLogger("folio.events")


@bp.event_grid_trigger(arg_name="event")
def on_blob_event(event: func.EventGridEvent, context: func.Context) -> None:
    """Malformed events are logged and dropped (a retry cannot fix them); transient errors raise so
    Event Grid redelivers."""
    token = bind_invocation(getattr(context, "invocation_id", None))
    try:
        parts = services()
        settings = parts.settings
        configure_logging(settings)
        try:
            parsed = parse_event(event.id, event.event_type, event.subject, event.get_json())
        except Invalid as exc:
            _log.warning("dropping malformed blob event %s: %s", event.id, exc.detail)
            return
        if parsed is None:
            return
        outcome = handle_blob_event(parts.database, parts.job_queue, parsed, settings=settings, blobs=parts.blobs)
        _log.info("blob event %s %s -> %s", event.id, event.event_type, outcome)
    finally:
        unbind_invocation(token)
