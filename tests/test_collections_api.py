"""Collections over real HTTP: create, list, get, delete, and every kind of bad input."""

from __future__ import annotations

import http.client
import json
import socket
import uuid
from urllib.parse import urlsplit

import pytest

from tests.helpers import Client


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_create_list_get_delete_collection(client: Client) -> None:
    alice = client.as_user(_unique("alice"))
    created = alice.post("/api/collections", {"name": "Contracts", "description": "signed ones"})
    assert created.status == 201, created.body
    body = created.json()
    assert body["name"] == "Contracts" and body["description"] == "signed ones" and body["documents"] == 0
    assert created.headers["location"] == f"/api/collections/{body['id']}"

    listed = alice.get("/api/collections").json()["collections"]
    assert [c["id"] for c in listed] == [body["id"]]
    assert alice.get(f"/api/collections/{body['id']}").json() == body

    assert alice.delete(f"/api/collections/{body['id']}").status == 204
    assert alice.get(f"/api/collections/{body['id']}").status == 404
    assert alice.delete(f"/api/collections/{body['id']}").status == 404


def test_duplicate_collection_name_is_a_conflict(client: Client) -> None:
    alice = client.as_user(_unique("alice"))
    assert alice.post("/api/collections", {"name": "Same"}).status == 201
    again = alice.post("/api/collections", {"name": "Same"})
    assert again.status == 409
    assert again.json()["type"].endswith("/conflict")


def test_bad_json_is_a_clear_400(client: Client) -> None:
    alice = client.as_user(_unique("alice"))
    response = alice.request(
        "POST", "/api/collections", body=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/invalid-request") and "not valid JSON" in problem["detail"]


def test_wrong_types_unknown_fields_and_missing_fields_are_400(client: Client) -> None:
    alice = client.as_user(_unique("alice"))
    cases = [
        ({"name": 42}, "must be a string"),
        ({"name": True}, "must be a string"),
        ({"name": "x", "owner": "mallory"}, "Unknown field(s): owner"),
        ({}, "'name' is required"),
        ({"name": "   "}, "must not be empty"),
        ({"name": "x" * 201}, "at most 200"),
        (["name"], "must be a JSON object"),
        ({"name": "a\x00b"}, "control characters"),
    ]
    for body, message in cases:
        response = alice.post("/api/collections", body)
        assert response.status == 400, body
        assert message in response.json()["detail"], (body, response.json())
    assert alice.get("/api/collections").json()["collections"] == []


def test_oversize_body_is_413_and_creates_nothing(client: Client) -> None:
    alice = client.as_user(_unique("alice"))
    huge = b'{"name": "big", "description": "' + b"x" * 1_100_000 + b'"}'
    response = alice.request("POST", "/api/collections", body=huge, headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert alice.get("/api/collections").json()["collections"] == []


def test_oversize_chunked_body_is_413_without_a_declared_length(client: Client) -> None:
    """A chunked body declares no length: the limit still holds, counted as the body arrives."""
    alice = client.as_user(_unique("alice"))
    alice.get("/api/me")
    split = urlsplit(client.base_url)
    conn = http.client.HTTPConnection(split.netloc, timeout=30)
    parts = [b'{"name": "big", "description": "'] + [b"x" * 65536] * 20 + [b'"}']
    try:
        conn.request(
            "POST",
            "/api/collections",
            body=iter(parts),
            encode_chunked=True,
            headers={**alice.headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        )
        response = conn.getresponse()
        status, problem = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == 413 and problem["type"].endswith("/payload-too-large"), problem
    assert alice.get("/api/collections").json()["collections"] == []


def test_non_json_content_type_is_415(client: Client) -> None:
    alice = client.as_user(_unique("alice"))
    response = alice.request(
        "POST", "/api/collections", body=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 415
    # No type at all is what a cross-site fetch of a Blob sends without a CORS preflight: refused too.
    untyped = alice.request("POST", "/api/collections", body=b'{"name": "csrf"}')
    assert untyped.status == 415
    assert alice.get("/api/collections").json()["collections"] == []


def test_a_body_that_stops_arriving_is_408_not_a_hang(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from blueprints import _http

    monkeypatch.setattr(_http, "BODY_READ_SECONDS", 0.5)
    alice = client.as_user(_unique("alice"))
    alice.get("/api/me")
    split = urlsplit(client.base_url)
    with socket.create_connection((split.hostname, split.port), timeout=30) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in alice.headers.items())
        sock.sendall(
            f"POST /api/collections HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100\r\n{head}\r\n".encode()
            + b'{"name": "sl'
        )
        reply = b""
        while b"request-timeout" not in reply and (part := sock.recv(65536)):  # headers and body may come apart
            reply += part
    assert reply.startswith(b"HTTP/1.1 408") and b"request-timeout" in reply
    assert alice.get("/api/collections").json()["collections"] == []


def test_malformed_and_unknown_ids_are_404(client: Client) -> None:
    alice = client.as_user(_unique("alice"))
    assert alice.get("/api/collections/not-a-uuid").status == 404
    assert alice.get(f"/api/collections/{uuid.uuid4()}").status == 404


def test_unauthenticated_requests_are_401(client: Client) -> None:
    response = client.get("/api/collections")
    assert response.status == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_mutations_are_audited(client: Client) -> None:
    alice = client.as_user(_unique("alice"))
    created = alice.post("/api/collections", {"name": "Audited"}).json()
    alice.delete(f"/api/collections/{created['id']}")
    entries = alice.get("/api/audit").json()["entries"]
    actions = [(e["action"], e["target"]["id"]) for e in entries]
    assert ("collection.delete", created["id"]) in actions and ("collection.create", created["id"]) in actions
    assert all(e["invocationId"] for e in entries)
    me = alice.get("/api/me").json()
    assert {e["actor"]["id"] for e in entries} == {me["user"]["id"]}
