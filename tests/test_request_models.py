"""Request body models (shared/api_models.py) and their errors in Folio's words (shared/validation.py)."""

from __future__ import annotations

import typing
import uuid
from typing import Any

import pytest
from pydantic import AfterValidator, BaseModel

from shared import api_models
from shared.api_models import (
    REQUEST_BODIES,
    AddMember,
    ChatTurn,
    CreateApiKey,
    CreateCollection,
    RenameSession,
    RequestUpload,
    Search,
    SetChatKey,
)
from shared.chat.providers import BYO_PROVIDERS
from shared.errors import Invalid
from shared.search import MAX_TOP, MODES
from shared.validation import Body, validate_body
from tests.helpers import Client


def _refused(model: type[BaseModel], data: Any) -> Invalid:
    with pytest.raises(Invalid) as raised:
        validate_body(model, data)
    assert raised.value.status == 400
    return raised.value


def test_unknown_fields_are_all_named_with_their_path() -> None:
    error = _refused(Search, {"query": "x", "owner": "mallory", "filters": {"colour": ["red"]}})
    assert error.detail == "Unknown field(s): filters.colour, owner."
    assert error.extensions["fields"] == ["filters.colour", "owner"]
    # Only the wire name is a field: the Python attribute name is unknown.
    assert _refused(Search, {"query": "x", "collection_ids": []}).extensions["fields"] == ["collection_ids"]


def test_json_true_is_not_an_integer_and_a_number_is_not_a_string() -> None:
    for top in (True, 1.0, 1.5, "3"):
        error = _refused(Search, {"query": "x", "top": top})
        assert error.detail == "Field 'top' must be an integer." and error.extensions["fields"] == ["top"]
    for name in (42, True, ["a"]):
        assert _refused(CreateCollection, {"name": name}).detail == "Field 'name' must be a string."


def test_a_nested_error_names_the_field_path() -> None:
    error = _refused(Search, {"query": "x", "filters": {"docType": ["contract", 5]}})
    assert error.detail == "Field 'filters.docType' must be an array of strings."
    assert error.extensions["fields"] == ["filters.docType"]
    assert (
        _refused(Search, {"query": "x", "filters": {"docType": "contract"}}).detail
        == "Field 'filters.docType' must be an array."
    )
    assert _refused(Search, {"query": "x", "filters": ["docType"]}).detail == "Field 'filters' must be an object."
    error = _refused(Search, {"query": "x", "filters": {"documentIds": [str(uuid.uuid4()), "nope"]}})
    assert error.detail == "Field 'filters.documentIds' holds a malformed id."
    assert (
        _refused(Search, {"query": "x", "filters": {"jurisdiction": ["x"] * 51}}).detail
        == "Field 'filters.jurisdiction' must hold at most 50 items."
    )


def test_a_lone_surrogate_is_not_unicode_text() -> None:
    probes: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (CreateCollection, {"name": "bad \ud800 name"}),
        (Search, {"query": "x \udfff y"}),
        (Search, {"query": "x", "filters": {"docType": ["\ud800"]}}),
    ]
    for model, data in probes:
        error = _refused(model, data)
        assert error.detail.endswith("is not valid Unicode text."), error.detail


@pytest.mark.parametrize("text", ["invoice\u202etxt.pdf", "a\u2066b", "a\x00b", "a\x7fb", "a\x85b", "a\x1bb"])
def test_bidi_controls_and_control_characters_are_refused_everywhere(text: str) -> None:
    assert (
        _refused(RequestUpload, {"filename": text, "size": 5}).detail == "Field 'filename' contains control characters."
    )
    assert (
        _refused(CreateCollection, {"name": "x", "description": text}).detail
        == "Field 'description' contains control characters."
    )
    assert _refused(Search, {"query": "x", "filters": {"docType": [text]}}).extensions["fields"] == ["filters.docType"]


@pytest.mark.parametrize("text", ["a\tb", "a\nb", "a\r\nb", "a\u2028b", "a\u2029b"])
def test_single_line_fields_refuse_tabs_and_line_breaks_that_text_fields_keep(text: str) -> None:
    assert _refused(CreateCollection, {"name": text}).detail == "Field 'name' contains control characters."
    assert _refused(RenameSession, {"title": text}).extensions["fields"] == ["title"]
    if "\u2028" not in text and "\u2029" not in text:
        assert validate_body(CreateCollection, {"name": "x", "description": text}).description == text


def test_strings_are_stripped_before_their_limits() -> None:
    assert validate_body(CreateCollection, {"name": "  Contracts \n"}).name == "Contracts"
    assert validate_body(CreateCollection, {"name": " " * 10 + "x" * 200 + " " * 10}).name == "x" * 200
    assert _refused(CreateCollection, {"name": "   "}).detail == "Field 'name' must not be empty."
    assert _refused(CreateCollection, {"name": "x" * 201}).detail == "Field 'name' must be at most 200 characters."
    assert (
        _refused(AddMember, {"email": "ab", "role": "viewer"}).detail == "Field 'email' must be at least 3 characters."
    )


def test_null_is_the_same_as_an_absent_field() -> None:
    assert validate_body(CreateCollection, {"name": "x", "description": None}).description == ""
    assert validate_body(ChatTurn, {"message": "hi", "sessionId": None}).session_id is None
    assert validate_body(CreateApiKey, {"name": "ci", "role": None}).role == "viewer"
    assert _refused(CreateCollection, {"name": None}).detail == "Field 'name' is required."
    assert _refused(CreateCollection, {}).extensions["fields"] == ["name"]


def test_choices_and_bounds_are_stated() -> None:
    assert (
        _refused(Search, {"query": "x", "mode": "fuzzy"}).detail
        == "Field 'mode' must be one of: hybrid, lexical, vector."
    )
    assert (
        _refused(AddMember, {"email": "a@example.com", "role": "admin"}).detail
        == "Field 'role' must be one of: owner, member, viewer."
    )
    assert (
        _refused(SetChatKey, {"provider": "gemini", "apiKey": "k"}).detail
        == "Field 'provider' must be one of: openai, anthropic."
    )
    for top in (0, MAX_TOP + 1, 10**30):
        assert _refused(Search, {"query": "x", "top": top}).detail == f"Field 'top' must be between 1 and {MAX_TOP}."
    assert _refused(RequestUpload, {"filename": "a.md", "size": -1}).detail == "Field 'size' must be at least 1."


def test_the_body_must_be_an_object() -> None:
    for data in (["name"], "name", 5, True):
        error = _refused(CreateCollection, data)
        assert error.detail == "The request body must be a JSON object." and "fields" not in error.extensions


def test_details_are_folios_words_without_the_input() -> None:
    secret = "sk-do-not-echo-me"
    probes: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (SetChatKey, {"provider": secret, "apiKey": "k"}),
        (Search, {"query": "x", "top": secret}),
        (Search, {"query": "x", "collectionIds": [secret]}),
        (CreateCollection, {"name": secret, secret: 1}),
        (ChatTurn, {"message": secret + "\x00"}),
    ]
    for model, data in probes:
        detail = _refused(model, data).detail
        assert secret not in detail.replace(f"Unknown field(s): {secret}", "")
        for pydantic_words in ("Input should", "validation error", "pydantic", "type=", "[key]"):
            assert pydantic_words not in detail, detail


def test_valid_bodies_arrive_typed() -> None:
    collection = uuid.uuid4()
    search = validate_body(
        Search,
        {
            "query": " payment terms ",
            "mode": "lexical",
            "top": 5,
            "collectionIds": [str(collection)],
            "filters": {"docType": [" contract "], "jurisdiction": None},
        },
    )
    assert (search.query, search.mode, search.top, search.collection_ids) == (
        "payment terms",
        "lexical",
        5,
        [collection],
    )
    assert (search.filters.doc_type, search.filters.jurisdiction, search.filters.document_ids) == (["contract"], [], [])
    turn = validate_body(ChatTurn, {"message": "hi", "sessionId": "not-a-uuid"})
    assert turn.session_id == "not-a-uuid"  # malformed session ids stay a 404 in the blueprint, like unknown ones
    key = validate_body(SetChatKey, {"provider": "openai", "apiKey": " sk-x ", "model": "gpt-4o-mini"})
    assert (key.provider, key.api_key, key.model) == ("openai", "sk-x", "gpt-4o-mini")


# --- the models as the one statement of each body ------------------------------------------------


def _text_checked(annotation: Any, metadata: list[Any]) -> list[str]:
    """Paths to every ``str`` inside ``annotation`` that carries no text check of shared.validation."""
    checked = any(isinstance(m, AfterValidator) and m.func.__module__ == "shared.validation" for m in metadata)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *more = typing.get_args(annotation)
        return _text_checked(inner, metadata + more)
    if annotation is str:
        return [] if checked else ["str"]
    if origin is typing.Literal:
        return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [
            f"{name}.{bad}"
            for name, field in annotation.model_fields.items()
            for bad in _text_checked(field.annotation, list(field.metadata))
        ]
    # Union members share the field's constraints; a list's constraints are not its items'.
    item_metadata = [] if origin is list else metadata
    return [bad for arg in typing.get_args(annotation) for bad in _text_checked(arg, item_metadata)]


def test_every_string_field_is_checked_text() -> None:
    assert [(model.__name__, _text_checked(model, [])) for model in REQUEST_BODIES] == [
        (model.__name__, []) for model in REQUEST_BODIES
    ]


def test_every_body_model_is_listed() -> None:
    defined = {
        value
        for value in vars(api_models).values()
        if isinstance(value, type) and issubclass(value, Body) and value.__module__ == api_models.__name__
    }
    assert defined - {api_models.SearchFilters} == set(REQUEST_BODIES)


def test_choices_match_the_services() -> None:
    assert typing.get_args(api_models.SearchMode) == MODES
    assert typing.get_args(api_models.ByoProvider) == BYO_PROVIDERS


def test_json_schema_states_names_types_and_limits() -> None:
    schema = Search.model_json_schema()
    assert schema["additionalProperties"] is False and schema["required"] == ["query"]
    props = schema["properties"]
    assert set(props) == {"query", "mode", "top", "collectionIds", "filters"}
    assert (props["top"]["minimum"], props["top"]["maximum"], props["top"]["default"]) == (1, MAX_TOP, 10)
    assert props["mode"]["enum"] == list(MODES)
    assert props["collectionIds"]["items"]["format"] == "uuid" and props["collectionIds"]["maxItems"] == 100
    assert props["query"]["maxLength"] == 4000
    filters = schema["$defs"]["SearchFilters"]
    assert set(filters["properties"]) == {"docType", "jurisdiction", "documentIds"}
    for model in REQUEST_BODIES:
        assert model.model_json_schema()["additionalProperties"] is False, model


# --- through the HTTP adapter ---------------------------------------------------------------------


def test_problem_json_names_the_field_path_over_http(client: Client) -> None:
    user = client.as_user(f"models-{uuid.uuid4().hex[:8]}")
    got = user.post("/api/search", {"query": "x", "filters": {"docType": ["a\u202eb"]}})
    assert got.status == 400 and got.headers["content-type"].startswith("application/problem+json")
    problem = got.json()
    assert problem["fields"] == ["filters.docType"]
    assert problem["detail"] == "Field 'filters.docType' contains control characters."
    form = user.request(
        "POST", "/api/collections", body=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status == 415
    empty = user.request("POST", "/api/collections", body=b"", headers={"Content-Type": "application/json"})
    assert empty.status == 400 and empty.json()["detail"] == "The request body is empty; send a JSON object."
