"""Plans and their limits, parsed and validated from the one ``BILLING_PLANS`` JSON setting.

The setting maps a plan name to its Stripe prices and limits::

    {"free": {"limits": {"documents": 1000, "storageBytes": 1073741824, "pagesPerMonth": 5000,
                         "searchesPerMonth": 5000, "chatTokensPerMonth": 200000}},
     "pro":  {"price": "price_...",                      # licensed price, quantity 1, sold by Checkout
              "meteredPrices": ["price_..."],            # usage prices added to the same subscription
              "meterEvents": {"pagesIndexed": "folio_pages_indexed", "chatTokens": "folio_chat_tokens"},
              "limits": {...}}}

Every plan lists all five limits; ``null`` means unlimited, so a forgotten key is an error rather
than an accidental unlimited plan. ``BILLING_FREE_PLAN`` names the plan of workspaces without a
paid subscription; it has no price. A paid plan whose ``price`` is ``null`` exists but cannot be
bought yet. ``meterEvents`` names the Stripe Billing Meter each metered usage is reported to;
plans without it report nothing.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.config import Settings
from shared.errors import ConfigError

# Limit names as the API and the plans setting spell them, each with the meter it bounds.
DOCUMENTS = "documents"
STORAGE = "storage"
PAGES_INDEXED = "pages_indexed"
SEARCHES = "searches"
CHAT_TOKENS = "chat_tokens"

LIMIT_NAMES: dict[str, str] = {  # meter -> limit name
    DOCUMENTS: "documents",
    STORAGE: "storageBytes",
    PAGES_INDEXED: "pagesPerMonth",
    SEARCHES: "searchesPerMonth",
    CHAT_TOKENS: "chatTokensPerMonth",
}
MONTHLY_METERS = (PAGES_INDEXED, SEARCHES, CHAT_TOKENS)
# Usage Stripe can bill by the unit (Billing Meters): meter -> key in a plan's "meterEvents".
METERED: dict[str, str] = {PAGES_INDEXED: "pagesIndexed", CHAT_TOKENS: "chatTokens"}

_PLAN_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_PLAN_KEYS = {"price", "meteredPrices", "meterEvents", "limits"}
# Stripe's limit on a meter event_name is 100 characters.
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


@dataclass(frozen=True)
class Plan:
    name: str
    price: str | None
    limits: Mapping[str, int | None]  # meter -> limit; None = unlimited
    metered_prices: tuple[str, ...] = ()
    meter_events: Mapping[str, str] = field(default_factory=dict)  # meter -> Stripe meter event_name

    @property
    def purchasable(self) -> bool:
        return self.price is not None

    def limit(self, meter: str) -> int | None:
        return self.limits[meter]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "purchasable": self.purchasable,
                "limits": {LIMIT_NAMES[m]: v for m, v in self.limits.items()}}


@dataclass(frozen=True)
class Catalog:
    plans: Mapping[str, Plan]
    free: Plan

    def get(self, name: str) -> Plan | None:
        return self.plans.get(name)

    def for_prices(self, prices: list[str] | tuple[str, ...]) -> Plan | None:
        """The plan whose licensed price is among a subscription's prices; None if no plan sells one."""
        for plan in self.plans.values():
            if plan.price is not None and plan.price in prices:
                return plan
        return None


def parse_plans(raw: str, free_plan: str = "free") -> Catalog:
    """Parse and validate ``BILLING_PLANS``. Errors name the setting, the plan and the key."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Setting BILLING_PLANS is not valid JSON ({exc.msg} at position {exc.pos}).") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError("Setting BILLING_PLANS must be a JSON object of plan name -> plan.")
    plans: dict[str, Plan] = {}
    seen_prices: dict[str, str] = {}
    for name, body in data.items():
        plan = _parse_plan(name, body)
        for price in ([plan.price] if plan.price else []) + list(plan.metered_prices):
            if price in seen_prices:
                raise ConfigError(f"Setting BILLING_PLANS: price {price!r} appears in plans "
                                  f"{seen_prices[price]!r} and {name!r}; a price must identify one plan.")
            seen_prices[price] = name
        plans[name] = plan
    free = plans.get(free_plan)
    if free is None:
        raise ConfigError(f"Setting BILLING_PLANS has no plan {free_plan!r}, which BILLING_FREE_PLAN names.")
    if free.price is not None:
        raise ConfigError(f"Setting BILLING_PLANS: the free plan {free_plan!r} must not have a price.")
    return Catalog(plans, free)


def _parse_plan(name: Any, body: Any) -> Plan:
    where = f"Setting BILLING_PLANS, plan {name!r}"
    if not isinstance(name, str) or not _PLAN_NAME.match(name):
        raise ConfigError(f"{where}: a plan name is 1-32 lowercase letters, digits, '-' or '_', "
                          "starting with a letter.")
    if not isinstance(body, dict):
        raise ConfigError(f"{where} must be a JSON object.")
    unknown = sorted(set(body) - _PLAN_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed are {sorted(_PLAN_KEYS)}.")
    price = body.get("price")
    if price is not None and not _is_price(price):
        raise ConfigError(f"{where}: 'price' must be a Stripe price id (price_...) or null.")
    metered = body.get("meteredPrices", [])
    if not isinstance(metered, list) or not all(_is_price(p) for p in metered):
        raise ConfigError(f"{where}: 'meteredPrices' must be a list of Stripe price ids.")
    if metered and price is None:
        raise ConfigError(f"{where}: 'meteredPrices' needs a 'price' (Checkout sells them together).")
    events = body.get("meterEvents", {})
    known_events = {v: k for k, v in METERED.items()}
    if not isinstance(events, dict) or set(events) - set(known_events):
        raise ConfigError(f"{where}: 'meterEvents' must be an object with keys among {sorted(known_events)}.")
    for key, event_name in events.items():
        if not isinstance(event_name, str) or not _EVENT_NAME.match(event_name):
            raise ConfigError(f"{where}: meterEvents.{key} must be a Stripe meter event name (1-100 characters).")
    limits = body.get("limits")
    if not isinstance(limits, dict):
        raise ConfigError(f"{where}: 'limits' must be an object with {sorted(LIMIT_NAMES.values())}.")
    names = {v: k for k, v in LIMIT_NAMES.items()}
    missing = sorted(set(names) - set(limits))
    extra = sorted(set(limits) - set(names))
    if missing or extra:
        raise ConfigError(f"{where}: 'limits' needs exactly {sorted(names)} (null = unlimited); "
                          f"missing {missing}, unknown {extra}.")
    parsed: dict[str, int | None] = {}
    for key, value in limits.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"{where}: limits.{key} must be a whole number >= 0, or null for unlimited.")
        parsed[names[key]] = value
    return Plan(name, price, parsed, tuple(metered), {known_events[k]: v for k, v in events.items()})


def _is_price(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("price_") and 6 < len(value) <= 255


_cache_lock = threading.Lock()
_cache: dict[tuple[str, str], Catalog] = {}


def catalog(settings: Settings) -> Catalog:
    """The validated plans for these settings; parsed once per distinct value (settings may refresh)."""
    key = (settings.billing_plans, settings.billing_free_plan)
    found = _cache.get(key)
    if found is None:
        found = parse_plans(*key)
        with _cache_lock:
            if len(_cache) > 8:  # a refreshed setting replaces the old one; keep the cache small
                _cache.clear()
            _cache[key] = found
    return found
