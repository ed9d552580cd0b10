"""Billing with Stripe: plans and entitlements, exact usage quotas, Checkout and Portal, webhooks, metering.

What other services call:

* :func:`consume` / :func:`check` — monthly quotas (``SEARCHES``, ``CHAT_TOKENS``, ``PAGES_INDEXED``);
  402 :class:`~shared.errors.QuotaExceeded` naming the limit when exhausted. See :func:`consume`.
* :func:`check_upload` — documents and storage, in the upload's transaction.
* :func:`billable_pages` — how many pages a parsed document counts for.

Modules: ``plans`` (the BILLING_PLANS setting), ``entitlements`` (account row → plan in force),
``usage`` (counters, quotas), ``outbox`` (metering to Stripe Billing Meters), ``stripe_api`` (the
library, imported lazily), ``subscriptions`` and ``webhook`` (events, in any order, once each),
``accounts`` (the HTTP API's use cases), ``periodic`` (what the billing timer runs).
Importing this package never imports ``stripe``.
"""

from shared.billing.plans import CHAT_TOKENS, DOCUMENTS, PAGES_INDEXED, SEARCHES, STORAGE
from shared.billing.usage import (
    Usage,
    billable_pages,
    check,
    check_storage_growth,
    check_upload,
    consume,
    period_bounds,
)

__all__ = [
    "CHAT_TOKENS",
    "DOCUMENTS",
    "PAGES_INDEXED",
    "SEARCHES",
    "STORAGE",
    "Usage",
    "billable_pages",
    "check",
    "check_storage_growth",
    "check_upload",
    "consume",
    "period_bounds",
]
