"""Owners' insights: GET /api/insights, and the daily timer that drops question texts past their retention."""

from __future__ import annotations

import logging

import azure.functions as func

from blueprints import new_blueprint, trigger_run
from blueprints._http import ApiRequest, Response, endpoint, ok
from shared import insights

bp = new_blueprint()
_log = logging.getLogger("folio.insights")


@endpoint(bp, "insights", ["GET"])
def insights_get(request: ApiRequest) -> Response:
    days = request.query_int("days", 30, 1, insights.MAX_DAYS)
    return ok(
        insights.report(request.db, request.caller, days=days, retention_days=request.settings.insights_retention_days)
    )


@bp.timer_trigger(arg_name="timer", schedule="0 41 3 * * *", run_on_startup=False, use_monitor=True)
def insights_retention(timer: func.TimerRequest, context: func.Context) -> None:
    """Daily at 03:41 UTC: texts older than INSIGHTS_RETENTION_DAYS become NULL in every workspace."""
    with trigger_run(context) as (parts, settings):
        dropped = insights.drop_expired_texts(parts.database, settings.insights_retention_days)
        # A failed run raises (logged by the host); the next day's run drops whatever is left.
        _log.info("insights retention (past due: %s): %d rows lost their texts", timer.past_due, dropped)
