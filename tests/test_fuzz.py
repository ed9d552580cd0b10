"""Schemathesis fuzzes every HTTP route of the running local host from its OpenAPI description.

The caller is a real user (or their API key) of a seeded workspace; a second tenant is seeded too.
For every generated request (valid and invalid ones, path ids drawn from both tenants' real ids and
random ones, the workspace header naming either tenant or none): no 5xx, the response conforms to the
description (status, content type, body schema, headers), and no response holds any of the other
tenant's ids. The seed and the budget are here so that a failure reproduces: Hypothesis prints the
failing example, and the same seed generates the same requests again.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import restore_environment
from tests.helpers import Client
from tests.stripe_events import TEST_PLANS, WEBHOOK_SECRET
from tests.stubs.stripe_server import StripeStub
from tests.test_ingestion import upload

SEED = 20_261_202
EXAMPLES_PER_OPERATION = 40  # per route and method: ~1,300 requests in all, about a minute on an idle machine
TIME_BUDGET_SECONDS = 240  # the whole run; a slower machine generates fewer requests rather than running on

# Checks left out where the description cannot say what the API will accept, each for its reason.
EXCLUDED_CHECKS: dict[str, list[Any]] = {}


def _exclusions() -> dict[str, list[Any]]:
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    return {
        # Only a body signed with the webhook secret is accepted; the fuzzer cannot sign.
        "POST /api/stripe/webhook": [positive_data_acceptance],
        # `continuation` is an opaque token the API issued; any other string is a 400.
        "GET /api/chat/sessions": [positive_data_acceptance],
    }


RUN: dict[str, Any] = {"requests": Counter(), "statuses": Counter(), "started": None}


@pytest.fixture(scope="module", autouse=True)
def _chat_store(cosmos: str) -> None:
    """Chat routes need the Cosmos DB emulator."""


@pytest.fixture(scope="module")
def fuzz_settings(app_environment: dict[str, str], stripe_stub: StripeStub) -> Iterator[None]:
    """The loopback Stripe, and plans whose free limits a fuzzing run cannot exhaust."""
    import os

    from shared.config import reset_settings

    plans = json.loads(json.dumps(TEST_PLANS))
    plans["free"]["limits"] = dict.fromkeys(plans["free"]["limits"])
    values = {
        "STRIPE_SECRET_KEY": "sk_test_folio",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_stub.base_url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "BILLING_PLANS": json.dumps(plans),
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    reset_settings()
    yield
    restore_environment(saved)


def _tenant(client: Client, user: str, pipeline: Any) -> dict[str, Any]:
    """A workspace with a collection, an indexed document, a chat session, a member and two API keys."""
    owner = client.as_user(user, email=f"{user}@example.com")
    me = owner.get("/api/me").json()
    colleague = client.as_user(f"{user}-colleague", email=f"{user}-colleague@example.com")
    colleague_id = colleague.get("/api/me").json()["user"]["id"]
    added = owner.post("/api/members", {"email": f"{user}-colleague@example.com", "role": "member"})
    assert added.status in (201, 202), added.body
    if added.status == 202:  # an invitation, which the colleague accepts
        accepted = colleague.post(f"/api/invitations/{added.json()['invitationId']}/accept")
        assert accepted.status == 200, accepted.body
    pending = owner.post("/api/members", {"email": f"{user}-pending@example.com", "role": "viewer"})
    assert pending.status == 202, pending.body
    invitation = pending.json().get("invitationId") or next(
        i.get("id") for i in owner.get("/api/members").json()["invitations"] if i["email"].startswith(f"{user}-pending")
    )
    collection = owner.post("/api/collections", {"name": f"{user} contracts"}).json()["id"]
    text = f"# Payment\n\nInvoices of {user} are paid within thirty days of receipt.\n".encode()
    document = upload(owner, collection, "terms.md", text)["documentId"]
    pipeline.settle()
    hit = owner.post("/api/search", {"query": "invoices paid"}).json()["results"][0]
    turn = owner.post("/api/chat", {"message": "When are invoices paid?"}, headers={"Accept": "application/json"})
    assert turn.status == 200, turn.body
    keys = [owner.post("/api/apikeys", {"name": n, "role": "member"}).json() for n in ("fuzz", "spare")]
    return {
        "owner": owner,
        "principal": owner.headers["x-ms-client-principal"],
        "tenant": me["tenant"]["id"],
        "user": me["user"]["id"],
        "colleague": colleague_id,
        "invitation": invitation,
        "collection": collection,
        "document": document,
        "chunk": hit["chunkId"],
        "session": turn.json()["sessionId"],
        "api_key": keys[0]["key"],
        "key_ids": [k["id"] for k in keys],
    }


@pytest.fixture(scope="module")
def world(host: str, pipeline: Any, fuzz_settings: None) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    client = Client(host)
    return {"a": _tenant(client, f"fuzz-ann-{tag}", pipeline), "b": _tenant(client, f"fuzz-bea-{tag}", pipeline)}


def _secret_ids(tenant: dict[str, Any]) -> set[str]:
    """Every id of ``tenant`` that must never appear in another tenant's responses."""
    ids = {tenant[k] for k in ("tenant", "user", "colleague", "collection", "document", "session", "invitation")}
    ids |= set(tenant["key_ids"])
    return ids | {i.replace("-", "") for i in ids} | {tenant["api_key"]}


def _path_choices(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[str | None]]:
    """Path parameter values to draw from: this tenant's real ids, the other tenant's, or None (generated)."""
    return {
        "collectionId": [a["collection"], b["collection"], None],
        "documentId": [a["document"], b["document"], None],
        "chunkId": [a["chunk"], b["chunk"], None],
        "sessionId": [a["session"], b["session"], None],
        "userId": [a["colleague"], a["user"], b["user"], None],
        "keyId": [a["key_ids"][1], b["key_ids"][1], None],
        "invitationId": [a["invitation"], b["invitation"], None],
    }


def _operations() -> list[str]:
    """Every operation's label, deletes last so the seeded rows serve the other routes first."""
    from shared.openapi import describe

    labels = [f"{method.upper()} {path}" for path, methods in describe()["paths"].items() for method in methods]
    return sorted(labels, key=lambda label: label.startswith("DELETE"))


def _negated(case: Any) -> set[str]:
    """The parts of a request (path, query, header, body) a negative case made invalid."""
    if case.meta is None:
        return set()
    return {str(getattr(loc, "value", loc)) for loc, info in case.meta.components.items() if info.mode.is_negative}


def _is_negative(case: Any) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_negative


def _whole_numbers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_integers(v) for v in value]
    return value


def _fuzz(
    label: str,
    host: str,
    me: dict[str, Any],
    other: dict[str, Any],
    doc: dict[str, Any],
    examples: int,
    *,
    counted: bool = True,
) -> None:
    """Fuzz one operation as ``me`` (its owner, or its API key), forbidding ``other``'s ids in any response."""
    import hypothesis
    import jsonschema  # type: ignore[import-untyped]
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_dict(doc)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    chat_event = jsonschema.Draft202012Validator({**doc, "$ref": "#/components/schemas/ChatEvent"})
    forbidden = _secret_ids(other)
    id_pattern = re.compile("|".join(re.escape(i) for i in sorted(forbidden, key=len, reverse=True)))
    choices = _path_choices(me, other)
    path_names = [p.name for p in operation.path_parameters]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    auths = st.sampled_from([{"x-ms-client-principal": me["principal"]}, {"Authorization": f"ApiKey {me['api_key']}"}])
    workspaces = st.sampled_from([None, me["tenant"], other["tenant"]])
    declared_query = {p.name for p in operation.query}
    paths = st.fixed_dictionaries({name: st.sampled_from(choices.get(name, [None])) for name in path_names})

    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @given(case=cases, auth=auths, workspace=workspaces, path=paths)
    def fuzz(case: Any, auth: dict[str, str], workspace: str | None, path: dict[str, str | None]) -> None:
        if time.monotonic() - RUN["started"] > TIME_BUDGET_SECONDS:
            return
        negated = _negated(case)
        if "query" in negated and set(case.query or {}) - declared_query:
            return  # unknown query parameters are ignored by design (proxies and caches add them)
        generated_auth = {k for k in case.headers or {} if k.lower() in ("authorization", "x-ms-client-principal")}
        if "header" in negated and generated_auth:
            return  # credentials are always the seeded user's (bad ones: tests/test_auth.py)
        if "header" in negated and "Authorization" in auth:
            return  # an API key ignores X-Folio-Workspace (docs/api.md), so a bad one is not refused
        if "path" not in negated:  # a real id of either tenant, or the generated one
            for name, value in path.items():
                if value is not None and case.path_parameters is not None:
                    case.path_parameters[name] = value
        headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-ms-client-principal")
        }
        if "header" not in negated:
            headers.pop("X-Folio-Workspace", None)
            if workspace is not None:
                headers["X-Folio-Workspace"] = workspace
        case.headers = headers
        if case.body is not None and not _is_negative(case):
            # JSON Schema counts 1.0 as an integer; the API (strict types) wants integers written as 1.
            case.body = _whole_numbers_as_integers(case.body)
        response = case.call(base_url=host, headers=auth)
        if counted:
            RUN["requests"][label] += 1
            RUN["statuses"][response.status_code] += 1
        leaked = id_pattern.search(response.text)
        assert leaked is None, f"{label} answered with the other tenant's id {leaked.group()}: {response.text[:500]}"
        content_type = response.headers.get("content-type") or [""]  # each header's values, as a list
        if content_type[0].startswith("application/x-ndjson"):
            for line in response.text.splitlines():  # schemathesis checks JSON bodies; each NDJSON line is one
                errors = [e.message for e in chat_event.iter_errors(json.loads(line))]
                assert not errors, f"{label}: NDJSON line {line[:300]} does not conform: {errors}"
        excluded = list(EXCLUDED_CHECKS.get(label, []))
        if response.status_code == 412 and "If-Match" in headers:
            excluded.append(positive_data_acceptance)  # a made-up ETag is rightly stale
        case.validate_response(response, excluded_checks=excluded)

    fuzz()


def _start() -> None:
    if RUN["started"] is None:
        RUN["started"] = time.monotonic()
        EXCLUDED_CHECKS.update(_exclusions())


def test_the_fuzzer_reports_a_response_the_description_does_not_allow(host: str, world: dict[str, Any]) -> None:
    """The same run against a description that says a collection's `documents` is a string must fail."""
    import copy

    from shared.config import get_settings
    from shared.openapi import describe_for

    _start()
    doc = copy.deepcopy(describe_for(get_settings()))
    doc["components"]["schemas"]["Collection"]["properties"]["documents"] = {"type": "string"}
    from schemathesis.core.failures import FailureGroup

    with pytest.raises(FailureGroup, match="Response violates schema") as failed:
        _fuzz("GET /api/collections/{collectionId}", host, world["a"], world["b"], doc, 20, counted=False)
    assert "/properties/documents" in str(failed.value.exceptions[0])


def test_the_fuzzer_reports_another_tenants_id(host: str, world: dict[str, Any]) -> None:
    """Forbidding the caller's own ids must fail at once: GET /api/me names the caller's workspace."""
    from shared.config import get_settings
    from shared.openapi import describe_for

    _start()
    with pytest.raises(AssertionError, match="other tenant's id"):
        _fuzz("GET /api/me", host, world["a"], world["a"], describe_for(get_settings()), 5, counted=False)


@pytest.mark.parametrize("label", _operations())
def test_fuzz_operation(label: str, host: str, world: dict[str, Any]) -> None:
    from shared.config import get_settings
    from shared.openapi import describe_for

    _start()
    _fuzz(label, host, world["a"], world["b"], describe_for(get_settings()), EXAMPLES_PER_OPERATION)


def test_fuzzing_figures(world: dict[str, Any]) -> None:
    """Runs last in this module: the run's figures, machine-readable, for docs/openapi.md."""
    requests = RUN["requests"]
    figures = {
        "seed": SEED,
        "examplesPerOperation": EXAMPLES_PER_OPERATION,
        "operations": len(_operations()),
        "operationsFuzzed": len(requests),
        "requests": sum(requests.values()),
        "statuses": {str(k): v for k, v in sorted(RUN["statuses"].items())},
        "seconds": round(time.monotonic() - RUN["started"], 1) if RUN["started"] else 0,
    }
    print("\nfuzzing: " + json.dumps(figures))
    assert figures["operationsFuzzed"] == figures["operations"], figures
