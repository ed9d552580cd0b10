"""Workspace members: owners invite people by email with a role, who join by accepting; roles are enforced."""

from __future__ import annotations

from tests.helpers import Client
from tests.test_invitations import invite_and_accept, person


def test_invited_user_joins_the_workspace_when_they_accept(client: Client) -> None:
    owner, _ = person(client)
    workspace = owner.get("/api/me").json()["tenant"]["id"]
    guest_client, guest_email = person(client)
    invited = owner.post("/api/members", {"email": guest_email.upper(), "role": "viewer"})
    assert invited.status == 202 and invited.json()["status"] == "invited"

    me = guest_client.get("/api/me").json()  # first sign-in: an invitation waits, nothing joined yet
    assert workspace not in {w["id"] for w in me["workspaces"]}
    accepted = guest_client.post(f"/api/invitations/{invited.json()['invitationId']}/accept")
    assert accepted.status == 200
    me = guest_client.get("/api/me").json()
    roles = {w["id"]: w["role"] for w in me["workspaces"]}
    assert roles[workspace] == "viewer" and me["tenant"]["id"] != workspace  # personal one stays default

    in_shared = guest_client.with_headers(**{"x-folio-workspace": workspace})
    assert in_shared.get("/api/me").json()["role"] == "viewer"
    assert in_shared.get("/api/collections").status == 200
    assert in_shared.post("/api/collections", {"name": "viewer write"}).status == 403
    emails = {m["email"] for m in owner.get("/api/members").json()["members"]}
    assert guest_email in emails


def test_existing_user_is_invited_too_and_becomes_a_member_on_accepting(client: Client) -> None:
    owner, _ = person(client)
    member, member_email = person(client)
    member.get("/api/me")  # has signed in before
    workspace = invite_and_accept(owner, member, member_email, "member")
    assert owner.post("/api/members", {"email": member_email, "role": "member"}).status == 409
    shared = member.with_headers(**{"x-folio-workspace": workspace})
    created = shared.post("/api/collections", {"name": "team doc"})
    assert created.status == 201
    assert created.json()["id"] in {c["id"] for c in owner.get("/api/collections").json()["collections"]}
    # A member cannot manage membership.
    assert shared.post("/api/members", {"email": "x@example.com", "role": "owner"}).status == 403


def test_removed_member_loses_access_immediately(client: Client) -> None:
    owner, _ = person(client)
    workspace = owner.get("/api/me").json()["tenant"]["id"]
    member, email = person(client)
    member_id = member.get("/api/me").json()["user"]["id"]
    invite_and_accept(owner, member, email, "member")
    shared = member.with_headers(**{"x-folio-workspace": workspace})
    assert shared.get("/api/collections").status == 200
    assert owner.delete(f"/api/members/{member_id}").status == 204
    assert shared.get("/api/collections").status == 404


def test_the_founder_cannot_leave_their_personal_workspace_but_a_co_owner_can(client: Client) -> None:
    owner, _ = person(client)
    me = owner.get("/api/me").json()
    response = owner.delete(f"/api/members/{me['user']['id']}")
    # Every workspace starts as someone's personal one, so this also keeps at least one owner.
    assert response.status == 409 and "founder" in response.json()["detail"]
    co_owner, email = person(client)
    workspace = invite_and_accept(owner, co_owner, email, "owner")
    co_owner_id = co_owner.get("/api/me").json()["user"]["id"]
    assert co_owner.with_headers(**{"x-folio-workspace": workspace}).delete(f"/api/members/{co_owner_id}").status == 204


def test_invalid_member_requests_are_400(client: Client) -> None:
    owner, _ = person(client)
    assert owner.post("/api/members", {"email": "not-an-email", "role": "member"}).status == 400
    assert owner.post("/api/members", {"email": "a@b.co", "role": "admin"}).status == 400
    assert owner.post("/api/members", {"email": "a@b.co"}).status == 400
