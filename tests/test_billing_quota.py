"""Plans and quotas: validated settings, 402 naming the limit, exact counters under concurrency, RLS."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.config import get_settings
from shared.db import Conn, one
from shared.errors import ConfigError, QuotaExceeded
from tests.helpers import Client
from tests.stripe_events import new_owner, subscribe
from tests.stubs.stripe_server import StripeStub
from tests.test_tenant_isolation import _set_tenant

_LIMITS = {"documents": 1, "storageBytes": 1, "pagesPerMonth": 1, "searchesPerMonth": 1, "chatTokensPerMonth": 1}


# --- the BILLING_PLANS setting ----------------------------------------------------------------


def test_default_plans_are_valid_and_free_is_the_fallback() -> None:
    from shared.billing.plans import catalog
    from shared.config import load_settings

    plans = catalog(load_settings({}))
    assert plans.free.name == "free" and not plans.free.purchasable
    assert set(plans.plans) == {"free", "pro", "team"}


@pytest.mark.parametrize(
    "plans, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object of plan name"),
        (json.dumps({"pro": {"price": "price_x1", "limits": _LIMITS}}), "no plan 'free'"),
        (json.dumps({"free": {"price": "price_x1", "limits": _LIMITS}}), "must not have a price"),
        (json.dumps({"free": {"limits": {**_LIMITS, "documents": -1}}}), "limits.documents"),
        (
            json.dumps({"free": {"limits": {k: v for k, v in _LIMITS.items() if k != "storageBytes"}}}),
            "missing ['storageBytes']",
        ),
        (json.dumps({"free": {"limits": {**_LIMITS, "seats": 3}}}), "unknown ['seats']"),
        (json.dumps({"free": {"limits": _LIMITS, "colour": "blue"}}), "unknown key(s) ['colour']"),
        (json.dumps({"free": {"limits": _LIMITS}, "Pro Plan": {"limits": _LIMITS}}), "plan name"),
        (json.dumps({"free": {"limits": _LIMITS}, "pro": {"price": "prod_x", "limits": _LIMITS}}), "'price'"),
        (
            json.dumps(
                {
                    "free": {"limits": _LIMITS},
                    "a": {"price": "price_same", "limits": _LIMITS},
                    "b": {"price": "price_same", "limits": _LIMITS},
                }
            ),
            "appears in plans",
        ),
        (
            json.dumps(
                {
                    "free": {"limits": _LIMITS},
                    "a": {"price": "price_a1", "limits": _LIMITS, "meterEvents": {"storage": "x"}},
                }
            ),
            "meterEvents",
        ),
    ],
    ids=[
        "json",
        "shape",
        "no-free",
        "free-priced",
        "negative",
        "missing-limit",
        "unknown-limit",
        "unknown-key",
        "name",
        "price-id",
        "shared-price",
        "meter-key",
    ],
)
def test_bad_plans_setting_fails_with_a_message_naming_it(plans: str, message: str) -> None:
    from shared.billing.plans import parse_plans

    with pytest.raises(ConfigError) as raised:
        parse_plans(plans)
    assert "BILLING_PLANS" in raised.value.detail and message in raised.value.detail


def test_a_bad_plans_setting_is_a_500_naming_the_setting(client: Client, settings_override: Any) -> None:
    settings_override(BILLING_PLANS='{"free": {}}')
    owner, _ = new_owner(client)
    response = owner.get("/api/billing")
    assert response.status == 500 and "BILLING_PLANS" in response.json()["detail"]


# --- uploads: documents and storage ------------------------------------------------------------


def _collection(owner: Client) -> str:
    return owner.post("/api/collections", {"name": f"c-{uuid.uuid4().hex[:6]}"}).json()["id"]


def _request_upload(owner: Client, collection: str, size: int = 100, name: str = "a.md") -> Any:
    return owner.post(f"/api/collections/{collection}/documents", {"filename": name, "size": size})


def test_upload_past_the_document_limit_is_402_naming_the_limit(client: Client, billing: StripeStub) -> None:
    owner, _ = new_owner(client)
    collection = _collection(owner)
    assert [_request_upload(owner, collection).status for _ in range(3)] == [201, 201, 201]
    refused = _request_upload(owner, collection)
    assert refused.status == 402
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == "https://folio.dev/problems/quota-exceeded"
    assert problem["limit"] == "documents" and problem["allowed"] == 3 and problem["used"] == 3
    assert problem["plan"] == "free" and "free plan allows 3 documents" in problem["detail"]
    # Deleting one frees a slot.
    first = owner.get(f"/api/collections/{collection}/documents").json()["documents"][0]["id"]
    assert owner.delete(f"/api/documents/{first}").status == 204
    assert _request_upload(owner, collection).status == 201


def test_upload_past_storage_is_402_naming_the_limit(client: Client, billing: StripeStub) -> None:
    owner, _ = new_owner(client)
    collection = _collection(owner)
    assert _request_upload(owner, collection, size=60_000).status == 201
    refused = _request_upload(owner, collection, size=50_000)
    assert refused.status == 402 and refused.json()["limit"] == "storageBytes"
    assert _request_upload(owner, collection, size=40_000).status == 201  # exactly up to the limit is fine


def test_concurrent_uploads_never_pass_the_document_limit(client: Client, billing: StripeStub) -> None:
    owner, _tenant = new_owner(client)
    collection = _collection(owner)
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def upload() -> None:
        barrier.wait()
        statuses.append(_request_upload(owner, collection).status)

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 201, 201, 402, 402, 402]
    assert len(owner.get(f"/api/collections/{collection}/documents").json()["documents"]) == 3


def test_a_paid_plan_lifts_the_limits(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    owner, tenant = new_owner(client)
    collection = _collection(owner)
    for _ in range(3):
        _request_upload(owner, collection)
    assert _request_upload(owner, collection).status == 402
    subscribe(client, owner, tenant, admin_conn)
    assert _request_upload(owner, collection).status == 201


# --- monthly meters: consume / check (what search and chat call) ---------------------------------


def _caller(tenant: str) -> Any:
    from shared.tenancy import Caller, Role

    return Caller(uuid.UUID(tenant), Role.OWNER, "user", "test")


def test_concurrent_searches_consume_exactly_the_quota(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    from shared import billing as quotas
    from shared.bootstrap import services

    _owner, tenant = new_owner(client)
    caller = _caller(tenant)
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def search() -> None:
        barrier.wait()
        try:
            quotas.consume(services().database, caller, quotas.SEARCHES, 1, settings=get_settings())
            outcomes.append("ok")
        except QuotaExceeded as exc:
            outcomes.append(exc.extensions["limit"])

    threads = [threading.Thread(target=search) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 5 and outcomes.count("searchesPerMonth") == 11
    used = one(
        admin_conn.execute(
            "SELECT used FROM usage_counters WHERE tenant_id = %s AND meter = 'searches'", (tenant,)
        ).fetchone()
    )["used"]
    assert used == 5


def test_check_counts_nothing_and_overrun_records_usage_already_incurred(client: Client, billing: StripeStub) -> None:
    from shared import billing as quotas
    from shared.bootstrap import services

    owner, tenant = new_owner(client)
    caller, db = _caller(tenant), services().database
    assert quotas.check(db, caller, quotas.CHAT_TOKENS, 1, settings=get_settings()).used == 0
    assert quotas.consume(db, caller, quotas.CHAT_TOKENS, 900, settings=get_settings()).used == 900
    with pytest.raises(QuotaExceeded) as refused:
        quotas.consume(
            db, caller, quotas.CHAT_TOKENS, 200, settings=get_settings()
        )  # would pass 1,000: refused, nothing counted
    assert refused.value.extensions == {
        "limit": "chatTokensPerMonth",
        "plan": "free",
        "allowed": 1000,
        "used": 900,
        "requested": 200,
    }
    # A generated answer's tokens are already spent: recorded past the limit, and then nothing more runs.
    assert quotas.consume(db, caller, quotas.CHAT_TOKENS, 150, allow_overrun=True, settings=get_settings()).used == 1050
    with pytest.raises(QuotaExceeded):
        quotas.check(db, caller, quotas.CHAT_TOKENS, 1, settings=get_settings())
    assert owner.get("/api/billing").json()["usage"]["chatTokensPerMonth"] == {"used": 1050, "limit": 1000}


def test_usage_rolls_back_with_the_work_that_failed(client: Client, billing: StripeStub) -> None:
    from shared import billing as quotas
    from shared.bootstrap import services

    _owner, tenant = new_owner(client)
    caller, db = _caller(tenant), services().database
    with pytest.raises(RuntimeError), db.transaction(caller.tenant_id) as conn:
        quotas.consume(conn, caller, quotas.SEARCHES, 2, settings=get_settings())
        raise RuntimeError("the search itself failed")
    assert quotas.check(db, caller, quotas.SEARCHES, 5, settings=get_settings()).used == 0


def test_pages_billed_follow_real_pages_or_text_length() -> None:
    from shared.billing import billable_pages

    assert billable_pages(12, 100) == 12
    assert billable_pages(None, 0) == 1
    assert billable_pages(None, 3000) == 1 and billable_pages(None, 3001) == 2


# --- indexing: the pages quota ----------------------------------------------------------------


def _upload(owner: Client, collection: str, name: str, data: bytes) -> str:
    created = owner.post(f"/api/collections/{collection}/documents", {"filename": name, "size": len(data)}).json()
    url = urlsplit(created["uploadUrl"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("PUT", f"{url.path}?{url.query}", body=data, headers=created["headers"])
    assert conn.getresponse().status == 201
    conn.close()
    return created["documentId"]


def _markdown(pages: int) -> bytes:
    paragraph = "The supplier delivers the goods within thirty days of each order and invoices monthly. " * 12
    text = "\n\n".join(f"## Section {i}\n\n{paragraph}" for i in range(pages * 3))
    return f"# Agreement\n\n{text}\n".encode()


def test_indexing_past_the_pages_quota_fails_the_document_with_the_reason(
    client: Client, pipeline: Any, billing: StripeStub, admin_conn: Conn
) -> None:
    owner, _tenant = new_owner(client)
    collection = _collection(owner)
    small = _upload(owner, collection, "small.md", b"# Note\n\nA short note about the delivery terms.\n")
    pipeline.settle()
    assert owner.get(f"/api/documents/{small}").json()["status"] == "ready"
    big = _upload(owner, collection, "big.md", _markdown(6))  # ~6 pages; 4 of the 5 are left
    pipeline.settle()
    doc = owner.get(f"/api/documents/{big}").json()
    assert doc["status"] == "failed" and "pages indexed per month" in doc["error"], doc
    assert (
        one(admin_conn.execute("SELECT count(*) AS n FROM chunks WHERE document_id = %s", (big,)).fetchone())["n"] == 0
    )
    usage = owner.get("/api/billing").json()["usage"]["pagesPerMonth"]
    assert usage == {"used": 1, "limit": 5}
    # Completed, not retried: nothing of it is left on the queue or dead-lettered.
    assert all(d.body.get("documentId") != big for d in pipeline.worker.queue.dead_letters())
    assert pipeline.worker.queue.receive(10, 1) == []


def test_indexing_on_a_metered_plan_records_usage_for_stripe_with_the_work(
    client: Client, pipeline: Any, billing: StripeStub, admin_conn: Conn
) -> None:
    owner, tenant = new_owner(client)
    customer, _ = subscribe(client, owner, tenant, admin_conn)
    document = _upload(owner, _collection(owner), "big.md", _markdown(6))
    pipeline.settle()
    assert owner.get(f"/api/documents/{document}").json()["status"] == "ready"
    rows = admin_conn.execute("SELECT * FROM meter_outbox WHERE tenant_id = %s", (tenant,)).fetchall()
    used = owner.get("/api/billing").json()["usage"]["pagesPerMonth"]["used"]
    assert len(rows) == 1 and rows[0]["value"] == used >= 6
    assert rows[0]["event_name"] == "folio_pages_indexed" and rows[0]["stripe_customer_id"] == customer
    assert rows[0]["source"] == f"document:{document}" and rows[0]["sent_at"] is None


# --- row-level security on the billing tables --------------------------------------------------


def _set(conn: Conn, name: str, value: str) -> None:
    conn.execute("SELECT set_config(%s, %s, true)", (name, value))


def test_billing_tables_are_tenant_isolated_with_two_narrow_exceptions(
    client: Client, billing: StripeStub, admin_conn: Conn, app_conn: Conn
) -> None:
    from shared import billing as quotas
    from shared.bootstrap import services

    owner_a, tenant_a = new_owner(client)
    owner_b, tenant_b = new_owner(client)
    customer_a, _ = subscribe(client, owner_a, tenant_a, admin_conn)
    subscribe(client, owner_b, tenant_b, admin_conn)
    quotas.consume(
        services().database, _caller(tenant_a), quotas.CHAT_TOKENS, 10, settings=get_settings()
    )  # metered: an outbox row
    quotas.consume(services().database, _caller(tenant_b), quotas.CHAT_TOKENS, 10, settings=get_settings())
    tables = ("billing_accounts", "usage_counters", "meter_outbox")
    with app_conn.transaction():
        assert all(one(app_conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone())["n"] == 0 for t in tables)
        _set_tenant(app_conn, tenant_a)
        for table in tables:
            seen = {str(r["tenant_id"]) for r in app_conn.execute(f"SELECT tenant_id FROM {table}")}
            assert seen == {tenant_a}, table
    with app_conn.transaction():
        # The webhook's lookup: exactly the account of that customer, and only for reading.
        _set(app_conn, "app.stripe_customer_id", customer_a)
        rows = app_conn.execute("SELECT tenant_id FROM billing_accounts").fetchall()
        assert [str(r["tenant_id"]) for r in rows] == [tenant_a]
        assert one(app_conn.execute("SELECT count(*) AS n FROM usage_counters").fetchone())["n"] == 0
        assert app_conn.execute("UPDATE billing_accounts SET subscription_status = 'active'").rowcount == 0
    with app_conn.transaction():
        # The timer's listing: unsent meter events of every workspace, nothing else.
        _set(app_conn, "app.billing_worker", "on")
        pending = {str(r["tenant_id"]) for r in app_conn.execute("SELECT tenant_id FROM meter_outbox")}
        assert {tenant_a, tenant_b} <= pending
        assert one(app_conn.execute("SELECT count(*) AS n FROM usage_counters").fetchone())["n"] == 0
        assert app_conn.execute("UPDATE meter_outbox SET value = 1").rowcount == 0


def test_a_quota_race_lost_at_write_time_fails_the_document_and_keeps_nothing(
    client: Client, pipeline: Any, billing: StripeStub, admin_conn: Conn
) -> None:
    """Two documents can both pass the early check; the count in the write transaction decides."""
    from shared import billing as quotas
    from shared.bootstrap import services
    from shared.indexer import run_job
    from shared.jobs import IndexJob

    owner, tenant = new_owner(client)
    document = _upload(owner, _collection(owner), "two.md", _markdown(1))
    pipeline.events.poll_once()
    queued = pipeline.worker.queue.receive(1, 60)[0]

    def another_document_counts_first(_: int) -> None:
        quotas.consume(
            services().database, _caller(tenant), quotas.PAGES_INDEXED, 4, settings=get_settings()
        )  # its own, committed

    outcome = run_job(
        services().database,
        services().blobs,
        services().embedder,
        IndexJob.from_body(queued.body),
        after_chunks_written=another_document_counts_first,
        settings=get_settings(),
    )
    pipeline.worker.queue.complete(queued)
    assert outcome.status == "failed" and "pages indexed per month" in (outcome.detail or "")
    assert owner.get(f"/api/documents/{document}").json()["status"] == "failed"
    assert (
        one(admin_conn.execute("SELECT count(*) AS n FROM chunks WHERE document_id = %s", (document,)).fetchone())["n"]
        == 0
    )
    assert owner.get("/api/billing").json()["usage"]["pagesPerMonth"]["used"] == 4
