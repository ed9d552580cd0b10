"""Hostile review, round two (#17 items 5, 9): the founder stays, a removed creator's keys die, caps hold."""

from __future__ import annotations

from typing import Any

from tests.helpers import Client
from tests.test_invitations import invite_and_accept, person


def test_a_co_owner_cannot_remove_the_founder_from_their_personal_workspace(client: Client) -> None:
    founder, _ = person(client)
    founder_id = founder.get("/api/me").json()["user"]["id"]
    co_owner, email = person(client)
    workspace = invite_and_accept(founder, co_owner, email, "owner")
    as_co_owner = co_owner.with_headers(**{"x-folio-workspace": workspace})

    refused = as_co_owner.delete(f"/api/members/{founder_id}")
    assert refused.status == 409 and "founder" in refused.json()["detail"]
    assert founder.get("/api/collections").status == 200  # still in, still the default workspace
    assert founder.get("/api/me").json()["tenant"]["id"] == workspace
    # The founder may still remove the co-owner.
    co_owner_id = co_owner.get("/api/me").json()["user"]["id"]
    assert founder.delete(f"/api/members/{co_owner_id}").status == 204


def test_removing_a_member_revokes_the_api_keys_they_created(client: Client) -> None:
    founder, _ = person(client)
    co_owner, email = person(client)
    workspace = invite_and_accept(founder, co_owner, email, "owner")
    as_co_owner = co_owner.with_headers(**{"x-folio-workspace": workspace})
    theirs = as_co_owner.post("/api/apikeys", {"name": "co-owner's", "role": "member"}).json()
    mine = founder.post("/api/apikeys", {"name": "founder's", "role": "member"}).json()
    their_robot = Client(client.base_url, {"Authorization": f"ApiKey {theirs['key']}"})
    my_robot = Client(client.base_url, {"Authorization": f"ApiKey {mine['key']}"})
    assert their_robot.get("/api/collections").status == 200

    co_owner_id = co_owner.get("/api/me").json()["user"]["id"]
    assert founder.delete(f"/api/members/{co_owner_id}").status == 204
    assert their_robot.get("/api/collections").status == 401
    assert my_robot.get("/api/collections").status == 200
    keys = {k["id"]: k for k in founder.get("/api/apikeys").json()["apiKeys"]}
    assert keys[theirs["id"]]["revokedAt"] is not None and keys[mine["id"]]["revokedAt"] is None
    removal = founder.get("/api/audit").json()["entries"][0]
    assert removal["action"] == "member.remove" and removal["details"]["revokedApiKeys"] == [theirs["id"]]


def test_collections_are_capped_per_workspace(client: Client, settings_override: Any) -> None:
    settings_override(MAX_COLLECTIONS_PER_WORKSPACE="2")
    owner, _ = person(client)
    assert [owner.post("/api/collections", {"name": f"c{i}"}).status for i in range(2)] == [201, 201]
    over = owner.post("/api/collections", {"name": "c2"})
    assert over.status == 409 and over.json()["limit"] == "maxCollections"
    first = owner.get("/api/collections").json()["collections"][0]["id"]
    assert owner.delete(f"/api/collections/{first}").status == 204
    assert owner.post("/api/collections", {"name": "c2"}).status == 201


def test_active_api_keys_are_capped_per_workspace(client: Client, settings_override: Any) -> None:
    settings_override(MAX_API_KEYS="2")
    owner, _ = person(client)
    created = [owner.post("/api/apikeys", {"name": f"k{i}", "role": "viewer"}) for i in range(2)]
    assert [c.status for c in created] == [201, 201]
    over = owner.post("/api/apikeys", {"name": "k2", "role": "viewer"})
    assert over.status == 409 and over.json()["limit"] == "maxApiKeys"
    assert owner.delete(f"/api/apikeys/{created[0].json()['id']}").status == 204
    assert owner.post("/api/apikeys", {"name": "k2", "role": "viewer"}).status == 201


def test_a_co_owner_cannot_demote_the_founder_of_a_personal_workspace(client: Client) -> None:
    """There is no role-change endpoint, and the one indirect way (invite the founder to their own
    workspace at a lower role and have them accept) is refused: they are already a member (and an
    accepted invitation never changes an existing membership: folio_answer_invitation, 0008)."""
    founder, founder_email = person(client)
    me = founder.get("/api/me").json()
    founder_id = me["user"]["id"]
    co_owner, email = person(client)
    workspace = invite_and_accept(founder, co_owner, email, "owner")
    as_co_owner = co_owner.with_headers(**{"x-folio-workspace": workspace})

    no_route = as_co_owner.request("PUT", f"/api/members/{founder_id}/role", json_body={"role": "viewer"})
    no_method = as_co_owner.request("PATCH", f"/api/members/{founder_id}", json_body={"role": "viewer"})
    assert (no_route.status, no_method.status) == (404, 405)
    invited = as_co_owner.post("/api/members", {"email": founder_email, "role": "viewer"})
    assert invited.status == 409 and "already a member" in invited.json()["detail"]
    roles = {m["userId"]: m["role"] for m in founder.get("/api/members").json()["members"]}
    assert roles[founder_id] == "owner"
    assert founder.get("/api/me").json()["tenant"] == me["tenant"]
