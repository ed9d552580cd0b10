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

:data:`PlansSetting` states that shape with pydantic models (strict: ``true`` is not a limit), and
the rules across plans (a price identifies one plan, the free plan exists and is free) as its
validator. A failure is a :class:`~shared.errors.ConfigError` naming the setting, the plan and the
key.
"""

# No ``from __future__ import annotations``: pydantic would evaluate each annotation string as a class is made.

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

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
        return {
            "name": self.name,
            "purchasable": self.purchasable,
            "limits": {LIMIT_NAMES[m]: v for m, v in self.limits.items()},
        }


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


# --- the setting's shape: pydantic models -------------------------------------------------------

PlanName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
PriceId = Annotated[str, Field(pattern=r"^price_", min_length=7, max_length=255)]
# Stripe's limit on a meter event_name is 100 characters.
EventName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
MeterKey = Literal["pagesIndexed", "chatTokens"]  # the values of METERED
Limit = Annotated[int, Field(ge=0)] | None  # required: null is unlimited, a missing key an error


class _Setting(BaseModel):
    """A closed object of the setting: strict types (``true`` is not a limit), unknown keys refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)


class PlanLimits(_Setting):
    """All five limits, each a whole number or ``null`` for unlimited; camelCase in the setting."""

    model_config = ConfigDict(alias_generator=to_camel)

    documents: Limit
    storage_bytes: Limit
    pages_per_month: Limit
    searches_per_month: Limit
    chat_tokens_per_month: Limit


class PlanSpec(_Setting):
    """One plan as the setting states it."""

    model_config = ConfigDict(alias_generator=to_camel)

    price: PriceId | None = None
    metered_prices: list[PriceId] = Field(default_factory=list)
    meter_events: dict[MeterKey, EventName] = Field(default_factory=dict)
    limits: PlanLimits

    @model_validator(mode="after")
    def _metered_prices_need_a_price(self) -> Self:
        if self.metered_prices and self.price is None:
            raise PydanticCustomError("folio_plan", "'meteredPrices' needs a 'price' (Checkout sells them together).")
        return self


def _prices_and_free_plan(plans: dict[str, PlanSpec], info: ValidationInfo) -> dict[str, PlanSpec]:
    """The rules across plans: a price identifies one plan; the free plan exists and has no price."""
    seen: dict[str, str] = {}
    for name, spec in plans.items():
        for price in ([spec.price] if spec.price else []) + spec.metered_prices:
            if price in seen:
                raise PydanticCustomError(
                    "folio_plans",
                    f"Setting BILLING_PLANS: price {price!r} appears in plans "
                    f"{seen[price]!r} and {name!r}; a price must identify one plan.",
                )
            seen[price] = name
    free_plan = (info.context or {}).get("free_plan", "free")
    free = plans.get(free_plan)
    if free is None:
        raise PydanticCustomError(
            "folio_plans", f"Setting BILLING_PLANS has no plan {free_plan!r}, which BILLING_FREE_PLAN names."
        )
    if free.price is not None:
        raise PydanticCustomError(
            "folio_plans", f"Setting BILLING_PLANS: the free plan {free_plan!r} must not have a price."
        )
    return plans


# The whole value, plan name -> plan; validated with ``context={"free_plan": ...}``. A type rather than
# a model class, so that nothing of it is built at import (cold start): _setting_adapter() builds it.
PlansSetting = Annotated[dict[PlanName, PlanSpec], AfterValidator(_prices_and_free_plan)]


@functools.cache
def _setting_adapter() -> TypeAdapter[dict[str, PlanSpec]]:
    return TypeAdapter(PlansSetting, config=ConfigDict(strict=True))


def parse_plans(raw: str, free_plan: str = "free") -> Catalog:
    """Parse and validate ``BILLING_PLANS``. Errors name the setting, the plan and the key."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Setting BILLING_PLANS is not valid JSON ({exc.msg} at position {exc.pos}).") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError("Setting BILLING_PLANS must be a JSON object of plan name -> plan.")
    try:
        setting = _setting_adapter().validate_python(data, context={"free_plan": free_plan})
    except ValidationError as exc:
        raise ConfigError(_message(exc.errors(include_url=False, include_input=False))) from None
    meters = {v: k for k, v in LIMIT_NAMES.items()}
    meter_of_event = {v: k for k, v in METERED.items()}
    plans = {
        name: Plan(
            name,
            spec.price,
            {meters[key]: value for key, value in spec.limits.model_dump(by_alias=True).items()},
            tuple(spec.metered_prices),
            {meter_of_event[k]: v for k, v in spec.meter_events.items()},
        )
        for name, spec in setting.items()
    }
    return Catalog(plans, plans[free_plan])


@functools.lru_cache(maxsize=8)  # a refreshed setting is a new key; the old one ages out
def _parse_cached(raw: str, free_plan: str) -> Catalog:
    return parse_plans(raw, free_plan)


def catalog(settings: Settings) -> Catalog:
    """The validated plans for these settings; parsed once per distinct value (settings may refresh)."""
    return _parse_cached(settings.billing_plans, settings.billing_free_plan)


# --- pydantic's errors as ConfigError messages ---------------------------------------------------


def _message(errors: Sequence[ErrorDetails]) -> str:
    """The first problem, in the words of the setting: ``Setting BILLING_PLANS, plan 'pro': ...``."""
    first = errors[0]
    loc = first["loc"]
    if not loc:  # a rule across plans: the model validator's message is already the whole sentence
        return first["msg"]
    name = loc[0]
    where = f"Setting BILLING_PLANS, plan {name!r}"
    mine = [e for e in errors if e["loc"][:1] == (name,)]
    if len(loc) > 1 and loc[1] == "[key]":
        return f"{where}: a plan name is 1-32 lowercase letters, digits, '-' or '_', starting with a letter."
    unknown = sorted(str(e["loc"][1]) for e in mine if e["type"] == "extra_forbidden" and len(e["loc"]) == 2)
    if unknown:
        allowed = sorted(field.alias or key for key, field in PlanSpec.model_fields.items())
        return f"{where}: unknown key(s) {unknown}; allowed are {allowed}."
    if len(loc) == 1:
        return f"{where}: {first['msg']}" if first["type"] == "folio_plan" else f"{where} must be a JSON object."
    key = loc[1]
    if key == "price":
        return f"{where}: 'price' must be a Stripe price id (price_...) or null."
    if key == "meteredPrices":
        return f"{where}: 'meteredPrices' must be a list of Stripe price ids."
    if key == "meterEvents":
        if len(loc) == 2 or loc[-1] == "[key]":
            return f"{where}: 'meterEvents' must be an object with keys among {sorted(METERED.values())}."
        return f"{where}: meterEvents.{loc[2]} must be a Stripe meter event name (1-100 characters)."
    limit_names = sorted(LIMIT_NAMES.values())
    if len(loc) == 2:  # "limits" missing or not an object
        return f"{where}: 'limits' must be an object with {limit_names}."
    missing = sorted(str(e["loc"][2]) for e in mine if e["loc"][1:2] == ("limits",) and e["type"] == "missing")
    extra = sorted(str(e["loc"][2]) for e in mine if e["loc"][1:2] == ("limits",) and e["type"] == "extra_forbidden")
    if missing or extra:
        return f"{where}: 'limits' needs exactly {limit_names} (null = unlimited); missing {missing}, unknown {extra}."
    return f"{where}: limits.{loc[2]} must be a whole number >= 0, or null for unlimited."
