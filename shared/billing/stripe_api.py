"""The few Stripe calls Folio makes, through the official library, imported only when one is made.

Keeping ``import stripe`` inside the methods keeps it off the cold-start path (tests/test_coldstart.py).
``STRIPE_API_BASE`` points the library elsewhere (the tests' loopback stand-in); errors come back
as Folio's own: a Stripe outage is :class:`~shared.errors.Unavailable` (503, retry), a missing
object :class:`~shared.errors.NotFound`, and any other request Stripe refuses a
:class:`~shared.errors.ConfigError` (a wrong price id or key, not the user's fault).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID

from shared.config import Settings
from shared.errors import ConfigError, FolioError, NotFound, Unavailable

T = TypeVar("T")


class AlreadyRecorded(FolioError):
    """Stripe already holds a meter event with this identifier: an earlier send got through."""


class StripeGateway:
    """A configured ``stripe.StripeClient`` plus the calls billing needs, returning plain values."""

    def __init__(
        self, api_key: str, *, api_base: str | None = None, max_network_retries: int = 2, timeout_s: float = 10.0
    ) -> None:
        import stripe

        self._stripe = stripe
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout_s),
        )

    # --- customers, Checkout, Customer Portal -----------------------------------------------

    def create_customer(self, tenant_id: UUID, name: str, *, idempotency_key: str) -> str:
        customer = self._call(
            lambda: self._client.v1.customers.create(
                params={"name": name, "metadata": {"folio_tenant_id": str(tenant_id)}},
                options={"idempotency_key": idempotency_key},
            )
        )
        return str(customer.id)

    def create_checkout_session(
        self,
        *,
        customer: str,
        tenant_id: UUID,
        plan: str,
        price: str,
        metered_prices: tuple[str, ...],
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> dict[str, Any]:
        # Metered prices take no quantity: Stripe bills them from meter events.
        line_items: list[dict[str, Any]] = [{"price": price, "quantity": 1}]
        line_items += [{"price": p} for p in metered_prices]
        metadata = {"folio_tenant_id": str(tenant_id), "folio_plan": plan}
        # Any: the SDK's SessionCreateParams TypedDict, which this plain dict literal satisfies at run time.
        params: Any = {
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": str(tenant_id),
            "line_items": line_items,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
        }
        session = self._call(
            lambda: self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        )
        return {
            "id": str(session.id),
            "url": str(session.url),
            "expiresAt": dt.datetime.fromtimestamp(session.expires_at, dt.UTC).isoformat()
            if getattr(session, "expires_at", None)
            else None,
        }

    def create_portal_session(self, *, customer: str, return_url: str) -> str:
        session = self._call(
            lambda: self._client.v1.billing_portal.sessions.create(
                params={"customer": customer, "return_url": return_url}
            )
        )
        return str(session.url)

    # --- subscriptions and meter events ------------------------------------------------------

    def retrieve_subscription(self, subscription_id: str) -> tuple[dict[str, Any], int]:
        """The subscription as Stripe has it now, and Stripe's clock at that moment (epoch seconds).

        The server's ``Date`` is the version of this snapshot: event ``created`` times come from
        the same clock, so comparing them is not thrown off by this machine's clock.
        """
        subscription = self._call(lambda: self._client.v1.subscriptions.retrieve(subscription_id))
        return subscription.to_dict(), _server_time(subscription)

    def send_meter_event(self, event_name: str, customer: str, value: int, identifier: str, timestamp: int) -> None:
        try:
            self._call(
                lambda: self._client.v1.billing.meter_events.create(
                    params={
                        "event_name": event_name,
                        "identifier": identifier,
                        "timestamp": timestamp,
                        "payload": {"stripe_customer_id": customer, "value": str(value)},
                    }
                )
            )
        except ConfigError as exc:
            # Stripe enforces identifier uniqueness with a 400 ("An event already exists with
            # identifier ..."); for a resend that is proof of delivery, not an error.
            if "already exists" in exc.detail and identifier in exc.detail:
                raise AlreadyRecorded(exc.detail) from None
            raise

    def _call(self, request: Callable[[], T]) -> T:
        stripe = self._stripe
        try:
            return request()
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise Unavailable("Stripe is unreachable or busy; try again shortly.") from exc
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            raise ConfigError("Stripe rejected the API key (STRIPE_SECRET_KEY).") from exc
        except stripe.StripeError as exc:
            status = getattr(exc, "http_status", None) or 500
            if status == 404:
                raise NotFound(f"Stripe has no such object: {exc.user_message or exc}") from exc
            if status >= 500 or status == 409:
                raise Unavailable("Stripe could not complete the request; try again shortly.") from exc
            raise ConfigError(f"Stripe refused the request: {exc.user_message or exc}") from exc


def _server_time(obj: Any) -> int:
    headers: Mapping[str, str] = getattr(getattr(obj, "last_response", None), "headers", None) or {}
    date = headers.get("Date") or headers.get("date")
    if date:
        try:
            return int(email.utils.parsedate_to_datetime(date).timestamp())
        except (TypeError, ValueError):
            pass
    return int(dt.datetime.now(dt.UTC).timestamp())


_lock = threading.Lock()
_gateways: dict[tuple[Any, ...], StripeGateway] = {}


def get_gateway(settings: Settings) -> StripeGateway:
    """One gateway per distinct configuration; the key is read at each call so rotation applies."""
    key = settings.require("stripe_secret_key").reveal()
    config = (key, settings.stripe_api_base, settings.stripe_max_network_retries, settings.stripe_timeout_s)
    gateway = _gateways.get(config)
    if gateway is None:
        with _lock:
            gateway = _gateways.get(config)
            if gateway is None:
                _gateways.clear()  # a rotated key or moved base replaces the old client
                gateway = StripeGateway(
                    key,
                    api_base=settings.stripe_api_base,
                    max_network_retries=settings.stripe_max_network_retries,
                    timeout_s=settings.stripe_timeout_s,
                )
                _gateways[config] = gateway
    return gateway
