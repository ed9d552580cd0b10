"""Billing: GET /api/billing, POST /api/billing/checkout {plan}, POST /api/billing/portal."""

from __future__ import annotations

import azure.functions as func

from blueprints._http import ApiRequest, Response, endpoint, ok
from shared.billing import accounts
from shared.validation import Field

bp = func.Blueprint()


@endpoint(bp, "billing", ["GET"])
def billing_get(request: ApiRequest) -> Response:
    return ok(accounts.overview(request.db, request.settings, request.caller))


@endpoint(bp, "billing/checkout", ["POST"])
def billing_checkout(request: ApiRequest) -> Response:
    body = request.json({"plan": Field(str, required=True, min_length=1, max_length=32)})
    return ok(accounts.start_checkout(request.db, request.settings, request.caller, body["plan"]))


@endpoint(bp, "billing/portal", ["POST"])
def billing_portal(request: ApiRequest) -> Response:
    return ok(accounts.open_portal(request.db, request.settings, request.caller))
