"""The billing API's use cases: the overview, starting a Checkout, and opening the Customer Portal."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import urlencode

from shared import access, audit
from shared.billing.entitlements import LIVE, Entitlement, entitlement, load_account, lock_account
from shared.billing.plans import catalog
from shared.billing.stripe_api import get_gateway
from shared.billing.usage import period_bounds, usage_report
from shared.config import Settings
from shared.db import Database
from shared.errors import Conflict, Invalid
from shared.tenancy import Caller, Role

_log = logging.getLogger(__name__)

# Within this window a repeated checkout request for the same plan is the same attempt: it gets the
# same idempotency key, so Stripe answers with the same session instead of opening a second one
# (a double click, a retried request). Stripe keeps idempotency keys for 24 hours.
CHECKOUT_ATTEMPT_WINDOW = dt.timedelta(hours=1)


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def overview(db: Database, settings: Settings, caller: Caller) -> dict[str, Any]:
    """Plan in force, subscription state, this month's period and usage against every limit."""
    caller.require(Role.VIEWER)
    plans = catalog(settings)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        account = load_account(conn, caller.tenant_id)
        granted = entitlement(account, plans, settings.billing_grace_days)
        with access.whole_workspace(conn, caller):  # the plan counts every collection's documents
            usage = usage_report(conn, caller.tenant_id, granted)
    start, end = period_bounds()
    subscription = None
    if account and account["subscription_id"]:
        subscription = {
            "id": account["subscription_id"],
            "status": account["subscription_status"],
            "plan": (plans.for_prices(account["subscription_prices"] or []) or plans.free).name,
            "currentPeriodStart": _iso(account["current_period_start"]),
            "currentPeriodEnd": _iso(account["current_period_end"]),
            "cancelAtPeriodEnd": account["cancel_at_period_end"],
            "paymentFailedAt": _iso(account["payment_failed_at"]),
            "graceEndsAt": _iso(granted.grace_ends_at),
        }
    return {
        "plan": granted.plan.name,
        "status": _status(granted),
        "subscription": subscription,
        "period": {"start": _iso(start), "end": _iso(end)},
        "usage": usage,
        "plans": [p.describe() for p in plans.plans.values()],
    }


def _status(granted: Entitlement) -> str:
    if granted.downgraded:
        return "downgraded"  # a payment failed and the grace period is over
    if granted.in_grace:
        return "grace"
    return granted.status or "none"


def start_checkout(db: Database, settings: Settings, caller: Caller, plan_name: str) -> dict[str, Any]:
    """A Stripe Checkout Session (subscription mode) for ``plan_name``; owners only.

    The workspace's Stripe customer is created on its first checkout, under the account row lock
    (and with an idempotency key per workspace), so there is exactly one, stored on the account.
    """
    caller.require(Role.OWNER)
    plans = catalog(settings)
    plan = plans.get(plan_name)
    if plan is None:
        raise Invalid(f"There is no plan {plan_name!r}; choose one of {sorted(plans.plans)}.", fields=["plan"])
    if plan.name == plans.free.name:
        raise Invalid(f"The {plan.name} plan needs no checkout.", fields=["plan"])
    if plan.price is None:
        # The catalogue lists a plan nobody can buy yet: the caller chose well, there is just nothing to sell.
        _log.error("checkout of plan %r refused: it has no Stripe price in BILLING_PLANS", plan.name)
        raise Conflict(
            f"The {plan.name} plan is not for sale yet; choose another plan or try again later.", fields=["plan"]
        )
    gateway = get_gateway(settings)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        account = lock_account(conn, caller.tenant_id)
        if account["subscription_status"] in LIVE:
            current = plans.for_prices(account["subscription_prices"] or []) or plans.free
            raise Conflict(
                f"This workspace already has a subscription ({current.name}, "
                f"{account['subscription_status']}); change or cancel it in the billing portal."
            )
        customer = account["stripe_customer_id"]
        if customer is None:
            name = conn.execute("SELECT name FROM tenants WHERE tenant_id = %s", (caller.tenant_id,)).fetchone()
            customer = gateway.create_customer(
                caller.tenant_id,
                name["name"] if name else str(caller.tenant_id),
                idempotency_key=f"folio-customer-{caller.tenant_id}",
            )
            conn.execute(
                "UPDATE billing_accounts SET stripe_customer_id = %s WHERE tenant_id = %s", (customer, caller.tenant_id)
            )
            audit.record(conn, caller, "billing.customer_created", "customer", customer)
        started = account["checkout_started_at"]
        same_attempt = (
            account["checkout_plan"] == plan.name
            and started is not None
            and dt.datetime.now(dt.UTC) - started < CHECKOUT_ATTEMPT_WINDOW
        )
        attempt = account["checkout_attempt"] if same_attempt else account["checkout_attempt"] + 1
        if not same_attempt:
            conn.execute(
                "UPDATE billing_accounts SET checkout_plan = %s, checkout_attempt = %s,"
                " checkout_started_at = now() WHERE tenant_id = %s",
                (plan.name, attempt, caller.tenant_id),
            )
            audit.record(conn, caller, "billing.checkout_started", "plan", plan.name, attempt=attempt)
    # The customer is committed before the session exists, so the webhook can always map it back.
    session = gateway.create_checkout_session(
        customer=customer,
        tenant_id=caller.tenant_id,
        plan=plan.name,
        price=plan.price,
        metered_prices=plan.metered_prices,
        success_url=_with_query(settings.billing_return_url, checkout="success") + "&session_id={CHECKOUT_SESSION_ID}",
        cancel_url=_with_query(settings.billing_return_url, checkout="cancel"),
        idempotency_key=f"folio-checkout-{caller.tenant_id}-{plan.name}-{attempt}",
    )
    return {"url": session["url"], "sessionId": session["id"], "expiresAt": session["expiresAt"], "plan": plan.name}


def open_portal(db: Database, settings: Settings, caller: Caller) -> dict[str, Any]:
    """A Stripe Customer Portal session for the workspace's customer; owners only."""
    caller.require(Role.OWNER)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        account = load_account(conn, caller.tenant_id)
    if account is None or account["stripe_customer_id"] is None:
        raise Conflict("This workspace has no billing account yet; choose a plan first.")
    url = get_gateway(settings).create_portal_session(
        customer=account["stripe_customer_id"], return_url=settings.billing_return_url
    )
    return {"url": url}


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
