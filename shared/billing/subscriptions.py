"""Applying Stripe's subscription, invoice and checkout facts to a billing account, in any order.

Events arrive duplicated and out of order, and their ``created`` time has one-second resolution.
The rules, applied under the account's row lock:

* A subscription snapshot is applied only if its version (event ``created``, or Stripe's clock
  when it was re-fetched) is not older than the one held. Equal versions cannot be ordered, so the
  snapshot is applied and a re-fetch is queued (the billing timer asks Stripe for the truth).
* Lifecycle facts beat timestamps: ``canceled``/``incomplete_expired`` are final for a subscription
  and always win; ``incomplete`` is where a subscription starts, so it never overwrites a later status.
  That settles the common race (``.created`` as incomplete and ``.updated`` as active in one second).
* A workspace follows one subscription. Another one replaces it only if the current one has ended
  (or never became active), or if both are live and the other is newer.
* Payment outcomes (``invoice.paid`` / ``invoice.payment_failed``, and the paid/delinquent status
  of a snapshot) carry their own version; the first unrecovered failure starts the grace period.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from shared import audit
from shared.billing.entitlements import DELINQUENT, LIVE, PAID, TERMINAL
from shared.db import Conn
from shared.errors import Invalid
from shared.tenancy import Caller, Role

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """The fields of a Stripe subscription object that billing uses."""

    id: str
    customer: str
    status: str
    prices: tuple[str, ...]
    created: int
    period_start: int | None
    period_end: int | None
    cancel_at_period_end: bool

    @classmethod
    def from_object(cls, obj: Any) -> Snapshot:
        if not isinstance(obj, dict) or obj.get("object") != "subscription":
            raise Invalid("Not a Stripe subscription object.")
        try:
            items = obj["items"]["data"]
            prices = tuple(_id(item["price"]) for item in items)
            # Since API version 2025-03-31 the billing period lives on each item; before, on the subscription.
            starts = [i["current_period_start"] for i in items if i.get("current_period_start")]
            ends = [i["current_period_end"] for i in items if i.get("current_period_end")]
            return cls(
                id=str(obj["id"]),
                customer=_id(obj["customer"]),
                status=str(obj["status"]),
                prices=prices,
                created=int(obj["created"]),
                period_start=min(starts) if starts else obj.get("current_period_start"),
                period_end=max(ends) if ends else obj.get("current_period_end"),
                cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
            )
        except (KeyError, TypeError, ValueError):
            raise Invalid("Malformed Stripe subscription object.") from None


def _id(value: Any) -> str:
    """An expandable field: an id string, or the expanded object carrying it."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise ValueError("missing id")
    return value


def _ts(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def _stripe_actor(account: dict[str, Any]) -> Caller:
    return Caller(account["tenant_id"], Role.OWNER, "system", "stripe")


def apply_snapshot(conn: Conn, account: dict[str, Any], snap: Snapshot, version: int) -> str:
    """Apply a subscription snapshot to a locked account row; returns what happened, for the log."""
    tracked, held = account["subscription_id"], account["subscription_status"]
    tie = False
    if tracked is not None and tracked != snap.id:
        if not _replaces(account, snap):
            return f"ignored: {snap.id} is not the workspace's subscription {tracked}"
        account = {**account, "subscription_version": 0, "payment_failed_at": None, "payment_version": 0}
    elif tracked == snap.id:
        if held in TERMINAL:
            return f"stale: {snap.id} has already ended ({held})"
        if snap.status == "incomplete" and held not in (None, "incomplete"):
            return f"stale: {snap.id} is past incomplete ({held})"
        if snap.status not in TERMINAL:
            if version < account["subscription_version"]:
                return f"stale: {snap.id} version {version} < {account['subscription_version']}"
            tie = version == account["subscription_version"]
    failed_at, payment_version = _payment_state(account, snap.status, version)
    conn.execute(
        "UPDATE billing_accounts SET subscription_id = %s, subscription_status = %s, subscription_prices = %s,"
        " subscription_created = %s, current_period_start = %s, current_period_end = %s,"
        " cancel_at_period_end = %s, subscription_version = %s, payment_failed_at = %s, payment_version = %s,"
        " sync_requested_at = CASE WHEN %s THEN now() ELSE sync_requested_at END, updated_at = now()"
        " WHERE tenant_id = %s",
        (
            snap.id,
            snap.status,
            list(snap.prices),
            _ts(snap.created),
            _ts(snap.period_start),
            _ts(snap.period_end),
            snap.cancel_at_period_end,
            max(version, account["subscription_version"]),
            failed_at,
            payment_version,
            tie,
            account["tenant_id"],
        ),
    )
    if (tracked, held, list(account["subscription_prices"] or [])) != (snap.id, snap.status, list(snap.prices)):
        audit.record(
            conn,
            _stripe_actor(account),
            "billing.subscription_changed",
            "subscription",
            snap.id,
            status=snap.status,
            previousStatus=held,
            prices=list(snap.prices),
        )
    return f"applied: {snap.id} {snap.status}" + (" (same-second tie: re-fetch queued)" if tie else "")


def _replaces(account: dict[str, Any], snap: Snapshot) -> bool:
    held = account["subscription_status"]
    if held is None or held in TERMINAL or held == "incomplete":
        return snap.status not in TERMINAL  # an ended stranger never displaces anything
    if (
        snap.status in LIVE
        and account["subscription_created"] is not None
        and _ts(snap.created) > account["subscription_created"]
    ):
        # Two live subscriptions for one workspace: follow the newer, and say so loudly.
        _log.warning(
            "workspace %s has two live subscriptions (%s, %s); following the newer",
            account["tenant_id"],
            account["subscription_id"],
            snap.id,
        )
        return True
    return False


def _payment_state(account: dict[str, Any], status: str, version: int) -> tuple[dt.datetime | None, int]:
    failed_at, payment_version = account["payment_failed_at"], account["payment_version"]
    if version > payment_version:
        if status in PAID:
            return None, version
        if status in DELINQUENT:
            return failed_at or _ts(version), version
    return failed_at, payment_version


def apply_invoice(conn: Conn, account: dict[str, Any], invoice: dict[str, Any], *, paid: bool, version: int) -> str:
    """``invoice.paid`` ends a grace period; ``invoice.payment_failed`` starts one (once)."""
    subscription = invoice_subscription(invoice)
    if subscription is None or subscription != account["subscription_id"]:
        return f"ignored: invoice is not for the workspace's subscription ({subscription})"
    held = account["payment_version"]
    if version < held or (version == held and not paid):
        if version == held:  # equal times cannot be ordered: "paid" wins them, and a re-fetch settles it
            conn.execute(
                "UPDATE billing_accounts SET sync_requested_at = now() WHERE tenant_id = %s", (account["tenant_id"],)
            )
        return f"stale: payment outcome version {version} <= {held}"
    failed_at = None if paid else (account["payment_failed_at"] or _ts(version))
    conn.execute(
        "UPDATE billing_accounts SET payment_failed_at = %s, payment_version = %s,"
        " sync_requested_at = CASE WHEN %s THEN now() ELSE sync_requested_at END, updated_at = now()"
        " WHERE tenant_id = %s",
        (failed_at, version, version == held, account["tenant_id"]),
    )
    if (failed_at is None) != (account["payment_failed_at"] is None):
        audit.record(
            conn,
            _stripe_actor(account),
            "billing.payment_recovered" if paid else "billing.payment_failed",
            "invoice",
            invoice.get("id"),
            subscription=subscription,
        )
    return "applied: payment " + ("succeeded" if paid else "failed")


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills: ``parent.subscription_details`` since 2025-03-31, else top level."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    value = details.get("subscription") or invoice.get("subscription")
    try:
        return _id(value) if value else None
    except ValueError:
        return None


def apply_checkout_completed(conn: Conn, account: dict[str, Any], session: dict[str, Any]) -> str:
    """Link the subscription Checkout created and queue a re-fetch: the session has no status or prices."""
    conn.execute(
        "UPDATE billing_accounts SET checkout_plan = NULL, checkout_started_at = NULL, updated_at = now()"
        " WHERE tenant_id = %s",
        (account["tenant_id"],),
    )
    if session.get("mode") != "subscription" or not session.get("subscription"):
        return "ignored: not a subscription checkout"
    subscription = _id(session["subscription"])
    tracked, held = account["subscription_id"], account["subscription_status"]
    if tracked not in (None, subscription) and held not in TERMINAL and held not in (None, "incomplete"):
        _log.warning(
            "workspace %s completed a checkout (%s) while subscribed (%s)", account["tenant_id"], subscription, tracked
        )
        return f"ignored: workspace already follows {tracked}"
    if tracked != subscription:
        # Status unknown until the subscription's own event or the re-fetch: the free plan meanwhile.
        conn.execute(
            "UPDATE billing_accounts SET subscription_id = %s, subscription_status = NULL, subscription_prices = '{}',"
            " subscription_created = NULL, current_period_start = NULL, current_period_end = NULL,"
            " cancel_at_period_end = false, subscription_version = 0, payment_failed_at = NULL, payment_version = 0"
            " WHERE tenant_id = %s",
            (subscription, account["tenant_id"]),
        )
    conn.execute("UPDATE billing_accounts SET sync_requested_at = now() WHERE tenant_id = %s", (account["tenant_id"],))
    audit.record(
        conn,
        _stripe_actor(account),
        "billing.checkout_completed",
        "subscription",
        subscription,
        plan=(session.get("metadata") or {}).get("folio_plan"),
    )
    return f"applied: checkout linked {subscription}; re-fetch queued"
