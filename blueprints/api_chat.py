"""Chat: POST /api/chat (NDJSON events or one JSON object), sessions, and the user's own provider key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from blueprints import new_blueprint
from blueprints._http import NDJSON, ApiRequest, Response, endpoint, no_content, ok, problem
from blueprints._ndjson import ndjson, stream_slots
from shared import feedback
from shared.chat import sessions
from shared.chat.answer import Turn, run_turn
from shared.chat.providers import BYO_PROVIDERS
from shared.chat.secrets import delete_user_key, get_user_key, set_user_key
from shared.errors import FolioError, NotFound
from shared.validation import parse_uuid

bp = new_blueprint()


def _wants_json(request: ApiRequest) -> bool:
    accept = (request.http.headers.get("accept") or "").lower()
    return "application/json" in accept and NDJSON not in accept


@endpoint(bp, "chat", ["POST"])
def chat(request: ApiRequest) -> Response:
    from shared.api_models import ChatTurn  # built on first use, not at cold start

    body = request.body(ChatTurn)
    session_id = parse_uuid(body.session_id, "chat session") if body.session_id else None
    turn = Turn(body.message, session_id, tuple(body.collection_ids))
    release = stream_slots.take()  # 503 when this instance is already writing its share of answers
    streaming = False
    try:
        parts = request.services
        events = run_turn(
            turn,
            caller=request.caller,
            db=request.db,
            store=parts.chat_store,
            settings=request.settings,
            embedder=parts.embedder,
            models=parts.chat_models,
            keys=parts.secret_store,
        )
        # The first event is produced only once the turn is accepted: anything raised before it is a plain
        # HTTP error (400, 402, 404...), mapped by the shared handler.
        session = next(events)
        if _wants_json(request):
            return _one_object(request, session, events)
        streaming = True
        return ndjson(events, request.invocation_id, sent=[session], on_close=release)
    finally:
        if not streaming:
            release()


def _one_object(request: ApiRequest, session: dict[str, Any], events: Iterator[dict[str, Any]]) -> Response:
    """``Accept: application/json``: the whole turn as one object, or problem+json if it failed."""
    try:
        lines = [session, *events]
    except FolioError as exc:
        exc.extensions.setdefault("sessionId", session["sessionId"])
        return problem(exc, request.invocation_id)
    done = lines[-1]
    return ok(
        {
            "sessionId": session["sessionId"],
            "messageId": done["messageId"],
            "answer": "".join(e["text"] for e in lines if e["type"] == "delta"),
            "citations": next(e["citations"] for e in lines if e["type"] == "citations"),
            "usage": done["usage"],
            "provider": done["provider"],
            "model": done["model"],
            "extractive": done["extractive"],
            "grounded": done["grounded"],
        }
    )


# --- sessions -----------------------------------------------------------------------------------


def _if_match(request: ApiRequest) -> str | None:
    return request.http.headers.get("if-match") or None


@endpoint(bp, "chat/sessions", ["GET"])
def chat_sessions_list(request: ApiRequest) -> Response:
    limit = request.query_int("limit", 20, 1, 100)
    return ok(
        sessions.list_sessions(
            request.services.chat_store,
            request.caller,
            limit=limit,
            continuation=request.http.params.get("continuation"),
        )
    )


@endpoint(bp, "chat/sessions/{sessionId}", ["GET"])
def chat_sessions_get(request: ApiRequest) -> Response:
    session_id = str(request.path_id("sessionId", "chat session"))
    session = sessions.read_session(request.services.chat_store, request.caller, session_id)
    return ok(session, headers={"ETag": session["etag"]})


@endpoint(bp, "chat/sessions/{sessionId}", ["PATCH"])
def chat_sessions_rename(request: ApiRequest) -> Response:
    from shared.api_models import RenameSession  # built on first use, not at cold start

    session_id = str(request.path_id("sessionId", "chat session"))
    body = request.body(RenameSession)
    session = sessions.rename_session(
        request.services.chat_store, request.caller, session_id, body.title, if_match=_if_match(request)
    )
    return ok(session, headers={"ETag": session["etag"]})


@endpoint(bp, "chat/sessions/{sessionId}", ["DELETE"])
def chat_sessions_delete(request: ApiRequest) -> Response:
    session_id = str(request.path_id("sessionId", "chat session"))
    try:
        sessions.delete_session(request.services.chat_store, request.caller, session_id, if_match=_if_match(request))
    except NotFound:
        # Gone already: perhaps deleted by a request that then failed to drop its ratings. (Only the caller's own.)
        feedback.forget_session(request.db, request.caller, session_id)
        raise
    feedback.forget_session(request.db, request.caller, session_id)  # its ratings and their copied texts too
    return no_content()


# --- the user's own provider key ----------------------------------------------------------------


@endpoint(bp, "chat/key", ["GET"])
def chat_key_get(request: ApiRequest) -> Response:
    key = get_user_key(request.services.secret_store, request.caller)
    return ok({"configured": key is not None, **(key.describe() if key else {})})


@endpoint(bp, "chat/key", ["PUT"])
def chat_key_set(request: ApiRequest) -> Response:
    from shared.api_models import SetChatKey  # built on first use, not at cold start

    body = request.body(SetChatKey)
    key = set_user_key(
        request.services.secret_store,
        request.db,
        request.caller,
        body.provider,
        body.api_key,
        body.model,
        allowed=BYO_PROVIDERS,
    )
    return ok({"configured": True, **key.describe()})


@endpoint(bp, "chat/key", ["DELETE"])
def chat_key_delete(request: ApiRequest) -> Response:
    delete_user_key(request.services.secret_store, request.db, request.caller)
    return no_content()
