"""Service Bus trigger: run one index job. Raising means "retry"; returning means "done"."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from blueprints import new_blueprint
from shared.bootstrap import services
from shared.indexer import run_job
from shared.jobs import IndexJob
from shared.telemetry import bind_invocation, configure_logging, unbind_invocation

bp = new_blueprint()
_log = logging.getLogger("folio.indexer")


@bp.service_bus_queue_trigger(arg_name="message", queue_name="%INDEX_QUEUE_NAME%", connection="ServiceBusConnection")
def index_document(message: func.ServiceBusMessage, context: func.Context) -> None:
    token = bind_invocation(getattr(context, "invocation_id", None))
    try:
        parts = services()
        settings = parts.settings
        configure_logging(settings)
        # A malformed message raises here and ends in the dead-letter queue for inspection.
        job = IndexJob.from_body(json.loads(message.get_body()))
        last_attempt = (message.delivery_count or 1) >= settings.index_max_delivery
        outcome = run_job(
            parts.database, parts.blobs, parts.embedder, job, settings=settings, last_attempt=last_attempt
        )
        _log.info(
            "index job %s (%s, delivery %s) -> %s", message.message_id, job.kind, message.delivery_count, outcome.status
        )
    finally:
        unbind_invocation(token)
