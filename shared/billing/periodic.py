"""What the billing timer does each run: send meter events, re-fetch queued subscriptions, prune old event ids.

Each step is independent and idempotent; one failing does not stop the others, and whatever is
left is picked up by the next run. ``python -m shared.cli billing-flush`` runs the same thing by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.billing import outbox
from shared.billing.entitlements import lock_account
from shared.billing.stripe_api import StripeGateway, get_gateway
from shared.billing.subscriptions import Snapshot, apply_snapshot
from shared.config import Settings
from shared.db import Database
from shared.errors import NotFound

_log = logging.getLogger(__name__)

# Stripe retries a webhook for up to three days; ids are kept well beyond that.
EVENT_RETENTION_DAYS = 90
_warned = False


def run(db: Database, settings: Settings, gateway: StripeGateway | None = None) -> dict[str, Any]:
    global _warned
    report: dict[str, Any] = {}
    if gateway is None and (settings.stripe_secret_key is None or not settings.stripe_secret_key.is_set()):
        # Local development without a Stripe key: nothing can be sent; it all waits, nothing is lost.
        if not _warned:
            _log.warning("STRIPE_SECRET_KEY is not set: meter events and subscription re-syncs wait for it")
            _warned = True
    else:
        gateway = gateway or get_gateway(settings)
        flushed = outbox.flush(db, gateway, batch=settings.billing_flush_batch)
        report["meterEvents"] = {"sent": flushed.sent, "failed": flushed.failed}
        report["subscriptionsSynced"] = sync_subscriptions(db, gateway)
    report["eventIdsPruned"] = prune_events(db)
    report["pending"] = outbox.pending(db)
    return report


def sync_subscriptions(db: Database, gateway: StripeGateway, limit: int = 100) -> int:
    """Re-fetch each subscription a webhook asked about and apply what Stripe says now."""
    with db.transaction() as conn:
        # Cross-workspace listing of queued re-fetches only (policy billing_worker, 0004_billing.sql).
        conn.execute("SELECT set_config('app.billing_worker', 'on', true)")
        queued = conn.execute(
            "SELECT tenant_id, subscription_id, sync_requested_at FROM billing_accounts"
            " WHERE sync_requested_at IS NOT NULL ORDER BY sync_requested_at LIMIT %s",
            (limit,),
        ).fetchall()
    synced = 0
    for row in queued:
        try:
            fetched = gateway.retrieve_subscription(row["subscription_id"]) if row["subscription_id"] else None
        except NotFound:
            # Gone at Stripe (e.g. a deleted test-mode object): nothing to learn, so stop asking.
            _log.error("subscription %s no longer exists at Stripe", row["subscription_id"])
            fetched = None
        except Exception as exc:  # stays queued for the next run
            _log.warning("re-fetch of subscription %s failed: %s", row["subscription_id"], exc)
            continue
        with db.transaction(row["tenant_id"]) as conn:
            account = lock_account(conn, row["tenant_id"])
            outcome = "nothing to fetch"
            if fetched is not None:
                subscription, server_time = fetched
                outcome = apply_snapshot(conn, account, Snapshot.from_object(subscription), server_time)
            # Only the request that was served is cleared: one queued meanwhile stays for the next run.
            conn.execute(
                "UPDATE billing_accounts SET sync_requested_at = NULL WHERE tenant_id = %s AND sync_requested_at = %s",
                (row["tenant_id"], row["sync_requested_at"]),
            )
        _log.info("subscription %s re-fetched: %s", row["subscription_id"], outcome)
        synced += 1
    return synced


def prune_events(db: Database) -> int:
    with db.transaction() as conn:
        return conn.execute(
            "DELETE FROM stripe_events WHERE received_at < now() - make_interval(days => %s)", (EVENT_RETENTION_DAYS,)
        ).rowcount
