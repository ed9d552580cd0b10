"""Event Grid trigger: BlobCreated/BlobDeleted in the upload container → document version → index job."""

from __future__ import annotations

import logging

import azure.functions as func

from blueprints import new_blueprint, trigger_run
from shared.blob_events import handle_blob_event, parse_event
from shared.errors import Invalid

bp = new_blueprint()
_log = logging.getLogger("folio.events")


@bp.event_grid_trigger(arg_name="event")
def on_blob_event(event: func.EventGridEvent, context: func.Context) -> None:
    """Malformed events are logged and dropped (a retry cannot fix them); transient errors raise so
    Event Grid redelivers."""
    with trigger_run(context) as (parts, settings):
        try:
            parsed = parse_event(event.id, event.event_type, event.subject, event.get_json())
        except Invalid as exc:
            _log.warning("dropping malformed blob event %s: %s", event.id, exc.detail)
            return
        if parsed is None:
            return
        outcome = handle_blob_event(parts.database, parts.job_queue, parsed, settings=settings, blobs=parts.blobs)
        _log.info("blob event %s %s -> %s", event.id, event.event_type, outcome)
