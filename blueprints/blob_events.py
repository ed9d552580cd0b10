"""Event Grid trigger: BlobCreated/BlobDeleted in the upload container → document version → index job."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.blob_events import handle_blob_event, parse_event
from shared.config import get_settings
from shared.db import get_database
from shared.errors import Invalid
from shared.queue import get_job_queue
from shared.storage import get_blob_store
from shared.telemetry import bind_invocation, configure_logging, unbind_invocation

bp = func.Blueprint()
_log = logging.getLogger("folio.events")


@bp.event_grid_trigger(arg_name="event")
def on_blob_event(event: func.EventGridEvent, context: func.Context) -> None:
    """Malformed events are logged and dropped (a retry cannot fix them); transient errors raise so
    Event Grid redelivers."""
    token = bind_invocation(getattr(context, "invocation_id", None))
    try:
        settings = get_settings()
        configure_logging(settings)
        try:
            parsed = parse_event(event.id, event.event_type, event.subject, event.get_json())
        except Invalid as exc:
            _log.warning("dropping malformed blob event %s: %s", event.id, exc.detail)
            return
        if parsed is None:
            return
        db = get_database()
        outcome = handle_blob_event(db, get_job_queue(settings, db), parsed, container=settings.upload_container,
                                    blobs=get_blob_store(settings), max_bytes=settings.max_upload_bytes)
        _log.info("blob event %s %s -> %s", event.id, event.event_type, outcome)
    finally:
        unbind_invocation(token)
