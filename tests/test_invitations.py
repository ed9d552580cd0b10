"""Membership by consent (#17 item 4): adding by email is an invitation only the invitee answers."""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers import Client


def person(client: Client, **kwargs: Any) -> tuple[Client, str]:
    """A new signed-in user with a verified address, and that address. (Other tests use it too.)"""
    name = f"inv-{uuid.uuid4().hex[:10]}"
    return client.as_user(name, email=f"{name}@example.com", **kwargs), f"{name}@example.com"


def _workspace(user: Client) -> str:
    return str(user.get("/api/me").json()["tenant"]["id"])


def _roles(user: Client) -> dict[str, str]:
    return {w["id"]: w["role"] for w in user.get("/api/me").json()["workspaces"]}


def invite_and_accept(owner: Client, invitee: Client, email: str, role: str) -> str:
    """The whole consent flow; returns the workspace the invitee joined. (Other tests use it too.)"""
    workspace = _workspace(owner)
    invited = owner.post("/api/members", {"email": email, "role": role})
    assert invited.status == 202, invited.body
    accepted = invitee.post(f"/api/invitations/{invited.json()['invitationId']}/accept")
    assert accepted.status == 200, accepted.body
    assert accepted.json() == {"workspace": {"id": workspace}, "role": role, "status": "joined"}
    return workspace


def test_adding_by_email_answers_alike_whether_or_not_an_account_exists_and_joins_no_one(client: Client) -> None:
    owner, _ = person(client)
    workspace = _workspace(owner)
    existing, existing_email = person(client)
    existing.get("/api/me")  # has an account with a verified address
    never_email = f"never-{uuid.uuid4().hex[:10]}@example.com"

    answers = [owner.post("/api/members", {"email": e, "role": "owner"}) for e in (existing_email, never_email)]
    assert [a.status for a in answers] == [202, 202]
    shapes = [
        {k: (v if k not in ("invitationId", "email", "expiresAt") else "*") for k, v in a.json().items()}
        for a in answers
    ]
    assert (
        shapes[0]
        == shapes[1]
        == {
            "invitationId": "*",
            "email": "*",
            "role": "owner",
            "status": "invited",
            "expiresAt": "*",
        }
    )
    assert workspace not in _roles(existing)  # nobody joined without saying yes
    assert existing.with_headers(**{"x-folio-workspace": workspace}).get("/api/collections").status == 404
    listed = owner.get("/api/members").json()
    assert {i["email"] for i in listed["invitations"]} == {existing_email, never_email}
    assert len(listed["members"]) == 1


def test_the_invitee_sees_the_invitation_and_accepting_joins_at_the_invited_role(client: Client) -> None:
    owner, _ = person(client)
    workspace = _workspace(owner)
    name = owner.get("/api/me").json()["tenant"]["name"]
    invitee, email = person(client)
    invitation = owner.post("/api/members", {"email": email.upper(), "role": "viewer"}).json()

    mine = invitee.get("/api/invitations")
    assert mine.status == 200
    [seen] = mine.json()["invitations"]
    assert seen["id"] == invitation["invitationId"] and seen["role"] == "viewer"
    assert seen["workspace"] == {"id": workspace, "name": name}
    assert workspace not in _roles(invitee)  # seeing it is not joining

    accepted = invitee.post(f"/api/invitations/{seen['id']}/accept")
    assert accepted.status == 200 and accepted.json()["status"] == "joined"
    assert _roles(invitee)[workspace] == "viewer"
    shared = invitee.with_headers(**{"x-folio-workspace": workspace})
    assert shared.get("/api/collections").status == 200
    assert shared.post("/api/collections", {"name": "viewer write"}).status == 403
    assert invitee.get("/api/invitations").json()["invitations"] == []
    assert owner.get("/api/members").json()["invitations"] == []
    actions = [e["action"] for e in owner.get("/api/audit").json()["entries"]]
    assert actions[:2] == ["member.join", "member.invite"]
    assert invitee.post(f"/api/invitations/{seen['id']}/accept").status == 404  # answered once


def test_declining_joins_nothing_and_removes_the_invitation(client: Client) -> None:
    owner, _ = person(client)
    workspace = _workspace(owner)
    invitee, email = person(client)
    invitation = owner.post("/api/members", {"email": email, "role": "member"}).json()["invitationId"]
    declined = invitee.post(f"/api/invitations/{invitation}/decline")
    assert declined.status == 200 and declined.json()["status"] == "declined"
    assert workspace not in _roles(invitee)
    assert owner.get("/api/members").json()["invitations"] == []
    assert owner.get("/api/audit").json()["entries"][0]["action"] == "member.invite_declined"


def test_signing_in_no_longer_turns_an_invitation_into_a_membership(client: Client) -> None:
    owner, _ = person(client)
    workspace = _workspace(owner)
    newcomer, email = person(client)
    owner.post("/api/members", {"email": email, "role": "member"})
    assert workspace not in _roles(newcomer)  # first sign-in happens here
    assert [i["workspace"]["id"] for i in newcomer.get("/api/invitations").json()["invitations"]] == [workspace]


def test_only_the_addressee_with_a_verified_address_can_see_or_answer(client: Client) -> None:
    owner, _ = person(client)
    workspace = _workspace(owner)
    invitee, email = person(client)
    invitation = owner.post("/api/members", {"email": email, "role": "owner"}).json()["invitationId"]

    stranger, _ = person(client)
    assert stranger.get("/api/invitations").json()["invitations"] == []
    assert stranger.post(f"/api/invitations/{invitation}/accept").status == 404
    # Same address, but from a provider that does not vouch for it.
    claimant = client.as_user(f"gh-{uuid.uuid4().hex[:8]}", email=email, provider="github")
    assert claimant.get("/api/invitations").json()["invitations"] == []
    assert claimant.post(f"/api/invitations/{invitation}/accept").status == 404
    assert workspace not in _roles(claimant) and workspace not in _roles(stranger)
    assert invitee.post(f"/api/invitations/{invitation}/accept").status == 200


def test_an_owner_can_withdraw_an_invitation_before_it_is_answered(client: Client) -> None:
    owner, _ = person(client)
    invitee, email = person(client)
    invitation = owner.post("/api/members", {"email": email, "role": "member"}).json()["invitationId"]
    member, member_email = person(client)
    invite_and_accept(owner, member, member_email, "member")
    workspace = _workspace(owner)
    as_member = member.with_headers(**{"x-folio-workspace": workspace})
    assert as_member.delete(f"/api/members/invitations/{invitation}").status == 403
    assert owner.delete(f"/api/members/invitations/{invitation}").status == 204
    assert invitee.get("/api/invitations").json()["invitations"] == []
    assert invitee.post(f"/api/invitations/{invitation}/accept").status == 404
    assert owner.delete(f"/api/members/invitations/{invitation}").status == 404


def test_inviting_a_current_member_is_409_and_an_api_key_has_no_invitations(client: Client) -> None:
    owner, _ = person(client)
    member, email = person(client)
    invite_and_accept(owner, member, email, "member")
    assert owner.post("/api/members", {"email": email, "role": "viewer"}).status == 409
    key = owner.post("/api/apikeys", {"name": "ci", "role": "member"}).json()["key"]
    robot = Client(client.base_url, {"Authorization": f"ApiKey {key}"})
    assert robot.get("/api/invitations").status == 403


def test_pending_invitations_are_capped_per_workspace(client: Client, settings_override: Any) -> None:
    settings_override(MAX_PENDING_INVITATIONS="2")
    owner, _ = person(client)
    for i in range(2):
        assert (
            owner.post("/api/members", {"email": f"cap{i}-{uuid.uuid4().hex[:6]}@example.com", "role": "viewer"}).status
            == 202
        )
    over = owner.post("/api/members", {"email": f"cap-over-{uuid.uuid4().hex[:6]}@example.com", "role": "viewer"})
    assert over.status == 409 and over.json()["limit"] == "maxPendingInvitations"
    renewed = owner.get("/api/members").json()["invitations"][0]["email"]
    assert owner.post("/api/members", {"email": renewed, "role": "member"}).status == 202  # a renewal is not new


def test_invalid_invitation_requests_are_400_or_404(client: Client) -> None:
    owner, _ = person(client)
    assert owner.post("/api/members", {"email": "not-an-email", "role": "member"}).status == 400
    assert owner.post("/api/members", {"email": "a@b.co", "role": "admin"}).status == 400
    assert owner.post("/api/invitations/not-a-uuid/accept").status == 404
    assert owner.post(f"/api/invitations/{uuid.uuid4()}/decline").status == 404


def test_with_a_signed_context_only_the_signed_user_reaches_their_invitations(
    client: Client, admin_conn: Any, app_conn: Any, database_urls: dict[str, str]
) -> None:
    """Migration 0008's functions take the invitee from the context, which 0009 signs: a session
    that merely sets app.user_id to someone else's id sees and answers nothing."""
    import secrets

    from shared import invitations
    from shared.db import Database
    from shared.db.migrate import install_context_key, remove_context_key
    from shared.tenancy import Caller, Role

    owner, _ = person(client)
    workspace = _workspace(owner)
    invitee, email = person(client)
    me = invitee.get("/api/me").json()
    user_id, personal = uuid.UUID(me["user"]["id"]), uuid.UUID(me["tenant"]["id"])
    invitation = owner.post("/api/members", {"email": email, "role": "member"}).json()["invitationId"]

    saved = admin_conn.execute("SELECT ipad, opad FROM folio_context_key").fetchone()
    key = secrets.token_bytes(32)
    install_context_key(admin_conn, key)
    signed = Database(database_urls["app"], max_size=1, context_key=key)
    try:
        with app_conn.transaction():  # unsigned: what an injected statement could do
            app_conn.execute("SELECT set_config('app.user_id', %s, true)", (str(user_id),))
            assert app_conn.execute("SELECT * FROM folio_my_invitations()").fetchall() == []
            answered = app_conn.execute("SELECT * FROM folio_answer_invitation(%s, true)", (invitation,)).fetchall()
            assert answered == []
        caller = Caller(personal, Role.OWNER, "user", str(user_id), user_id)
        assert [i["id"] for i in invitations.mine(signed, caller)] == [invitation]
        assert invitations.answer(signed, caller, uuid.UUID(invitation), accept=True)["status"] == "joined"
    finally:
        signed.close()
        remove_context_key(admin_conn)
        if saved is not None:
            admin_conn.execute(
                "INSERT INTO folio_context_key (ipad, opad) VALUES (%s, %s)", (saved["ipad"], saved["opad"])
            )
    assert _roles(invitee)[workspace] == "member"
