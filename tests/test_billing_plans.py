"""The BILLING_PLANS setting parsed by pydantic models (shared/billing/plans.py): the Plan API and its errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.billing.plans import (
    CHAT_TOKENS,
    DOCUMENTS,
    LIMIT_NAMES,
    METERED,
    PAGES_INDEXED,
    SEARCHES,
    STORAGE,
    MeterKey,
    catalog,
    parse_plans,
)
from shared.config import load_settings
from shared.errors import ConfigError

_LIMITS = {
    "documents": 10,
    "storageBytes": 1000,
    "pagesPerMonth": 50,
    "searchesPerMonth": 100,
    "chatTokensPerMonth": 2000,
}


def _refused(plans: dict[str, Any] | str, free_plan: str = "free") -> str:
    with pytest.raises(ConfigError) as raised:
        parse_plans(plans if isinstance(plans, str) else json.dumps(plans), free_plan)
    detail = raised.value.detail
    assert "BILLING_PLANS" in detail and "Input should" not in detail and "pydantic" not in detail, detail
    return detail


def test_a_full_setting_becomes_plans_keyed_by_meter() -> None:
    plans = parse_plans(
        json.dumps(
            {
                "free": {"limits": {**_LIMITS, "chatTokensPerMonth": None}},
                "pro": {
                    "price": "price_pro",
                    "meteredPrices": ["price_pages", "price_tokens"],
                    "meterEvents": {"pagesIndexed": "folio_pages_indexed", "chatTokens": "folio:chat.tokens"},
                    "limits": {**_LIMITS, "documents": None},
                },
                "draft": {"price": None, "limits": _LIMITS},
            }
        )
    )
    assert plans.free.name == "free" and not plans.free.purchasable
    assert dict(plans.free.limits) == {
        DOCUMENTS: 10,
        STORAGE: 1000,
        PAGES_INDEXED: 50,
        SEARCHES: 100,
        CHAT_TOKENS: None,
    }
    pro = plans.get("pro")
    assert pro is not None and pro.purchasable and pro.limit(DOCUMENTS) is None and pro.limit(SEARCHES) == 100
    assert pro.metered_prices == ("price_pages", "price_tokens")
    assert dict(pro.meter_events) == {PAGES_INDEXED: "folio_pages_indexed", CHAT_TOKENS: "folio:chat.tokens"}
    assert plans.for_prices(["price_tokens", "price_pro"]) is pro and plans.for_prices(["price_other"]) is None
    draft = plans.get("draft")
    assert draft is not None and not draft.purchasable and dict(draft.meter_events) == {}
    assert pro.describe() == {"name": "pro", "purchasable": True, "limits": {**_LIMITS, "documents": None}}
    assert list(pro.describe()["limits"]) == list(LIMIT_NAMES.values())


def test_another_free_plan_name_is_honoured() -> None:
    raw = json.dumps({"starter": {"limits": _LIMITS}, "pro": {"price": "price_pro", "limits": _LIMITS}})
    assert parse_plans(raw, "starter").free.name == "starter"
    assert "no plan 'free'" in _refused(raw)


@pytest.mark.parametrize("value", [True, False, 1.5, 1.0, "10", -1, [1]])
def test_a_limit_is_a_whole_number_not_true_or_a_float(value: Any) -> None:
    detail = _refused({"free": {"limits": {**_LIMITS, "searchesPerMonth": value}}})
    assert detail == (
        "Setting BILLING_PLANS, plan 'free': limits.searchesPerMonth must be a whole number >= 0, "
        "or null for unlimited."
    )


def test_missing_and_unknown_limits_are_listed_together() -> None:
    limits = {k: v for k, v in _LIMITS.items() if k not in ("documents", "storageBytes")}
    detail = _refused({"free": {"limits": {**limits, "seats": 3, "users": 1}}})
    assert "missing ['documents', 'storageBytes'], unknown ['seats', 'users']" in detail
    assert "'limits' must be an object" in _refused({"free": {"limits": None}})
    assert "'limits' must be an object" in _refused({"free": {}})


@pytest.mark.parametrize(
    "plan, message",
    [
        ({"price": "price_", "limits": _LIMITS}, "'price' must be a Stripe price id"),
        ({"price": "price_" + "x" * 250, "limits": _LIMITS}, "'price' must be a Stripe price id"),
        ({"price": 5, "limits": _LIMITS}, "'price' must be a Stripe price id"),
        ({"price": "price_a", "meteredPrices": "price_b", "limits": _LIMITS}, "'meteredPrices' must be a list"),
        ({"price": "price_a", "meteredPrices": ["prod_b"], "limits": _LIMITS}, "'meteredPrices' must be a list"),
        ({"meteredPrices": ["price_b"], "limits": _LIMITS}, "'meteredPrices' needs a 'price'"),
        (
            {"price": "price_a", "meterEvents": {"storage": "x"}, "limits": _LIMITS},
            "keys among ['chatTokens', 'pagesIndexed']",
        ),
        ({"price": "price_a", "meterEvents": ["x"], "limits": _LIMITS}, "'meterEvents' must be an object"),
        (
            {"price": "price_a", "meterEvents": {"chatTokens": "has space"}, "limits": _LIMITS},
            "meterEvents.chatTokens must be",
        ),
        (
            {"price": "price_a", "meterEvents": {"chatTokens": "e" * 101}, "limits": _LIMITS},
            "meterEvents.chatTokens must be",
        ),
        (
            {"price": "price_a", "meterEvents": {"chatTokens": None}, "limits": _LIMITS},
            "meterEvents.chatTokens must be",
        ),
        ({"price": "price_a", "limits": _LIMITS, "seats": 5, "colour": "blue"}, "unknown key(s) ['colour', 'seats']"),
        ("not an object", "plan 'pro' must be a JSON object"),
    ],
)
def test_a_bad_plan_is_named_with_the_key(plan: Any, message: str) -> None:
    detail = _refused({"free": {"limits": _LIMITS}, "pro": plan})
    assert detail.startswith("Setting BILLING_PLANS, plan 'pro'") and message in detail, detail


@pytest.mark.parametrize("name", ["Pro", "1pro", "pro plan", "p" * 33, "", "pro\n"])
def test_a_plan_name_is_lowercase_and_short(name: str) -> None:
    assert "a plan name is 1-32 lowercase letters" in _refused({"free": {"limits": _LIMITS}, name: {"limits": _LIMITS}})


def test_rules_across_plans() -> None:
    shared_price = "price_{same}"  # braces must come through as written
    detail = _refused(
        {
            "free": {"limits": _LIMITS},
            "a": {"price": shared_price, "limits": _LIMITS},
            "b": {"price": "price_b", "meteredPrices": [shared_price], "limits": _LIMITS},
        }
    )
    assert detail == (
        f"Setting BILLING_PLANS: price {shared_price!r} appears in plans 'a' and 'b'; a price must identify one plan."
    )
    assert (
        _refused({"free": {"price": "price_f", "limits": _LIMITS}})
        == "Setting BILLING_PLANS: the free plan 'free' must not have a price."
    )
    assert (
        _refused({"pro": {"price": "price_p", "limits": _LIMITS}})
        == "Setting BILLING_PLANS has no plan 'free', which BILLING_FREE_PLAN names."
    )
    for shape in ("[]", "{}", '"free"', "null"):
        assert _refused(shape) == "Setting BILLING_PLANS must be a JSON object of plan name -> plan."
    assert "not valid JSON" in _refused("{free")


def test_meter_keys_are_the_metered_usages() -> None:
    import typing

    assert set(typing.get_args(MeterKey)) == set(METERED.values())


def test_catalog_parses_each_setting_value_once() -> None:
    first = load_settings({"BILLING_PLANS": json.dumps({"free": {"limits": _LIMITS}})})
    again = load_settings({"BILLING_PLANS": json.dumps({"free": {"limits": _LIMITS}})})
    changed = load_settings({"BILLING_PLANS": json.dumps({"free": {"limits": {**_LIMITS, "documents": 11}}})})
    assert catalog(first) is catalog(again)
    assert catalog(changed).free.limit(DOCUMENTS) == 11 and catalog(first).free.limit(DOCUMENTS) == 10
    broken = load_settings({"BILLING_PLANS": '{"free": {}}'})
    for _ in range(2):  # a failure is not remembered as a catalog
        with pytest.raises(ConfigError):
            catalog(broken)
