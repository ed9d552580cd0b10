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
    """One source of truth: the body schema is pydantic's own for the model the handler validates with."""
    from shared import api_models
    from shared.openapi import OPERATIONS, describe

    doc = describe()
    schemas = doc["components"]["schemas"]
    bodies = {op.body for op in OPERATIONS if op.body is not None}
    assert bodies == set(api_models.REQUEST_BODIES)
    for model in bodies:
        own = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        own.pop("$defs", None)
        assert schemas[model.__name__] == own, model.__name__
    search = schemas["Search"]
    assert search["additionalProperties"] is False and search["required"] == ["query"]
    assert search["properties"]["top"]["maximum"] == 50
    assert set(search["properties"]) == {"query", "mode", "top", "collectionIds", "filters"}


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
