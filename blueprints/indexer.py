"""Service Bus trigger: run one index job. Raising means "retry"; returning means "done"."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from blueprints import new_blueprint, trigger_run
from shared.indexer import run_job
from shared.jobs import IndexJob

bp = new_blueprint()
_log = logging.getLogger("folio.indexer")


@bp.service_bus_queue_trigger(arg_name="message", queue_name="%INDEX_QUEUE_NAME%", connection="ServiceBusConnection")
def index_document(message: func.ServiceBusMessage, context: func.Context) -> None:
    with trigger_run(context) as (parts, settings):
        # A malformed message raises here and ends in the dead-letter queue for inspection.
        job = IndexJob.from_body(json.loads(message.get_body()))
        last_attempt = (message.delivery_count or 1) >= settings.index_max_delivery
        outcome = run_job(
            parts.database,
            parts.blobs,
            parts.embedder,
            job,
            settings=settings,
            last_attempt=last_attempt,
            analyzer=parts.document_analyzer,
        )
        _log.info(
            "index job %s (%s, delivery %s) -> %s", message.message_id, job.kind, message.delivery_count, outcome.status
        )
