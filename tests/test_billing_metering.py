"""Metered usage to Stripe Billing Meters: the outbox, the timer, retries that never double-count."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import uuid
from contextlib import redirect_stdout
from typing import Any

import pytest

from shared.config import get_settings
from shared.db import Conn
from tests.helpers import Client
from tests.stripe_events import new_owner, subscribe
from tests.stubs.stripe_server import StripeStub


def _metered_workspace(client: Client, admin_conn: Conn) -> tuple[str, str]:
    owner, tenant = new_owner(client)
    customer, _ = subscribe(client, owner, tenant, admin_conn)
    return tenant, customer


def _use_chat_tokens(tenant: str, tokens: int) -> None:
    from shared import billing as quotas
    from shared.bootstrap import services
    from shared.tenancy import Caller, Role

    caller = Caller(uuid.UUID(tenant), Role.MEMBER, "user", "test")
    quotas.consume(services().database, caller, quotas.CHAT_TOKENS, tokens, source="chat:test", settings=get_settings())


def _rows(admin_conn: Conn, tenant: str) -> list[dict[str, Any]]:
    return admin_conn.execute(
        "SELECT * FROM meter_outbox WHERE tenant_id = %s ORDER BY occurred_at", (tenant,)
    ).fetchall()


def _flush() -> dict[str, Any]:
    from shared.billing import periodic
    from shared.bootstrap import services
    from shared.config import get_settings

    return periodic.run(services().database, get_settings())


def _sent_for(stub: StripeStub, customer: str) -> list[Any]:
    return [
        r
        for r in stub.calls("/v1/billing/meter_events")
        if r.params.get("payload", {}).get("stripe_customer_id") == customer
    ]


def test_usage_is_sent_as_meter_events_with_a_fixed_identifier(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    tenant, customer = _metered_workspace(client, admin_conn)
    _use_chat_tokens(tenant, 120)
    _use_chat_tokens(tenant, 30)
    rows = _rows(admin_conn, tenant)
    assert [r["value"] for r in rows] == [120, 30] and all(r["sent_at"] is None for r in rows)
    _flush()
    sent = _sent_for(billing, customer)
    assert {r.params["identifier"] for r in sent} == {f"folio-{r['outbox_id']}" for r in rows}
    request = next(r for r in sent if r.params["identifier"] == f"folio-{rows[0]['outbox_id']}")
    assert request.params["event_name"] == "folio_chat_tokens"
    assert request.params["payload"] == {"stripe_customer_id": customer, "value": "120"}
    assert int(request.params["timestamp"]) == int(rows[0]["occurred_at"].timestamp())
    assert all(r["sent_at"] is not None for r in _rows(admin_conn, tenant))
    _flush()  # nothing left: nothing sent again
    assert len(_sent_for(billing, customer)) == 2
    assert billing.meter_totals()[("folio_chat_tokens", customer)] == 150


def test_free_workspaces_record_no_metered_usage(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    _owner, tenant = new_owner(client)
    _use_chat_tokens(tenant, 10)
    assert _rows(admin_conn, tenant) == []


def test_a_failed_flush_keeps_the_row_and_a_later_run_sends_it(
    client: Client, billing: StripeStub, admin_conn: Conn
) -> None:
    tenant, customer = _metered_workspace(client, admin_conn)
    _use_chat_tokens(tenant, 40)
    billing.fail("/v1/billing/meter_events", status=500, times=100)  # an outage
    try:
        report = _flush()
    finally:
        billing.heal()
    assert report["meterEvents"]["failed"] >= 1
    [row] = _rows(admin_conn, tenant)
    assert row["sent_at"] is None and row["attempts"] == 1 and "Unavailable" in row["last_error"]
    assert row["next_attempt_at"] > dt.datetime.now(dt.UTC)  # backing off, not dropped
    _flush()
    assert _rows(admin_conn, tenant)[0]["sent_at"] is None  # not due yet
    admin_conn.execute("UPDATE meter_outbox SET next_attempt_at = now() WHERE tenant_id = %s", (tenant,))
    _flush()
    [row] = _rows(admin_conn, tenant)
    assert row["sent_at"] is not None and row["last_error"] is None and row["attempts"] == 2
    assert billing.meter_totals()[("folio_chat_tokens", customer)] == 40


def test_a_lost_response_is_resent_and_counted_once(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    tenant, customer = _metered_workspace(client, admin_conn)
    _use_chat_tokens(tenant, 70)
    billing.fail("/v1/billing/meter_events", status=502, after_processing=True)  # Stripe got it; we did not hear
    _flush()
    [row] = _rows(admin_conn, tenant)
    assert row["sent_at"] is None and row["last_error"]
    admin_conn.execute("UPDATE meter_outbox SET next_attempt_at = now() WHERE tenant_id = %s", (tenant,))
    _flush()
    [row] = _rows(admin_conn, tenant)
    assert row["sent_at"] is not None
    attempts = _sent_for(billing, customer)
    assert [r.status for r in attempts] == [502, 400]  # the resend: "An event already exists with identifier"
    assert len({r.params["identifier"] for r in attempts}) == 1
    assert billing.meter_totals()[("folio_chat_tokens", customer)] == 70


def test_concurrent_flushes_send_each_row_once(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    tenant, customer = _metered_workspace(client, admin_conn)
    for tokens in range(1, 11):
        _use_chat_tokens(tenant, tokens)
    threads = [threading.Thread(target=_flush) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r["sent_at"] is not None for r in _rows(admin_conn, tenant))
    assert [r.status for r in _sent_for(billing, customer)] == [200] * 10  # claimed once each: no resends
    assert billing.meter_totals()[("folio_chat_tokens", customer)] == 55


def test_the_timer_function_runs_on_its_schedule_setting(
    client: Client, billing: StripeStub, admin_conn: Conn, settings_override: Any
) -> None:
    import function_app
    from devhost.functions import registrations
    from devhost.timers import TimerDriver

    regs = registrations(function_app.app)
    [timer] = [r for r in regs if r.trigger_type == "timerTrigger" and r.name == "billing_flush"]
    assert timer.trigger["schedule"] == "%BILLING_FLUSH_SCHEDULE%"
    settings_override(BILLING_FLUSH_SCHEDULE="*/10 * * * * *")
    driver = TimerDriver(regs)
    assert driver.schedules["billing_flush"] == "*/10 * * * * *"  # blob_sweep (#17) has its own
    tenant, _ = _metered_workspace(client, admin_conn)
    _use_chat_tokens(tenant, 5)
    driver.fire("billing_flush")  # what the schedule does, without waiting for it
    assert _rows(admin_conn, tenant)[0]["sent_at"] is not None


@pytest.mark.parametrize(
    "expression, when, fires",
    [
        ("0 * * * * *", "2026-03-02 10:15:00", True),
        ("0 * * * * *", "2026-03-02 10:15:01", False),
        ("0 */5 * * * *", "2026-03-02 10:15:00", True),
        ("0 */5 * * * *", "2026-03-02 10:16:00", False),
        ("30 0 9 * * 1-5", "2026-03-02 09:00:30", True),  # a Monday
        ("30 0 9 * * 1-5", "2026-03-01 09:00:30", False),  # a Sunday
        ("0 0 0 1 1,7 *", "2026-07-01 00:00:00", True),
    ],
)
def test_devhost_reads_ncrontab_like_the_functions_host(expression: str, when: str, fires: bool) -> None:
    from devhost.timers import Schedule

    assert Schedule(expression).matches(dt.datetime.fromisoformat(when)) is fires


def test_cli_billing_flush_runs_what_the_timer_runs(client: Client, billing: StripeStub, admin_conn: Conn) -> None:
    from shared.cli import main

    tenant, _ = _metered_workspace(client, admin_conn)
    _use_chat_tokens(tenant, 9)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["billing-flush"]) == 0
    report = json.loads(out.getvalue())
    assert report["meterEvents"]["sent"] >= 1 and report["pending"]["pending"] == 0
    assert _rows(admin_conn, tenant)[0]["sent_at"] is not None
