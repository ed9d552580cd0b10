"""Billing: GET /api/billing, POST /api/billing/checkout {plan}, POST /api/billing/portal."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, ok
from shared.billing import accounts

bp = new_blueprint()


@endpoint(bp, "billing", ["GET"])
def billing_get(request: ApiRequest) -> Response:
    return ok(accounts.overview(request.db, request.settings, request.caller))


@endpoint(bp, "billing/checkout", ["POST"])
def billing_checkout(request: ApiRequest) -> Response:
    from shared.api_models import StartCheckout  # built on first use, not at cold start

    body = request.body(StartCheckout)
    return ok(accounts.start_checkout(request.db, request.settings, request.caller, body.plan))


@endpoint(bp, "billing/portal", ["POST"])
def billing_portal(request: ApiRequest) -> Response:
    return ok(accounts.open_portal(request.db, request.settings, request.caller))
