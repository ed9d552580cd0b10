"""What a workspace may use: its billing account row and the plan that row entitles it to right now."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.billing.plans import Catalog, Plan
from shared.db import Conn, one

_log = logging.getLogger(__name__)

# Stripe subscription statuses. Paid: the plan applies. Delinquent: a payment failed; the plan
# applies for the grace period only. Anything else (incomplete, incomplete_expired, canceled,
# paused, none) is the free plan: never grant what was not paid for.
PAID = frozenset({"active", "trialing"})
DELINQUENT = frozenset({"past_due", "unpaid"})
# Final for a given subscription: Stripe never moves a subscription out of these.
TERMINAL = frozenset({"canceled", "incomplete_expired"})
LIVE = PAID | DELINQUENT


@dataclass(frozen=True)
class Entitlement:
    plan: Plan
    status: str | None  # the subscription's Stripe status, None without one
    grace_ends_at: dt.datetime | None = None  # set while a failed payment is being retried
    downgraded: bool = False  # the paid plan lapsed after the grace period

    @property
    def in_grace(self) -> bool:
        return self.grace_ends_at is not None and not self.downgraded


def load_account(conn: Conn, tenant_id: UUID) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM billing_accounts WHERE tenant_id = %s", (tenant_id,)).fetchone()


def lock_account(conn: Conn, tenant_id: UUID) -> dict[str, Any]:
    """The workspace's account row, created if missing, locked until the transaction ends.

    One statement: ON CONFLICT DO UPDATE takes the row lock, so concurrent callers queue here
    (uploads counting documents, checkouts creating the one Stripe customer, webhook updates).
    """
    return one(
        conn.execute(
            "INSERT INTO billing_accounts AS a (tenant_id) VALUES (%s)"
            " ON CONFLICT (tenant_id) DO UPDATE SET updated_at = a.updated_at RETURNING *",
            (tenant_id,),
        ).fetchone()
    )


def entitlement(
    account: dict[str, Any] | None, plans: Catalog, grace_days: int, now: dt.datetime | None = None
) -> Entitlement:
    """The plan in force for this account at ``now``; computed on read, so a lapse needs no job."""
    if account is None or not account.get("subscription_status"):
        return Entitlement(plans.free, None)
    status = account["subscription_status"]
    if status not in LIVE:
        return Entitlement(plans.free, status)
    plan = plans.for_prices(account["subscription_prices"] or [])
    if plan is None:
        # A price no plan sells (e.g. removed from BILLING_PLANS): grant nothing rather than guess.
        _log.warning(
            "subscription %s has no known plan price %s", account["subscription_id"], account["subscription_prices"]
        )
        return Entitlement(plans.free, status)
    now = now or dt.datetime.now(dt.UTC)
    failed_at = account.get("payment_failed_at")
    if failed_at is None and status in DELINQUENT:
        # Delinquent without a recorded failure (the invoice event is late): count from when we learned it.
        failed_at = dt.datetime.fromtimestamp(account["subscription_version"], dt.UTC)
    if failed_at is None:
        return Entitlement(plan, status)
    grace_ends = failed_at + dt.timedelta(days=grace_days)
    if now >= grace_ends:
        return Entitlement(plans.free, status, grace_ends, downgraded=True)
    return Entitlement(plan, status, grace_ends)
