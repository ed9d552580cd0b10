"""The Stripe webhook over real HTTP: signed, real-shaped events; each id once; any order converges."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import pytest

from shared.db import Conn, one
from tests.helpers import Client
from tests.stripe_events import (
    PAGES_PRICE,
    PRO_PRICE,
    event,
    new_owner,
    post_event,
    sign,
    subscribe,
    subscription_object,
)
from tests.stubs.stripe_server import StripeStub


def _account(admin_conn: Conn, tenant: str) -> dict[str, Any]:
    return one(admin_conn.execute("SELECT * FROM billing_accounts WHERE tenant_id = %s", (tenant,)).fetchone())


def _event_row(admin_conn: Conn, event_id: str) -> dict[str, Any] | None:
    return admin_conn.execute("SELECT * FROM stripe_events WHERE event_id = %s", (event_id,)).fetchone()


def _audit(admin_conn: Conn, tenant: str, action: str) -> int:
    return one(
        admin_conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE tenant_id = %s AND action = %s", (tenant, action)
        ).fetchone()
    )["n"]


def _customer(client: Client, admin_conn: Conn) -> tuple[Client, str, str]:
    """A workspace with a Stripe customer (made by a checkout), not yet subscribed."""
    owner, tenant = new_owner(client)
    assert owner.post("/api/billing/checkout", {"plan": "pro"}).status == 200
    return owner, tenant, _account(admin_conn, tenant)["stripe_customer_id"]


def _run_timer() -> dict[str, Any]:
    from shared.billing import periodic
    from shared.bootstrap import services
    from shared.config import get_settings

    return periodic.run(services().database, get_settings())


def test_signed_subscription_event_grants_the_paid_plan(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    owner, tenant = new_owner(client)
    assert owner.get("/api/billing").json()["plan"] == "free"
    _customer, subscription = subscribe(client, owner, tenant, admin_conn)
    overview = owner.get("/api/billing").json()
    assert overview["plan"] == "pro" and overview["status"] == "active"
    assert overview["subscription"]["id"] == subscription
    assert overview["subscription"]["currentPeriodEnd"]  # from the subscription item, as Stripe now sends it
    assert overview["usage"]["pagesPerMonth"]["limit"] == 1000
    assert _audit(admin_conn, tenant, "billing.subscription_changed") == 1


@pytest.mark.parametrize("tamper", ["wrong secret", "missing header", "garbage header", "body changed", "no v1 scheme"])
def test_bad_signature_is_400_and_has_no_effect(
    client: Client, billing: StripeStub, admin_conn: Conn, tamper: str
) -> None:
    _owner, tenant, customer = _customer(client, admin_conn)
    payload = event("customer.subscription.updated", customer=customer, status="active")
    raw = json.dumps(payload).encode()
    signature = {
        "wrong secret": sign(raw, secret="whsec_someone_else"),
        "missing header": "",
        "garbage header": "not a signature",
        "body changed": sign(raw.replace(b'"active"', b'"trialing"')),
        "no v1 scheme": sign(raw).replace("v1=", "v0="),
    }[tamper]
    response = post_event(client, raw, signature=signature)
    assert response.status == 400, response.body
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "signature" in response.json()["detail"].lower()
    assert _event_row(admin_conn, payload["id"]) is None
    assert _account(admin_conn, tenant)["subscription_status"] is None


def test_stale_signature_is_400_and_fresh_one_within_tolerance_is_accepted(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    _owner, tenant, customer = _customer(client, admin_conn)
    payload = event("customer.subscription.updated", customer=customer, status="active")
    stale = post_event(client, payload, timestamp=int(time.time()) - 301)  # Stripe's tolerance is 300 s
    assert stale.status == 400
    assert _event_row(admin_conn, payload["id"]) is None
    assert _account(admin_conn, tenant)["subscription_status"] is None
    # The same event, redelivered later by Stripe with a fresh signature, is applied.
    late_but_valid = post_event(client, payload, timestamp=int(time.time()) - 240)
    assert late_but_valid.status == 200
    assert _account(admin_conn, tenant)["subscription_status"] == "active"


def test_duplicate_deliveries_take_effect_once(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    _owner, tenant, customer = _customer(client, admin_conn)
    now = int(time.time())
    payload = event(
        "customer.subscription.created",
        customer=customer,
        status="active",
        prices=[PRO_PRICE, PAGES_PRICE],
        created=now - 10,
    )
    first = post_event(client, payload)
    second = post_event(client, payload)
    assert first.status == second.status == 200
    assert first.json()["outcome"].startswith("applied") and second.json() == {"received": True, "duplicate": True}

    # And concurrently: the same new event delivered eight times at once applies once.
    failed = event(
        "invoice.payment_failed",
        customer=customer,
        subscription=_account(admin_conn, tenant)["subscription_id"],
        created=now - 5,
    )
    answers: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: answers.append(post_event(client, failed).json())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for a in answers if "outcome" in a) == 1 and sum(1 for a in answers if a.get("duplicate")) == 7
    assert _audit(admin_conn, tenant, "billing.subscription_changed") == 1
    assert _audit(admin_conn, tenant, "billing.payment_failed") == 1


def test_updated_before_created_still_converges(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    owner, _tenant, customer = _customer(client, admin_conn)
    now = int(time.time())
    created = event(
        "customer.subscription.created",
        customer=customer,
        subscription="sub_test_order1",
        status="incomplete",
        created=now - 3,
    )
    updated = event(
        "customer.subscription.updated",
        customer=customer,
        subscription="sub_test_order1",
        status="active",
        created=now - 2,
    )
    assert post_event(client, updated).json()["outcome"].startswith("applied")
    assert post_event(client, created).json()["outcome"].startswith("stale")
    assert owner.get("/api/billing").json()["plan"] == "pro"

    # Later: cancelled. A late, older "active" snapshot must not revive it.
    deleted = event("customer.subscription.deleted", customer=customer, subscription="sub_test_order1", created=now - 1)
    late = event(
        "customer.subscription.updated",
        customer=customer,
        subscription="sub_test_order1",
        status="active",
        created=now - 2,
    )
    assert post_event(client, deleted).status == 200
    assert post_event(client, late).json()["outcome"].startswith("stale")
    overview = owner.get("/api/billing").json()
    assert overview["plan"] == "free" and overview["subscription"]["status"] == "canceled"


def test_same_second_created_and_updated_resolve_to_the_later_lifecycle(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    """Checkout makes .created (incomplete) and .updated (active) within one second: any order -> active."""
    owner, _tenant, customer = _customer(client, admin_conn)
    second = int(time.time()) - 1
    updated = event(
        "customer.subscription.updated",
        customer=customer,
        subscription="sub_test_tie1",
        status="active",
        created=second,
    )
    created = event(
        "customer.subscription.created",
        customer=customer,
        subscription="sub_test_tie1",
        status="incomplete",
        created=second,
    )
    post_event(client, updated)
    post_event(client, created)
    assert owner.get("/api/billing").json()["plan"] == "pro"


def test_an_unorderable_tie_is_settled_by_a_refetch_from_stripe(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    owner, tenant, customer = _customer(client, admin_conn)
    second = int(time.time()) - 1
    subscription = "sub_test_tie2"
    post_event(
        client,
        event(
            "customer.subscription.updated",
            customer=customer,
            subscription=subscription,
            status="active",
            created=second,
        ),
    )
    tie = post_event(
        client,
        event(
            "customer.subscription.updated",
            customer=customer,
            subscription=subscription,
            status="past_due",
            created=second,
        ),
    )
    assert "re-fetch queued" in tie.json()["outcome"]
    assert _account(admin_conn, tenant)["sync_requested_at"] is not None
    billing.subscriptions[subscription] = subscription_object(subscription, customer, "active")
    report = _run_timer()
    assert report["subscriptionsSynced"] >= 1
    account = _account(admin_conn, tenant)
    assert account["subscription_status"] == "active" and account["sync_requested_at"] is None
    assert billing.calls(f"/v1/subscriptions/{subscription}", method="GET")
    assert owner.get("/api/billing").json()["status"] == "active"


def test_checkout_completed_links_the_subscription_and_the_timer_fetches_it(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    owner, tenant, customer = _customer(client, admin_conn)
    subscription = "sub_test_checkout1"
    completed = post_event(client, event("checkout.session.completed", customer=customer, subscription=subscription))
    assert completed.status == 200 and "linked" in completed.json()["outcome"]
    account = _account(admin_conn, tenant)
    assert account["subscription_id"] == subscription and account["sync_requested_at"] is not None
    assert account["checkout_plan"] is None  # the attempt is over; the next checkout is a new one
    assert owner.get("/api/billing").json()["plan"] == "free"  # nothing granted before Stripe says active
    billing.subscriptions[subscription] = subscription_object(subscription, customer, "active")
    _run_timer()
    assert owner.get("/api/billing").json()["plan"] == "pro"


def test_unknown_event_types_and_customers_are_acknowledged_and_ignored(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    _owner, tenant, customer = _customer(client, admin_conn)
    before = _account(admin_conn, tenant)
    unknown_type = event("customer.updated", customer=customer)
    response = post_event(client, unknown_type)
    assert response.status == 200 and response.json()["outcome"].startswith("ignored")
    assert one(_event_row(admin_conn, unknown_type["id"]))["outcome"].startswith("ignored")
    stranger = post_event(client, event("customer.subscription.updated", customer="cus_notours0000", status="active"))
    assert stranger.status == 200 and "unknown customer" in stranger.json()["outcome"]
    assert _account(admin_conn, tenant) == before


def test_failure_midway_leaves_no_partial_effect_and_redelivery_succeeds(
    client: Client, billing: StripeStub, admin_conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.billing import webhook

    owner, tenant, customer = _customer(client, admin_conn)
    payload = event("customer.subscription.created", customer=customer, status="active")
    real = webhook._record_outcome

    def crash(conn: Any, event_id: str, outcome: str) -> None:
        raise RuntimeError("worker died after applying the effect")  # the account row is already updated

    monkeypatch.setattr(webhook, "_record_outcome", crash)
    failed = post_event(client, payload)
    assert failed.status == 500  # Stripe will redeliver
    assert _event_row(admin_conn, payload["id"]) is None
    assert _account(admin_conn, tenant)["subscription_status"] is None
    assert _audit(admin_conn, tenant, "billing.subscription_changed") == 0

    monkeypatch.setattr(webhook, "_record_outcome", real)
    redelivered = post_event(client, payload)
    assert redelivered.status == 200 and redelivered.json()["outcome"].startswith("applied")
    assert one(_event_row(admin_conn, payload["id"]))["outcome"].startswith("applied")
    assert owner.get("/api/billing").json()["plan"] == "pro"


def test_failed_payment_keeps_the_plan_for_the_grace_period_then_downgrades(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    owner, tenant = new_owner(client)
    customer, subscription = subscribe(client, owner, tenant, admin_conn)
    now = int(time.time())
    failed = post_event(
        client, event("invoice.payment_failed", customer=customer, subscription=subscription, created=now - 60)
    )
    assert failed.json()["outcome"] == "applied: payment failed"
    overview = owner.get("/api/billing").json()
    assert overview["plan"] == "pro" and overview["status"] == "grace"
    grace_ends = dt.datetime.fromisoformat(overview["subscription"]["graceEndsAt"])
    assert dt.timedelta(days=6) < grace_ends - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7)

    # Stripe's retries keep failing; the subscription goes past_due. Eight days on, the grace is over.
    post_event(
        client,
        event(
            "customer.subscription.updated",
            customer=customer,
            subscription=subscription,
            status="past_due",
            prices=[PRO_PRICE, PAGES_PRICE],
            created=now - 30,
        ),
    )
    admin_conn.execute(
        "UPDATE billing_accounts SET payment_failed_at = payment_failed_at - interval '8 days' WHERE tenant_id = %s",
        (tenant,),
    )
    overview = owner.get("/api/billing").json()
    assert overview["plan"] == "free" and overview["status"] == "downgraded"
    assert overview["usage"]["pagesPerMonth"]["limit"] == 5

    # Paid at last: the plan is back. A stale failure notice (older than the payment) changes nothing.
    post_event(client, event("invoice.paid", customer=customer, subscription=subscription, created=now - 10))
    stale = post_event(
        client, event("invoice.payment_failed", customer=customer, subscription=subscription, created=now - 20)
    )
    assert stale.json()["outcome"].startswith("stale")
    overview = owner.get("/api/billing").json()
    assert overview["plan"] == "pro" and overview["subscription"]["paymentFailedAt"] is None


def test_missing_webhook_secret_is_a_server_error_so_stripe_retries(
    client: Client, billing: StripeStub, settings_override: Any, admin_conn: Conn
) -> None:
    _owner, _tenant, customer = _customer(client, admin_conn)
    settings_override(STRIPE_WEBHOOK_SECRET="")
    payload = event("customer.subscription.updated", customer=customer, status="active")
    response = post_event(client, payload)
    assert response.status == 500 and "STRIPE_WEBHOOK_SECRET" in response.json()["detail"]
    assert _event_row(admin_conn, payload["id"]) is None


def test_a_refetch_of_a_subscription_stripe_no_longer_has_stops_asking(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    _owner, tenant, customer = _customer(client, admin_conn)
    post_event(client, event("checkout.session.completed", customer=customer, subscription="sub_test_gone1"))
    billing.fail("/v1/subscriptions/", status=503, times=1000)
    try:
        _run_timer()
        assert _account(admin_conn, tenant)["sync_requested_at"] is not None  # an outage: asked again later
    finally:
        billing.heal()
    _run_timer()  # Stripe answers 404
    account = _account(admin_conn, tenant)
    assert account["sync_requested_at"] is None and account["subscription_status"] is None
