"""A user's chat sessions as the API shows them: list, read with messages, rename, delete."""

from __future__ import annotations

from typing import Any

from shared import feedback
from shared.chat.store import http_etag, owner_of
from shared.ports import ChatStore
from shared.tenancy import Caller

_ANSWER_FIELDS = ("citations", "usage", "provider", "model", "extractive")


def shown_session(item: dict[str, Any]) -> dict[str, Any]:
    """A stored session as the API shows it; ``etag`` is what ``If-Match`` takes."""
    return {
        "id": item["id"],
        "title": item["title"],
        "createdAt": item["createdAt"],
        "updatedAt": item["updatedAt"],
        "turns": item.get("turns", 0),
        "usage": item.get("usage"),
        "etag": http_etag(item["_etag"]),
    }


def _shown_message(item: dict[str, Any]) -> dict[str, Any]:
    shown = {"id": item["id"], "role": item["role"], "content": item["content"], "createdAt": item["createdAt"]}
    if item["role"] == "assistant":
        for key in _ANSWER_FIELDS:
            shown[key] = item.get(key)
        shown["feedback"] = feedback.shown(item.get("feedback"))
    return shown


def list_sessions(store: ChatStore, caller: Caller, *, limit: int, continuation: str | None) -> dict[str, Any]:
    """The caller's sessions, newest activity first, a page at a time."""
    page = store.list_sessions(owner_of(caller), limit=limit, continuation=continuation)
    return {"sessions": [shown_session(s) for s in page.sessions], "continuation": page.continuation}


def read_session(store: ChatStore, caller: Caller, session_id: str) -> dict[str, Any]:
    """One of the caller's sessions with all its messages (NotFound for anyone else's)."""
    owner = owner_of(caller)
    session = store.get_session(owner, session_id)
    return {**shown_session(session), "messages": [_shown_message(m) for m in store.messages(owner, session_id)]}


def rename_session(
    store: ChatStore, caller: Caller, session_id: str, title: str, *, if_match: str | None
) -> dict[str, Any]:
    return shown_session(store.rename_session(owner_of(caller), session_id, title, if_match=if_match))


def delete_session(store: ChatStore, caller: Caller, session_id: str, *, if_match: str | None) -> None:
    store.delete_session(owner_of(caller), session_id, if_match=if_match)
