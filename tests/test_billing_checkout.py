"""GET /api/billing, Checkout and the Customer Portal, with the real stripe library against a loopback Stripe."""

from __future__ import annotations

import threading
from typing import Any

from shared.db import Conn, one
from tests.helpers import Client
from tests.stripe_events import PAGES_PRICE, PRO_PRICE, new_owner, subscribe
from tests.stubs.stripe_server import StripeStub


def _customers_for(stub: StripeStub, tenant: str) -> list[Any]:
    return [
        r
        for r in stub.calls("/v1/customers")
        if r.params.get("metadata", {}).get("folio_tenant_id") == tenant and r.status == 200
    ]


def test_a_new_workspace_is_on_the_free_plan_with_usage_and_period(client: Client, billing: StripeStub) -> None:
    owner, _tenant = new_owner(client)
    overview = owner.get("/api/billing").json()
    assert overview["plan"] == "free" and overview["status"] == "none" and overview["subscription"] is None
    assert overview["usage"] == {
        "documents": {"used": 0, "limit": 3},
        "storageBytes": {"used": 0, "limit": 100_000},
        "pagesPerMonth": {"used": 0, "limit": 5},
        "searchesPerMonth": {"used": 0, "limit": 5},
        "chatTokensPerMonth": {"used": 0, "limit": 1000},
    }
    assert overview["period"]["start"].endswith("-01") and overview["period"]["end"] > overview["period"]["start"]
    assert {p["name"]: p["purchasable"] for p in overview["plans"]} == {"free": False, "pro": True, "team": True}


def test_checkout_creates_the_customer_once_and_a_subscription_session(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    owner, tenant = new_owner(client)
    first = owner.post("/api/billing/checkout", {"plan": "pro"})
    assert first.status == 200, first.body
    assert first.json()["url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    session = [r for r in billing.calls("/v1/checkout/sessions") if r.params.get("client_reference_id") == tenant][-1]
    customer = one(
        admin_conn.execute("SELECT stripe_customer_id FROM billing_accounts WHERE tenant_id = %s", (tenant,)).fetchone()
    )["stripe_customer_id"]
    # What Stripe receives, as the form-encoded request the real API gets.
    assert session.params["mode"] == "subscription" and session.params["customer"] == customer
    assert session.params["line_items"] == [{"price": PRO_PRICE, "quantity": "1"}, {"price": PAGES_PRICE}]
    assert session.params["subscription_data"]["metadata"]["folio_tenant_id"] == tenant
    assert "{CHECKOUT_SESSION_ID}" in session.params["success_url"]
    assert session.idempotency_key == f"folio-checkout-{tenant}-pro-1"

    # Again (a double click): same attempt, same key, so Stripe replays the same session.
    again = owner.post("/api/billing/checkout", {"plan": "pro"})
    assert again.json()["url"] == first.json()["url"]
    # Another plan is another attempt; the customer is reused, never created twice.
    team = owner.post("/api/billing/checkout", {"plan": "team"})
    assert team.status == 200 and team.json()["url"] != first.json()["url"]
    assert len(_customers_for(billing, tenant)) == 1
    actions = [
        r["action"]
        for r in admin_conn.execute(
            "SELECT action FROM audit_log WHERE tenant_id = %s AND action LIKE 'billing.%%' ORDER BY audit_id",
            (tenant,),
        )
    ]
    assert actions == ["billing.customer_created", "billing.checkout_started", "billing.checkout_started"]


def test_concurrent_checkouts_create_one_customer(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    owner, tenant = new_owner(client)
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(owner.post("/api/billing/checkout", {"plan": "pro"}).status))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert len(_customers_for(billing, tenant)) == 1
    urls = {
        r.idempotency_key
        for r in billing.calls("/v1/checkout/sessions")
        if r.params.get("client_reference_id") == tenant
    }
    assert urls == {f"folio-checkout-{tenant}-pro-1"}


def test_stripe_outage_is_503_and_the_retry_reuses_the_attempt(client: Client, billing: StripeStub) -> None:
    owner, tenant = new_owner(client)
    billing.fail("/v1/checkout/sessions", status=500)
    down = owner.post("/api/billing/checkout", {"plan": "pro"})
    assert down.status == 503 and down.json()["type"].endswith("/unavailable")
    up = owner.post("/api/billing/checkout", {"plan": "pro"})
    assert up.status == 200
    keys = [
        r.idempotency_key
        for r in billing.calls("/v1/checkout/sessions")
        if r.params.get("client_reference_id") == tenant
    ]
    assert keys == [f"folio-checkout-{tenant}-pro-1"] * 2


def test_checkout_input_and_plan_rules(
    client: Client, billing: StripeStub, admin_conn: Conn, settings_override: Any
) -> None:
    owner, tenant = new_owner(client)
    unknown = owner.post("/api/billing/checkout", {"plan": "platinum"})
    assert unknown.status == 400 and "platinum" in unknown.json()["detail"]
    assert owner.post("/api/billing/checkout", {"plan": "free"}).status == 400
    assert owner.post("/api/billing/checkout", {}).status == 400
    subscribe(client, owner, tenant, admin_conn)
    already = owner.post("/api/billing/checkout", {"plan": "team"})
    assert already.status == 409 and "portal" in already.json()["detail"]
    settings_override(
        BILLING_PLANS='{"free": {"limits": {"documents": 1, "storageBytes": 1, "pagesPerMonth": 1,'
        ' "searchesPerMonth": 1, "chatTokensPerMonth": 1}}, "pro": {"price": null,'
        ' "limits": {"documents": 1, "storageBytes": 1, "pagesPerMonth": 1,'
        ' "searchesPerMonth": 1, "chatTokensPerMonth": 1}}}'
    )
    other, _ = new_owner(client)
    unsold = other.post("/api/billing/checkout", {"plan": "pro"})
    assert unsold.status == 409 and "not for sale yet" in unsold.json()["detail"]  # a 4xx since #17


def test_checkout_and_portal_are_for_owners_only(client: Client, billing: StripeStub) -> None:
    owner, _tenant = new_owner(client)
    member = client.with_headers(
        authorization="ApiKey " + owner.post("/api/apikeys", {"name": "ci", "role": "member"}).json()["key"]
    )
    assert member.get("/api/billing").status == 200  # usage is visible to the workspace
    assert member.post("/api/billing/checkout", {"plan": "pro"}).status == 403
    assert member.post("/api/billing/portal").status == 403
    assert client.post("/api/billing/checkout", {"plan": "pro"}).status == 401


def test_portal_needs_a_customer_and_returns_a_session_url(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    owner, tenant = new_owner(client)
    none_yet = owner.post("/api/billing/portal")
    assert none_yet.status == 409
    owner.post("/api/billing/checkout", {"plan": "pro"})
    portal = owner.post("/api/billing/portal")
    assert portal.status == 200 and portal.json()["url"].startswith("https://billing.stripe.com/p/session/")
    customer = one(
        admin_conn.execute("SELECT stripe_customer_id FROM billing_accounts WHERE tenant_id = %s", (tenant,)).fetchone()
    )["stripe_customer_id"]
    sent = billing.calls("/v1/billing_portal/sessions")[-1].params
    assert sent == {"customer": customer, "return_url": "http://127.0.0.1:4280/billing"}


def test_missing_stripe_key_names_the_setting(client: Client, billing: StripeStub, settings_override: Any) -> None:
    settings_override(STRIPE_SECRET_KEY="")
    owner, _ = new_owner(client)
    response = owner.post("/api/billing/checkout", {"plan": "pro"})
    assert response.status == 500 and "STRIPE_SECRET_KEY" in response.json()["detail"]
