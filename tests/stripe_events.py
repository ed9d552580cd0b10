"""Billing test kit: Stripe event fixtures, signing as Stripe does, the loopback Stripe, billing settings."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Client, Response
from tests.stubs.stripe_server import StripeStub

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
WEBHOOK_SECRET = "whsec_test_" + "5" * 32
PRO_PRICE = "price_1SLaZ9GqK4xHc7Z9proMonth"  # as in the fixtures
PAGES_PRICE = "price_1SLaZbGqK4xHc7Z9pagesMtr"
TEAM_PRICE = "price_1SLaZaGqK4xHc7Z9teamMonth"

# Small free limits so quotas are reachable in a test; pro is metered like a real plan would be.
TEST_PLANS = {
    "free": {
        "limits": {
            "documents": 3,
            "storageBytes": 100_000,
            "pagesPerMonth": 5,
            "searchesPerMonth": 5,
            "chatTokensPerMonth": 1000,
        }
    },
    "pro": {
        "price": PRO_PRICE,
        "meteredPrices": [PAGES_PRICE],
        "meterEvents": {"pagesIndexed": "folio_pages_indexed", "chatTokens": "folio_chat_tokens"},
        "limits": {
            "documents": 100,
            "storageBytes": 10_000_000,
            "pagesPerMonth": 1000,
            "searchesPerMonth": 1000,
            "chatTokensPerMonth": 100_000,
        },
    },
    "team": {
        "price": TEAM_PRICE,
        "limits": {
            "documents": None,
            "storageBytes": None,
            "pagesPerMonth": None,
            "searchesPerMonth": None,
            "chatTokensPerMonth": None,
        },
    },
}


@cache
def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def event(
    name: str,
    *,
    customer: str | None = None,
    subscription: str | None = None,
    status: str | None = None,
    prices: list[str] | None = None,
    created: int | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A checked-in event with the ids, status and times a test needs; everything else as Stripe sent it."""
    data = copy.deepcopy(_fixture(name))
    data["id"] = event_id or "evt_test_" + uuid.uuid4().hex[:24]
    data["created"] = int(created if created is not None else time.time())
    obj = data["data"]["object"]
    kind = obj["object"]
    if customer:
        obj["id" if kind == "customer" else "customer"] = customer
    if subscription:
        if kind == "subscription":
            obj["id"] = subscription
            for item in obj["items"]["data"]:
                item["subscription"] = subscription
        elif kind == "checkout.session":
            obj["subscription"] = subscription
        elif kind == "invoice":
            obj["parent"]["subscription_details"]["subscription"] = subscription
            for line in obj["lines"]["data"]:
                line["parent"]["subscription_item_details"]["subscription"] = subscription
    if status:
        obj["status"] = status
    if prices is not None:
        items = obj["items"]["data"]
        obj["items"]["data"] = [
            dict(
                copy.deepcopy(items[min(i, len(items) - 1)]),
                price={**items[min(i, len(items) - 1)]["price"], "id": price},
            )
            for i, price in enumerate(prices)
        ]
        obj["items"]["total_count"] = len(prices)
    return data


def subscription_object(
    subscription: str, customer: str, status: str = "active", prices: list[str] | None = None
) -> dict[str, Any]:
    """A subscription as GET /v1/subscriptions/{id} returns it (for the stub's re-fetch)."""
    return event(
        "customer.subscription.updated", customer=customer, subscription=subscription, status=status, prices=prices
    )["data"]["object"]


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: HMAC-SHA256 over "<t>.<body>", computed here, not by the library."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post_event(
    client: Client,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
) -> Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, indent=2).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    if signature != "":
        headers["Stripe-Signature"] = signature or sign(body, secret, timestamp)
    return Client(client.base_url).request("POST", "/api/stripe/webhook", body=body, headers=headers)


@pytest.fixture(scope="session")
def stripe_stub() -> Iterator[StripeStub]:
    stub = StripeStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def billing(settings_override: Any, stripe_stub: StripeStub) -> StripeStub:
    """Billing settings for one test: the loopback Stripe, the test secret, small free limits."""
    settings_override(
        STRIPE_SECRET_KEY="sk_test_folio",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe_stub.base_url,
        STRIPE_MAX_NETWORK_RETRIES="0",
        BILLING_PLANS=json.dumps(TEST_PLANS),
        BILLING_GRACE_DAYS="7",
    )
    return stripe_stub


def new_owner(client: Client) -> tuple[Client, str]:
    """A fresh user, owner of their own new workspace; returns (client, workspace id)."""
    user = client.as_user(f"bill-{uuid.uuid4().hex[:10]}")
    return user, user.get("/api/me").json()["tenant"]["id"]


def subscribe(
    client: Client,
    owner: Client,
    tenant: str,
    admin_conn: Any,
    *,
    plan_price: str = PRO_PRICE,
    status: str = "active",
    created: int | None = None,
) -> tuple[str, str]:
    """Checkout (through the API) and the subscription event Stripe then sends; returns (customer, subscription)."""
    response = owner.post("/api/billing/checkout", {"plan": "pro" if plan_price == PRO_PRICE else "team"})
    assert response.status == 200, response.body
    customer = admin_conn.execute(
        "SELECT stripe_customer_id FROM billing_accounts WHERE tenant_id = %s", (tenant,)
    ).fetchone()["stripe_customer_id"]
    subscription = "sub_test_" + uuid.uuid4().hex[:20]
    applied = post_event(
        client,
        event(
            "customer.subscription.created",
            customer=customer,
            subscription=subscription,
            status=status,
            prices=[plan_price, PAGES_PRICE],
            created=created or int(time.time()) - 300,
        ),
    )
    assert applied.status == 200 and applied.json()["outcome"].startswith("applied"), applied.body
    return customer, subscription
