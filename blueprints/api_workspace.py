"""The caller's workspace: /api/me, members and invitations, API keys and the audit trail."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, no_content, ok
from shared import invitations, workspaces

bp = new_blueprint()


@endpoint(bp, "me", ["GET"])
def me(request: ApiRequest) -> Response:
    return ok(workspaces.describe_caller(request.db, request.caller))


@endpoint(bp, "members", ["GET"])
def members_list(request: ApiRequest) -> Response:
    return ok(workspaces.list_members(request.db, request.caller))


@endpoint(bp, "members", ["POST"])
def members_add(request: ApiRequest) -> Response:
    from shared.api_models import AddMember  # built on first use, not at cold start

    body = request.body(AddMember)
    # Always an invitation, answered alike whether or not the address has an account.
    return ok(workspaces.add_member(request.db, request.caller, body.email, body.role, settings=request.settings), 202)


@endpoint(bp, "members/invitations/{invitationId}", ["DELETE"])
def members_invitation_withdraw(request: ApiRequest) -> Response:
    invitations.withdraw(request.db, request.caller, request.path_id("invitationId", "invitation"))
    return no_content()


@endpoint(bp, "invitations", ["GET"])
def invitations_mine(request: ApiRequest) -> Response:
    return ok({"invitations": invitations.mine(request.db, request.caller)})


@endpoint(bp, "invitations/{invitationId}/accept", ["POST"])
def invitations_accept(request: ApiRequest) -> Response:
    invitation_id = request.path_id("invitationId", "invitation")
    return ok(invitations.answer(request.db, request.caller, invitation_id, accept=True))


@endpoint(bp, "invitations/{invitationId}/decline", ["POST"])
def invitations_decline(request: ApiRequest) -> Response:
    invitation_id = request.path_id("invitationId", "invitation")
    return ok(invitations.answer(request.db, request.caller, invitation_id, accept=False))


@endpoint(bp, "members/{userId}", ["DELETE"])
def members_remove(request: ApiRequest) -> Response:
    workspaces.remove_member(request.db, request.caller, request.path_id("userId", "member"))
    return no_content()


@endpoint(bp, "apikeys", ["GET"])
def api_keys_list(request: ApiRequest) -> Response:
    return ok({"apiKeys": workspaces.list_api_keys(request.db, request.caller)})


@endpoint(bp, "apikeys", ["POST"])
def api_keys_create(request: ApiRequest) -> Response:
    from shared.api_models import CreateApiKey  # built on first use, not at cold start

    body = request.body(CreateApiKey)
    created = workspaces.create_api_key(request.db, request.caller, body.name, body.role, settings=request.settings)
    return ok(created, status=201)


@endpoint(bp, "apikeys/{keyId}", ["DELETE"])
def api_keys_revoke(request: ApiRequest) -> Response:
    workspaces.revoke_api_key(request.db, request.caller, request.path_id("keyId", "API key"))
    return no_content()


@endpoint(bp, "audit", ["GET"])
def audit_list(request: ApiRequest) -> Response:
    limit = request.query_int("limit", 50, 1, 500)
    before = request.query_int("before", 0, 0, 2**62) or None
    entries = workspaces.list_audit(request.db, request.caller, limit, before)
    return ok({"entries": entries, "next": entries[-1]["id"] if len(entries) == limit else None})
