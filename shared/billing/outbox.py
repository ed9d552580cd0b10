"""The metering outbox: usage rows written with the work, sent later to Stripe Billing Meters.

:func:`record` runs in the transaction that does the billable work, so usage is recorded if and
only if the work commits. :func:`flush` (the billing timer) sends due rows as meter events whose
``identifier`` is derived from the row (``folio-<outbox_id>``): however often a row is sent, because
a response was lost or the process died before marking it, Stripe counts it once. A failed send
stays pending with a growing delay (capped at an hour) and is retried; nothing is dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared.billing.stripe_api import AlreadyRecorded, StripeGateway
from shared.db import Conn, Database, one

_log = logging.getLogger(__name__)

# A claimed row is not picked up by another flusher for this long (a crashed flusher's rows return).
_LEASE = dt.timedelta(minutes=5)
_MAX_BACKOFF = dt.timedelta(hours=1)


def record(
    conn: Conn, tenant_id: UUID, meter: str, event_name: str, customer_id: str, value: int, source: str | None = None
) -> UUID:
    outbox_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO meter_outbox (tenant_id, outbox_id, meter, event_name, stripe_customer_id, value, source)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (tenant_id, outbox_id, meter, event_name, customer_id, value, source),
    )
    return outbox_id


def identifier(outbox_id: UUID) -> str:
    """The meter event identifier of a row: fixed per row, so resends are deduplicated by Stripe."""
    return f"folio-{outbox_id}"


@dataclass
class FlushResult:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def flush(db: Database, gateway: StripeGateway, *, batch: int = 200) -> FlushResult:
    """Send due meter events. Safe to run concurrently: each row is claimed before it is sent."""
    result = FlushResult()
    with db.transaction() as conn:
        # The one cross-workspace read: pending rows only (policy billing_worker, see 0004_billing.sql).
        conn.execute("SELECT set_config('app.billing_worker', 'on', true)")
        due = conn.execute(
            "SELECT tenant_id, outbox_id FROM meter_outbox WHERE sent_at IS NULL AND next_attempt_at <= now()"
            " ORDER BY next_attempt_at, occurred_at LIMIT %s",
            (batch,),
        ).fetchall()
    by_tenant: dict[UUID, list[UUID]] = defaultdict(list)
    for row in due:
        by_tenant[row["tenant_id"]].append(row["outbox_id"])
    for tenant_id, ids in by_tenant.items():
        _flush_tenant(db, gateway, tenant_id, ids, result)
    return result


def _flush_tenant(db: Database, gateway: StripeGateway, tenant_id: UUID, ids: list[UUID], result: FlushResult) -> None:
    with db.transaction(tenant_id) as conn:
        claimed = conn.execute(
            "UPDATE meter_outbox SET next_attempt_at = now() + %s, attempts = attempts + 1"
            " WHERE tenant_id = %s AND outbox_id = ANY(%s) AND sent_at IS NULL AND next_attempt_at <= now()"
            " RETURNING outbox_id, event_name, stripe_customer_id, value, occurred_at, attempts",
            (_LEASE, tenant_id, ids),
        ).fetchall()
    outcomes: list[tuple[UUID, str | None, int]] = []
    for row in claimed:
        try:
            gateway.send_meter_event(
                row["event_name"],
                row["stripe_customer_id"],
                row["value"],
                identifier(row["outbox_id"]),
                int(row["occurred_at"].timestamp()),
            )
        except AlreadyRecorded:
            pass  # an earlier send reached Stripe; its answer was lost. Counted once: done.
        except Exception as exc:  # every failure is retried later; the row is never dropped
            message = f"{type(exc).__name__}: {exc}"[:500]
            outcomes.append((row["outbox_id"], message, row["attempts"]))
            result.failed += 1
            result.errors.append(message)
            _log.warning("meter event %s not sent (attempt %s): %s", row["outbox_id"], row["attempts"], message)
            continue
        outcomes.append((row["outbox_id"], None, row["attempts"]))
        result.sent += 1
    if not outcomes:
        return
    with db.transaction(tenant_id) as conn:
        for outbox_id, error, attempts in outcomes:
            if error is None:
                conn.execute(
                    "UPDATE meter_outbox SET sent_at = now(), last_error = NULL"
                    " WHERE tenant_id = %s AND outbox_id = %s",
                    (tenant_id, outbox_id),
                )
            else:
                conn.execute(
                    "UPDATE meter_outbox SET last_error = %s, next_attempt_at = now() + %s"
                    " WHERE tenant_id = %s AND outbox_id = %s",
                    (error, _backoff(attempts), tenant_id, outbox_id),
                )


def _backoff(attempts: int) -> dt.timedelta:
    return min(dt.timedelta(seconds=30 * 2 ** min(attempts, 10)), _MAX_BACKOFF)


def pending(db: Database) -> dict[str, Any]:
    """How much is waiting to be sent, and the oldest: for the CLI and monitoring."""
    with db.transaction() as conn:
        conn.execute("SELECT set_config('app.billing_worker', 'on', true)")
        row = one(
            conn.execute(
                "SELECT count(*) AS n, min(occurred_at) AS oldest, max(attempts) AS attempts,"
                " count(*) FILTER (WHERE last_error IS NOT NULL) AS failing"
                " FROM meter_outbox WHERE sent_at IS NULL"
            ).fetchone()
        )
    return {
        "pending": row["n"],
        "failing": row["failing"],
        "maxAttempts": row["attempts"] or 0,
        "oldest": row["oldest"].isoformat() if row["oldest"] else None,
    }
