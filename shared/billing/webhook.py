"""The Stripe webhook: verify the signature on the raw body, then apply each event id exactly once.

The signature is the only authentication (the endpoint is anonymous): it is checked on the bytes as
received, before anything is parsed, with Stripe's default 300-second tolerance; a missing, wrong
or stale signature is a 400 and touches nothing. A verified event is applied in one short
transaction that also records its id in ``stripe_events``: a duplicate finds the id and does
nothing; an effect that fails rolls the id back with it, so Stripe's redelivery applies it then.
No call to Stripe happens here (the response must be fast); what needs one, re-fetching a
subscription, is queued on the account row for the billing timer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from shared.billing.entitlements import lock_account
from shared.billing.subscriptions import Snapshot, apply_checkout_completed, apply_invoice, apply_snapshot
from shared.config import Settings
from shared.db import Conn, Database, enter_tenant
from shared.errors import Invalid, PayloadTooLarge

_log = logging.getLogger(__name__)

# Stripe's tolerance default (stripe.Webhook.DEFAULT_TOLERANCE), restated so the rule is visible here.
TOLERANCE_S = 300
# Far above any real event; only bounds the HMAC over a hostile body.
MAX_EVENT_BYTES = 16 * 1024 * 1024


def verify(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event, if ``signature`` (the Stripe-Signature header) signs ``payload``; else Invalid (400)."""
    import stripe

    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance=TOLERANCE_S)
    except stripe.SignatureVerificationError:
        # One answer for missing, malformed, wrong and stale: the caller learns nothing more.
        raise Invalid("The Stripe-Signature header is missing, invalid or too old.") from None
    except UnicodeDecodeError:
        raise Invalid("The Stripe-Signature header is missing, invalid or too old.") from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise Invalid("The event is not JSON.") from None
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise Invalid("The body is not a Stripe event.")
    return event


def receive(db: Database, settings: Settings, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify and apply one delivery; returns a small acknowledgement for Stripe's delivery log."""
    if len(payload) > MAX_EVENT_BYTES:
        raise PayloadTooLarge("The event is too large.")
    event = verify(payload, signature, settings.require("stripe_webhook_secret").reveal())
    return apply_event(db, event)


def apply_event(db: Database, event: dict[str, Any]) -> dict[str, Any]:
    with db.transaction() as conn:
        fresh = conn.execute(
            "INSERT INTO stripe_events (event_id, event_type, event_created, livemode)"
            " VALUES (%s, %s, to_timestamp(%s), %s) ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            (event["id"], event["type"], event["created"], bool(event.get("livemode"))),
        ).fetchone()
        if fresh is None:
            _log.info("stripe event %s (%s) already applied", event["id"], event["type"])
            return {"received": True, "duplicate": True}
        handler = _HANDLERS.get(event["type"])
        outcome = handler(conn, event) if handler else "ignored: event type not handled"
        _record_outcome(conn, event["id"], outcome)
    _log.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return {"received": True, "outcome": outcome}


def _record_outcome(conn: Conn, event_id: str, outcome: str) -> None:
    conn.execute("UPDATE stripe_events SET outcome = %s WHERE event_id = %s", (outcome[:500], event_id))


def _account_for_customer(conn: Conn, customer: Any) -> dict[str, Any] | None:
    """The locked account of the workspace that owns this Stripe customer, with its tenant context set.

    The lookup is the one cross-workspace read here: policy billing_account_by_customer shows the
    row whose customer id equals the transaction-local setting, and nothing else.
    """
    if isinstance(customer, dict):
        customer = customer.get("id")
    if not isinstance(customer, str) or not customer:
        return None
    conn.execute("SELECT set_config('app.stripe_customer_id', %s, true)", (customer,))
    rows = conn.execute(
        "SELECT tenant_id FROM billing_accounts WHERE stripe_customer_id = %s LIMIT 2", (customer,)
    ).fetchall()
    conn.execute("SELECT set_config('app.stripe_customer_id', '', true)")
    if len(rows) != 1:
        if rows:
            _log.error("Stripe customer %s belongs to several workspaces; event not applied", customer)
        return None
    enter_tenant(conn, rows[0]["tenant_id"])  # signed like the pool's own context (migration 0009)
    return lock_account(conn, rows[0]["tenant_id"])


def _on_subscription(conn: Conn, event: dict[str, Any]) -> str:
    snap = Snapshot.from_object(event["data"]["object"])
    account = _account_for_customer(conn, snap.customer)
    if account is None:
        return f"ignored: unknown customer {snap.customer}"
    return apply_snapshot(conn, account, snap, event["created"])


def _on_invoice(paid: bool) -> Callable[[Conn, dict[str, Any]], str]:
    def handle(conn: Conn, event: dict[str, Any]) -> str:
        invoice = event["data"]["object"]
        account = _account_for_customer(conn, invoice.get("customer"))
        if account is None:
            return f"ignored: unknown customer {invoice.get('customer')}"
        return apply_invoice(conn, account, invoice, paid=paid, version=event["created"])

    return handle


def _on_checkout_completed(conn: Conn, event: dict[str, Any]) -> str:
    session = event["data"]["object"]
    account = _account_for_customer(conn, session.get("customer"))
    if account is None:
        return f"ignored: unknown customer {session.get('customer')}"
    return apply_checkout_completed(conn, account, session)


_HANDLERS: dict[str, Callable[[Conn, dict[str, Any]], str]] = {
    "checkout.session.completed": _on_checkout_completed,
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "invoice.paid": _on_invoice(paid=True),
    "invoice.payment_failed": _on_invoice(paid=False),
}
