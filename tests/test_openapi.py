"""The OpenAPI description: every registered route described and nothing else, bodies from the request models, served."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Client


def _registered() -> list[tuple[str, str, list[str]]]:
    """(function name, route, methods) of every HTTP function the app registers, read from the app itself."""
    import function_app
    from devhost.functions import http_routes, registrations

    return [
        (route.registration.name, route.template, sorted(route.methods))
        for route in http_routes(registrations(function_app.app))
    ]


def test_every_registered_route_is_described_and_every_described_route_exists() -> None:
    from shared.openapi import route_problems

    registered = _registered()
    assert len(registered) >= 33  # the app's HTTP functions, this one included
    assert route_problems(registered) == []


def test_the_route_check_reports_an_undescribed_route_and_a_vanished_one() -> None:
    from shared.openapi import route_problems

    registered = _registered()
    extra = [*registered, ("members_promote", "members/{userId}/role", ["PUT"])]
    assert route_problems(extra) == ["registered but not described: PUT /members/{userId}/role (members_promote)"]
    fewer = [r for r in registered if r[0] != "passages_get"]
    assert route_problems(fewer) == [
        "described but not registered: GET /documents/{documentId}/chunks/{chunkId} (passages_get)"
    ]


def test_request_bodies_are_the_validating_models_schemas() -> None:
    """One source of truth: each body schema is pydantic's own for the model the handler validates with,
    with optional fields also taking null (the models treat null as absent) and the upload's file types."""
    from shared import api_models
    from shared.openapi import OPERATIONS, describe

    doc = describe()
    schemas = doc["components"]["schemas"]
    bodies = {op.body for op in OPERATIONS if op.body is not None}
    assert bodies == set(api_models.REQUEST_BODIES)
    for model in bodies:
        own = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        described = schemas[model.__name__]
        assert described["required"] == own.get("required", []) or "required" not in own, model.__name__
        assert described["additionalProperties"] is False
        assert set(described["properties"]) == set(own["properties"]), model.__name__
        for name, prop in own["properties"].items():
            if name in own.get("required", []):  # the model's own schema, narrowed where a service refuses more
                narrowed = {("Search", "query"): {"maxLength"}}.get((model.__name__, name), set())
                kept = {k: v for k, v in described["properties"][name].items() if k in prop and k not in narrowed}
                assert kept == {k: v for k, v in prop.items() if k not in narrowed}, (model.__name__, name)
            else:  # optional: null too, unless it already takes null
                bare = {k: v for k, v in prop.items() if k not in ("default", "title", "description")}
                options = described["properties"][name]["anyOf"]
                assert options in ([bare, {"type": "null"}], bare.get("anyOf")), (model.__name__, name)
    search = schemas["Search"]
    assert search["required"] == ["query"]
    assert search["properties"]["top"]["anyOf"][0]["maximum"] == 50
    assert set(search["properties"]) == {"query", "mode", "top", "collectionIds", "filters"}


def test_descriptions_state_the_rules_the_models_and_services_apply() -> None:
    """What the description says a field holds is what validation accepts, in both directions."""
    import re

    from shared import api_models
    from shared.errors import Invalid
    from shared.openapi import Installation, describe
    from shared.validation import validate_body

    schemas = describe(Installation(max_upload_bytes=1000, plans_for_sale=("pro",)))["components"]["schemas"]
    name = re.compile(schemas["CreateCollection"]["properties"]["name"]["pattern"])
    for text in ("a", " a ", "a b", "\x1ca", "a\x85", "\x85a", "", "  ", "a\tb", "a\u202eb", "\u3000x\u3000"):
        try:
            validate_body(api_models.CreateCollection, {"name": text})
            accepted = True
        except Invalid:
            accepted = False
        assert bool(name.match(text)) is accepted, repr(text)
    upload = schemas["RequestUpload"]
    assert upload["properties"]["size"]["maximum"] == 1000
    pdf = next(b for b in upload["oneOf"] if "application/pdf" in b["properties"]["contentType"]["enum"])
    filename = re.compile(pdf["properties"]["filename"]["pattern"])
    assert filename.match("Report.PDF") and filename.match("..a.pdf ") and not filename.match(".pdf")
    assert not filename.match("dir/a.pdf") and not filename.match("a.pdf.txt")
    assert schemas["StartCheckout"]["properties"]["plan"]["enum"] == ["pro"]


def test_every_operation_describes_errors_as_problem_json_and_its_security() -> None:
    from shared.openapi import describe

    doc = describe()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["components"]["securitySchemes"]) == {"entraBearer", "apiKey", "swaPrincipal"}
    count = 0
    for path, methods in doc["paths"].items():
        assert path.startswith("/api/")
        for method, op in methods.items():
            count += 1
            errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
            assert errors and all(
                r["content"] == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                for r in errors.values()
            ), (method, path)
            anonymous = path in ("/api/health", "/api/openapi.json", "/api/stripe/webhook")
            assert (op["security"] == []) is anonymous, (method, path)
            assert ("401" in op["responses"]) is not anonymous, (method, path)
    assert count == len(_registered())
    chat = doc["paths"]["/api/chat"]["post"]["responses"]["200"]["content"]
    assert set(chat) == {"application/x-ndjson", "application/json"}
    events = doc["components"]["schemas"]["ChatEvent"]
    assert set(events["discriminator"]["mapping"]) == {"session", "delta", "citations", "done", "error"}


def test_the_description_is_valid_openapi_3_1() -> None:
    """Checked by Schemathesis' own loader, which refuses a malformed document."""
    import schemathesis
    from schemathesis.core.result import Ok

    from shared.openapi import describe

    schema = schemathesis.openapi.from_dict(describe())
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results)
    assert len(results) == len(_registered())


def _json_schema_valid(instance: Any, ref: str, doc: dict[str, Any]) -> list[str]:
    import jsonschema  # type: ignore[import-untyped]

    resolver_doc = {**doc, "$ref": ref}
    validator = jsonschema.Draft202012Validator(resolver_doc)
    return [e.message for e in validator.iter_errors(instance)]


def test_served_at_api_openapi_json_without_credentials(host: str) -> None:
    from shared.openapi import describe

    response = Client(host).get("/api/openapi.json")
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("application/json")
    served = response.json()
    assert served == describe()
    assert _json_schema_valid(served, "#/components/schemas/OpenApiDocument", served) == []


@pytest.mark.parametrize(
    ("ref", "instance", "ok"),
    [
        (
            "Problem",
            {"type": "https://folio.dev/problems/not-found", "title": "Not found", "status": 404, "detail": "x"},
            True,
        ),
        ("Problem", {"type": "x", "title": "t", "status": 200, "detail": "x"}, False),
        ("Collection", {"id": "1", "name": "n", "description": "", "createdAt": "2026-01-01T00:00:00Z"}, False),
    ],
)
def test_reply_schemas_refuse_what_the_api_must_not_send(ref: str, instance: dict[str, Any], ok: bool) -> None:
    from shared.openapi import describe

    doc = describe()
    assert (_json_schema_valid(instance, f"#/components/schemas/{ref}", doc) == []) is ok
