"""Collections over real HTTP: create, list, get, delete, and every kind of bad input."""

from __future__ import annotations

import http.client
import json
import socket
import uuid
from typing import Any
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


# --- access settings in the real browser (#18) ----------------------------------------------------

from tests import test_web_app  # noqa: E402
from tests.test_invitations import invite_and_accept  # noqa: E402
from tests.test_web_app import Shots, _accessibility_problems, _sign_in_as  # noqa: E402

# The browser fixtures of the web app's suite: the built app on its own origin, Chromium, a watched tab.
chromium, built_app, web, browser, page = (
    test_web_app.chromium,
    test_web_app.built_app,
    test_web_app.web,
    test_web_app.browser,
    test_web_app.page,
)


def test_an_owner_restricts_a_collection_in_the_browser_and_a_member_stops_seeing_it(
    page: Any, web: str, host: str
) -> None:
    from playwright.sync_api import expect

    shot = Shots("access")
    tag = uuid.uuid4().hex[:8]
    owner = Client(host).as_user(f"owner-{tag}", email=f"owner-{tag}@example.com")
    member = Client(host).as_user(f"carl-{tag}", email=f"carl-{tag}@example.com")
    workspace = owner.get("/api/me").json()["tenant"]["id"]
    member.get("/api/me")
    invite_and_accept(owner, member, f"carl-{tag}@example.com", "member")
    in_workspace = member.with_headers(**{"x-folio-workspace": workspace})
    secret = owner.post("/api/collections", {"name": "Mergers"}).json()["id"]
    owner.post("/api/collections", {"name": "Policies"})
    group = str(uuid.uuid4())

    # The owner restricts it to a group, by keyboard and mouse, and the page says so.
    _sign_in_as(page, web, owner)
    page.goto(f"{web}/collections/{secret}")
    expect(page.get_by_role("heading", name="Access", level=2)).to_be_visible()
    expect(page.get_by_label("Everyone in the workspace")).to_be_checked()
    expect(page.get_by_label(f"carl-{tag}@example.com")).not_to_be_checked()
    page.get_by_label("Only the people and groups below").check()
    page.get_by_label("Group object id").fill("finance")
    page.get_by_role("button", name="Add group").click()
    expect(page.locator(".form-error")).to_contain_text("Entra object id")
    page.get_by_label("Group object id").fill(group.upper())
    page.get_by_label("Label (optional)").fill("Finance team")
    page.get_by_role("button", name="Add group").click()
    expect(page.locator(".access-groups li")).to_have_count(1)
    expect(page.locator(".access-groups")).to_contain_text("Finance team")
    page.get_by_role("button", name="Save access").click()
    expect(page.locator(".access-note")).to_be_visible()
    expect(page.locator(".access-note")).to_contain_text("Restricted")
    shot(page, "restricted")
    assert _accessibility_problems(page) == []
    access = owner.get(f"/api/collections/{secret}/access").json()
    assert access["mode"] == "restricted" and access["groups"] == [{"id": group, "label": "Finance team"}]
    assert access["members"] == []
    assert secret not in {c["id"] for c in in_workspace.get("/api/collections").json()["collections"]}

    # The member's browser: the collection is not listed, and its address is "not found".
    def as_member() -> None:
        _sign_in_as(page, web, member)
        page.evaluate("w => localStorage.setItem('folio.workspace', w)", workspace)
        page.goto(web + "/")

    as_member()
    expect(page.get_by_role("link", name="Policies")).to_be_visible()
    expect(page.get_by_role("link", name="Mergers")).to_have_count(0)
    page.goto(f"{web}/collections/{secret}")
    expect(page.locator(".documents-region")).to_contain_text("No such collection.")
    expect(page.get_by_role("heading", name="Access")).to_have_count(0)  # owners only
    shot(page, "member-without-access")

    # The owner names the member: they see it at once, marked restricted.
    _sign_in_as(page, web, owner)
    page.goto(f"{web}/collections/{secret}")
    page.get_by_label(f"carl-{tag}@example.com").check()
    page.get_by_role("button", name="Save access").click()
    expect(page.locator(".access-member input:checked")).to_have_count(1)
    expect(page.locator(".access-groups li")).to_have_count(1)  # the group stays
    as_member()
    card = page.locator(".collection-card", has_text="Mergers")
    expect(card).to_contain_text("Restricted")
    shot(page, "member-named")

    # Opening it to everyone takes the mark away.
    _sign_in_as(page, web, owner)
    page.goto(f"{web}/collections/{secret}")
    page.get_by_label("Everyone in the workspace").check()
    page.get_by_role("button", name="Save access").click()
    expect(page.locator(".access-note")).to_be_hidden()
    assert owner.get(f"/api/collections/{secret}").json()["access"] == "open"
