"""Chat: POST /api/chat (NDJSON events or one JSON object), sessions, and the user's own provider key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import azure.functions as func

from blueprints._http import NDJSON, ApiRequest, Response, endpoint, ndjson, no_content, ok, problem, stream_slots
from shared.chat.answer import Turn, run_turn
from shared.chat.providers import BYO_PROVIDERS
from shared.chat.secrets import delete_user_key, get_secret_store, get_user_key, set_user_key
from shared.chat.store import MAX_TITLE_CHARS, get_chat_store, http_etag, owner_of
from shared.embedding import get_embedder
from shared.errors import FolioError, Invalid
from shared.validation import Field, parse_uuid

bp = func.Blueprint()


def _wants_json(request: ApiRequest) -> bool:
    accept = (request.http.headers.get("accept") or "").lower()
    return "application/json" in accept and NDJSON not in accept


def _collection_ids(values: list[Any]) -> tuple[Any, ...]:
    if len(values) > 100 or not all(isinstance(v, str) for v in values):
        raise Invalid("'collectionIds' must be a list of at most 100 ids.", fields=["collectionIds"])
    try:
        return tuple(parse_uuid(v, "collection") for v in values)
    except FolioError:
        raise Invalid("'collectionIds' holds a malformed id.", fields=["collectionIds"]) from None


@endpoint(bp, "chat", ["POST"])
def chat(request: ApiRequest) -> Response:
    body = request.json({"sessionId": Field(str), "message": Field(str, required=True, max_length=4000),
                         "collectionIds": Field(list)})
    session_id = None
    if body.get("sessionId"):
        session_id = parse_uuid(body["sessionId"], "chat session")
    turn = Turn(body["message"], session_id, _collection_ids(body.get("collectionIds") or []))
    release = stream_slots.take()  # 503 when this instance is already writing its share of answers
    streaming = False
    try:
        events = run_turn(turn, caller=request.caller, db=request.db, store=get_chat_store(request.settings),
                          settings=request.settings, embedder=get_embedder(request.settings),
                          keys=get_secret_store(request.settings))
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
    return ok({"sessionId": session["sessionId"], "messageId": done["messageId"],
               "answer": "".join(e["text"] for e in lines if e["type"] == "delta"),
               "citations": next(e["citations"] for e in lines if e["type"] == "citations"),
               "usage": done["usage"], "provider": done["provider"], "model": done["model"],
               "extractive": done["extractive"], "grounded": done["grounded"]})


# --- sessions -----------------------------------------------------------------------------------


def _session(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "title": item["title"], "createdAt": item["createdAt"],
            "updatedAt": item["updatedAt"], "turns": item.get("turns", 0), "usage": item.get("usage"),
            "etag": http_etag(item["_etag"])}


def _message(item: dict[str, Any]) -> dict[str, Any]:
    shown = {"id": item["id"], "role": item["role"], "content": item["content"], "createdAt": item["createdAt"]}
    if item["role"] == "assistant":
        for key in ("citations", "usage", "provider", "model", "extractive"):
            shown[key] = item.get(key)
    return shown


def _if_match(request: ApiRequest) -> str | None:
    return request.http.headers.get("if-match") or None


@endpoint(bp, "chat/sessions", ["GET"])
def chat_sessions_list(request: ApiRequest) -> Response:
    limit = request.query_int("limit", 20, 1, 100)
    page = get_chat_store(request.settings).list_sessions(owner_of(request.caller), limit=limit,
                                                          continuation=request.http.params.get("continuation"))
    return ok({"sessions": [_session(s) for s in page.sessions], "continuation": page.continuation})


@endpoint(bp, "chat/sessions/{sessionId}", ["GET"])
def chat_sessions_get(request: ApiRequest) -> Response:
    session_id = str(request.path_id("sessionId", "chat session"))
    store, owner = get_chat_store(request.settings), owner_of(request.caller)
    session = store.get_session(owner, session_id)
    messages = [_message(m) for m in store.messages(owner, session_id)]
    return ok({**_session(session), "messages": messages}, headers={"ETag": http_etag(session["_etag"])})


@endpoint(bp, "chat/sessions/{sessionId}", ["PATCH"])
def chat_sessions_rename(request: ApiRequest) -> Response:
    session_id = str(request.path_id("sessionId", "chat session"))
    body = request.json({"title": Field(str, required=True, min_length=1, max_length=MAX_TITLE_CHARS, single_line=True)})
    session = get_chat_store(request.settings).rename_session(owner_of(request.caller), session_id, body["title"],
                                                              if_match=_if_match(request))
    return ok(_session(session), headers={"ETag": http_etag(session["_etag"])})


@endpoint(bp, "chat/sessions/{sessionId}", ["DELETE"])
def chat_sessions_delete(request: ApiRequest) -> Response:
    session_id = str(request.path_id("sessionId", "chat session"))
    get_chat_store(request.settings).delete_session(owner_of(request.caller), session_id,
                                                    if_match=_if_match(request))
    return no_content()


# --- the user's own provider key ----------------------------------------------------------------


@endpoint(bp, "chat/key", ["GET"])
def chat_key_get(request: ApiRequest) -> Response:
    key = get_user_key(get_secret_store(request.settings), request.caller)
    return ok({"configured": key is not None, **(key.describe() if key else {})})


@endpoint(bp, "chat/key", ["PUT"])
def chat_key_set(request: ApiRequest) -> Response:
    body = request.json({"provider": Field(str, required=True, choices=BYO_PROVIDERS),
                         "apiKey": Field(str, required=True, max_length=512, single_line=True),
                         "model": Field(str, max_length=100, single_line=True)})
    key = set_user_key(get_secret_store(request.settings), request.db, request.caller, body["provider"], body["apiKey"],
                       body.get("model"), allowed=BYO_PROVIDERS)
    return ok({"configured": True, **key.describe()})


@endpoint(bp, "chat/key", ["DELETE"])
def chat_key_delete(request: ApiRequest) -> Response:
    delete_user_key(get_secret_store(request.settings), request.db, request.caller)
    return no_content()
