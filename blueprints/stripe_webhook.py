"""POST /api/stripe/webhook: anonymous; the Stripe signature over the raw body is the authentication."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, ok
from shared.billing import webhook

bp = new_blueprint()


@endpoint(bp, "stripe/webhook", ["POST"])
def stripe_webhook(request: ApiRequest) -> Response:
    # The body goes to verification as the exact bytes received: parsing (or re-serialising) first
    # would change what was signed. No caller is resolved: Stripe has no Folio identity.
    body = request.http.body
    return ok(webhook.receive(request.db, request.settings, body, request.http.headers.get("stripe-signature")))
