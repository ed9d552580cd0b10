"""Usage counters and quota checks: exact under concurrency, in the caller's own transaction.

Monthly meters (pages indexed, searches, chat tokens) are counters in ``usage_counters``, one row
per workspace, meter and UTC calendar month. :func:`consume` adds to one with a single upsert that
refuses to pass the limit, so concurrent requests can never overshoot and a rolled-back
transaction takes its usage with it. The stock limits (documents, storage) are counted from
``documents`` under the workspace's billing-account row lock (:func:`check_upload`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.billing import outbox
from shared.billing.entitlements import Entitlement, entitlement, load_account, lock_account
from shared.billing.plans import (
    CHAT_TOKENS,
    DOCUMENTS,
    LIMIT_NAMES,
    METERED,
    MONTHLY_METERS,
    PAGES_INDEXED,
    SEARCHES,
    STORAGE,
    catalog,
)
from shared.config import Settings
from shared.db import Conn, Database, one
from shared.errors import Invalid, QuotaExceeded
from shared.tenancy import Caller

_WHAT = {
    DOCUMENTS: "documents",
    STORAGE: "bytes of storage",
    PAGES_INDEXED: "pages indexed per month",
    SEARCHES: "searches per month",
    CHAT_TOKENS: "chat tokens per month",
}
# A page of a format without pages (Markdown, HTML, text, DOCX): about one printed page of text.
CHARS_PER_PAGE = 3000


@dataclass(frozen=True)
class Usage:
    meter: str
    used: int
    limit: int | None  # None = unlimited


def period_bounds(now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The UTC calendar month ``now`` falls in, as [start, end). Monthly quotas reset at its end."""
    now = now or dt.datetime.now(dt.UTC)
    start = dt.date(now.year, now.month, 1)
    end = dt.date(now.year + (now.month == 12), now.month % 12 + 1, 1)
    return start, end


def billable_pages(pages: int | None, text_chars: int) -> int:
    """Pages a parsed document counts for: its real page count, else one per ~3,000 characters."""
    if pages:
        return max(1, pages)
    return max(1, math.ceil(text_chars / CHARS_PER_PAGE))


@contextmanager
def _transaction(target: Database | Conn, tenant_id: UUID, user_id: UUID | None) -> Iterator[Conn]:
    if isinstance(target, Connection):
        yield target  # the caller's transaction: usage commits or rolls back with the work
    else:
        with target.transaction(tenant_id, user_id) as conn:
            yield conn


def _who(who: Caller | UUID) -> tuple[UUID, UUID | None]:
    return (who.tenant_id, who.user_id) if isinstance(who, Caller) else (who, None)


def current_entitlement(conn: Conn, tenant_id: UUID, settings: Settings) -> tuple[Entitlement, dict[str, Any] | None]:
    account = load_account(conn, tenant_id)
    return entitlement(account, catalog(settings), settings.billing_grace_days), account


def consume(
    target: Database | Conn,
    who: Caller | UUID,
    meter: str,
    amount: int,
    *,
    source: str | None = None,
    allow_overrun: bool = False,
    settings: Settings,
) -> Usage:
    """Count ``amount`` of a monthly ``meter`` against the workspace's plan, or raise QuotaExceeded (402).

    For search and chat (and anything else billed by use)::

        billing.consume(conn, caller, billing.SEARCHES, 1)          # before running the search
        billing.check(db, caller, billing.CHAT_TOKENS, 1)           # before generating: refuse if exhausted
        billing.consume(conn, caller, billing.CHAT_TOKENS, used_tokens, allow_overrun=True)  # after

    Pass the connection of the transaction that does the work (``db.transaction(caller.tenant_id,
    ...)``) so the count, and the metering outbox row for Stripe, commit or roll back with it; a
    :class:`~shared.db.Database` opens a transaction of its own. ``allow_overrun`` records usage that
    already happened (tokens a model has generated) even past the limit; the next call is refused.
    """
    if meter not in MONTHLY_METERS:
        raise ValueError(f"{meter!r} is not a monthly meter; use one of {MONTHLY_METERS}")
    if not isinstance(amount, int) or amount < 0:
        raise Invalid("Usage must be a whole number >= 0.")
    tenant_id, user_id = _who(who)
    period, _ = period_bounds()
    with _transaction(target, tenant_id, user_id) as conn:
        granted, account = current_entitlement(conn, tenant_id, settings)
        limit = granted.plan.limit(meter)
        if amount == 0:
            return Usage(meter, _used(conn, tenant_id, meter, period), limit)
        row = conn.execute(
            "INSERT INTO usage_counters AS u (tenant_id, meter, period_start, used)"
            " SELECT %(tenant)s, %(meter)s, %(period)s, %(amount)s"
            "  WHERE %(force)s OR %(limit)s::bigint IS NULL OR %(amount)s <= %(limit)s"
            " ON CONFLICT (tenant_id, meter, period_start) DO UPDATE SET used = u.used + EXCLUDED.used,"
            "  updated_at = now()"
            "  WHERE %(force)s OR %(limit)s::bigint IS NULL OR u.used + EXCLUDED.used <= %(limit)s"
            " RETURNING used",
            {
                "tenant": tenant_id,
                "meter": meter,
                "period": period,
                "amount": amount,
                "limit": limit,
                "force": allow_overrun,
            },
        ).fetchone()
        if row is None:
            raise _exceeded(granted, meter, _used(conn, tenant_id, meter, period), amount)
        event_name = granted.plan.meter_events.get(meter) if meter in METERED else None
        if event_name and account and account["stripe_customer_id"]:
            outbox.record(conn, tenant_id, meter, event_name, account["stripe_customer_id"], amount, source)
        return Usage(meter, row["used"], limit)


def check(target: Database | Conn, who: Caller | UUID, meter: str, amount: int = 1, *, settings: Settings) -> Usage:
    """Refuse (402) if ``amount`` more would pass the limit now; counts nothing (consume does)."""
    if meter not in MONTHLY_METERS:
        raise ValueError(f"{meter!r} is not a monthly meter; use one of {MONTHLY_METERS}")
    tenant_id, user_id = _who(who)
    period, _ = period_bounds()
    with _transaction(target, tenant_id, user_id) as conn:
        granted, _ = current_entitlement(conn, tenant_id, settings)
        limit = granted.plan.limit(meter)
        used = _used(conn, tenant_id, meter, period)
    if limit is not None and used + amount > limit:
        raise _exceeded(granted, meter, used, amount)
    return Usage(meter, used, limit)


def check_upload(conn: Conn, caller: Caller, size: int, *, settings: Settings) -> None:
    """Refuse (402) a new document past the plan's document count or storage, exactly.

    Runs in the upload's transaction, before its INSERT: the account row lock makes concurrent
    uploads of one workspace count one after another, each seeing the documents committed before it.
    """
    granted, stock = _locked_stock(conn, caller.tenant_id, settings)
    documents_limit = granted.plan.limit(DOCUMENTS)
    if documents_limit is not None and stock["documents"] + 1 > documents_limit:
        raise _exceeded(granted, DOCUMENTS, stock["documents"], 1)
    _check_storage(granted, stock["bytes"], size)


def usage_report(conn: Conn, tenant_id: UUID, granted: Entitlement) -> dict[str, dict[str, int | None]]:
    """Every limit of the plan in force with what is used of it (this month for monthly ones)."""
    period, _ = period_bounds()
    used = {
        r["meter"]: r["used"]
        for r in conn.execute(
            "SELECT meter, used FROM usage_counters WHERE tenant_id = %s AND period_start = %s", (tenant_id, period)
        )
    }
    stock = _stock(conn, tenant_id)
    used[DOCUMENTS], used[STORAGE] = stock["documents"], stock["bytes"]
    return {LIMIT_NAMES[m]: {"used": int(used.get(m, 0)), "limit": granted.plan.limit(m)} for m in LIMIT_NAMES}


def check_storage_growth(conn: Conn, tenant_id: UUID, extra_bytes: int, *, settings: Settings) -> None:
    """Refuse (402) a stored blob that grows the workspace by ``extra_bytes`` past its storage limit.

    For a blob that turns out larger than the size declared when its upload URL was issued (a SAS
    URL cannot cap size): the declared size was checked by :func:`check_upload`, the rest is here.
    """
    if extra_bytes <= 0:
        return
    granted, stock = _locked_stock(conn, tenant_id, settings)
    _check_storage(granted, stock["bytes"], extra_bytes)


def _locked_stock(conn: Conn, tenant_id: UUID, settings: Settings) -> tuple[Entitlement, dict[str, int]]:
    """The plan in force and the documents and bytes stored, read under the account row lock
    (:func:`lock_account`), so concurrent checks of one workspace see each other's rows."""
    granted = entitlement(lock_account(conn, tenant_id), catalog(settings), settings.billing_grace_days)
    return granted, _stock(conn, tenant_id)


def _check_storage(granted: Entitlement, stored: int, extra_bytes: int) -> None:
    """Refuse (402) ``extra_bytes`` more when they would pass the plan's storage limit."""
    limit = granted.plan.limit(STORAGE)
    if limit is not None and stored + extra_bytes > limit:
        raise _exceeded(granted, STORAGE, stored, extra_bytes)


def _stock(conn: Conn, tenant_id: UUID) -> dict[str, int]:
    """Documents and stored bytes now. A failed document is not counted as a document (it cannot
    be searched), but its bytes are, as long as its blob is kept (the user may re-index it)."""
    row = one(
        conn.execute(
            "SELECT count(*) FILTER (WHERE status <> 'failed') AS documents,"
            " coalesce(sum(size_bytes), 0)::bigint AS bytes FROM documents"
            " WHERE tenant_id = %s AND status <> 'deleted'",
            (tenant_id,),
        ).fetchone()
    )
    return {"documents": int(row["documents"]), "bytes": int(row["bytes"])}


def _used(conn: Conn, tenant_id: UUID, meter: str, period: dt.date) -> int:
    row = conn.execute(
        "SELECT used FROM usage_counters WHERE tenant_id = %s AND meter = %s AND period_start = %s",
        (tenant_id, meter, period),
    ).fetchone()
    return int(row["used"]) if row else 0


def _exceeded(granted: Entitlement, meter: str, used: int, amount: int) -> QuotaExceeded:
    limit = granted.plan.limit(meter)
    assert limit is not None
    monthly = meter in MONTHLY_METERS
    when = f" this month (until {period_bounds()[1].isoformat()})" if monthly else ""
    detail = (
        f"The {granted.plan.name} plan allows {limit:,} {_WHAT[meter]}; {used:,} are used{when} and this "
        f"needs {amount:,} more. Upgrade the plan"
        + (" or wait for the next month." if monthly else " or delete documents.")
    )
    return QuotaExceeded(
        detail, limit=LIMIT_NAMES[meter], plan=granted.plan.name, allowed=limit, used=used, requested=amount
    )
