"""Timer trigger (hourly, at minute 17): delete upload blobs no live document accounts for."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from blueprints import new_blueprint, trigger_run

bp = new_blueprint()
_log = logging.getLogger("folio.storage")


@bp.timer_trigger(arg_name="timer", schedule="0 17 * * * *", run_on_startup=False, use_monitor=True)
def blob_sweep(timer: func.TimerRequest, context: func.Context) -> None:
    with trigger_run(context) as (parts, settings):
        from shared import blob_sweep as sweeping  # loaded on the first run, not at cold start

        blobs = parts.blobs
        if not isinstance(blobs, sweeping.SweepableBlobs):
            _log.warning("blob sweep skipped: the blob store cannot list its blobs")
            return
        report = sweeping.sweep(parts.database, blobs, grace=sweeping.grace_period(settings.upload_sas_minutes))
        # Raising would not retry a timer run; the next run finds whatever is left, so log and return.
        _log.info("blob sweep (past due: %s): %s", timer.past_due, json.dumps(report.as_dict()))
