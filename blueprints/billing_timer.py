"""Timer trigger (BILLING_FLUSH_SCHEDULE): send metered usage to Stripe and re-fetch queued subscriptions."""

from __future__ import annotations

import logging

import azure.functions as func

from blueprints import new_blueprint, trigger_run

bp = new_blueprint()
_log = logging.getLogger("folio.billing")


@bp.timer_trigger(arg_name="timer", schedule="%BILLING_FLUSH_SCHEDULE%", run_on_startup=False, use_monitor=True)
def billing_flush(timer: func.TimerRequest, context: func.Context) -> None:
    with trigger_run(context) as (parts, settings):
        from shared.billing import periodic  # loaded on the first run, not at cold start

        report = periodic.run(parts.database, settings)
        # Raising would not retry a timer run; the next run picks up whatever is left, so log and return.
        _log.info("billing timer (past due: %s): %s", timer.past_due, report)
