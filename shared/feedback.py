"""Answer feedback: a thumbs up or down on an assistant message, with an optional reason, by its author only.

The feedback is stored on the message in the chat store (so the chat view shows it after a reload)
and as one ``answer_feedback`` row in PostgreSQL (migration 0014), which the owners' insights read.
A thumbs down keeps copies of the question, the answer and its citations there, for the owners'
review; they are dropped with the question texts after ``INSIGHTS_RETENTION_DAYS``.

Only the author reaches a message: the chat store is partitioned by (workspace, user) and every
read names the caller's own partition, so anyone else's message, a deleted one or a malformed id is
the same 404. The message is written first; if the database then fails, the request fails (503) and
the same PUT or DELETE, repeated, puts both back in step.
"""

from __future__ import annotations

import re
from typing import Any

from shared.chat.store import Owner, now_iso, owner_of
from shared.db import Database
from shared.errors import Invalid, NotFound
from shared.ports import ChatStore
from shared.tenancy import Caller

RATINGS = ("up", "down")
REASONS = ("wrong", "not_grounded", "incomplete", "other")
MAX_COMMENT_CHARS = 500
# Message ids are "<session id>-<5-digit sequence>" (shared.chat.store.append_turn).
_MESSAGE_ID = re.compile(r"^(?P<session>[0-9a-f-]{36})-(?P<seq>[0-9]{5})$")

_UPSERT = """
INSERT INTO answer_feedback AS f (tenant_id, message_id, session_id, author, rating, reason, comment,
                                  question, answer, citations, asked_at, updated_at)
VALUES (%(tenant)s, %(message)s, %(session)s, %(author)s, %(rating)s, %(reason)s, %(comment)s,
        %(question)s, %(answer)s, %(citations)s::jsonb, %(asked_at)s, now())
ON CONFLICT (tenant_id, message_id) DO UPDATE SET
  rating = EXCLUDED.rating, reason = EXCLUDED.reason, comment = EXCLUDED.comment, question = EXCLUDED.question,
  answer = EXCLUDED.answer, citations = EXCLUDED.citations, updated_at = now()
"""


def set_feedback(
    store: ChatStore,
    db: Database,
    caller: Caller,
    session_id: str,
    message_id: str,
    *,
    rating: str,
    reason: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """Put the caller's feedback on one of their answers (replacing any earlier one); returns it as shown."""
    if rating not in RATINGS:
        raise Invalid(f"Field 'rating' must be one of {', '.join(RATINGS)}.", fields=["rating"])
    if reason is not None and reason not in REASONS:
        raise Invalid(f"Field 'reason' must be one of {', '.join(REASONS)}.", fields=["reason"])
    if rating == "up" and (reason is not None or comment is not None):
        raise Invalid("A thumbs up takes no reason or comment.", fields=["reason" if reason else "comment"])
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise Invalid(f"Field 'comment' must be at most {MAX_COMMENT_CHARS} characters.", fields=["comment"])
    owner = owner_of(caller)
    seq = _check_ids(session_id, message_id)
    store.get_session(owner, session_id)  # a conversation being deleted takes no feedback
    feedback = {"rating": rating, "reason": reason, "comment": comment, "updatedAt": now_iso()}
    message = store.set_feedback(owner, session_id, message_id, feedback)
    question = _question_of(store, owner, session_id, seq) if rating == "down" else None
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        conn.execute(
            _UPSERT,
            {
                "tenant": caller.tenant_id,
                "message": message_id,
                "session": session_id,
                "author": owner.user_id,
                "rating": rating,
                "reason": reason,
                "comment": comment,
                "question": question,
                "answer": message.get("content") if rating == "down" else None,
                "citations": _citations_json(message.get("citations")) if rating == "down" else "[]",
                "asked_at": message.get("createdAt") or now_iso(),
            },
        )
    return {**feedback}


def remove_feedback(store: ChatStore, db: Database, caller: Caller, session_id: str, message_id: str) -> None:
    """Take the caller's feedback off one of their answers; removing none is not an error."""
    owner = owner_of(caller)
    _check_ids(session_id, message_id)
    store.get_session(owner, session_id)
    store.set_feedback(owner, session_id, message_id, None)
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        conn.execute(
            "DELETE FROM answer_feedback WHERE tenant_id = %s AND message_id = %s AND author = %s",
            (caller.tenant_id, message_id, owner.user_id),
        )


def forget_session(db: Database, caller: Caller, session_id: str) -> None:
    """A deleted conversation takes its feedback rows (and their copied texts) with it."""
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        conn.execute(
            "DELETE FROM answer_feedback WHERE tenant_id = %s AND session_id = %s AND author = %s",
            (caller.tenant_id, session_id, owner_of(caller).user_id),
        )


def shown(feedback: dict[str, Any] | None) -> dict[str, Any] | None:
    """Feedback as the API shows it on a message."""
    if not feedback:
        return None
    return {
        "rating": feedback["rating"],
        "reason": feedback.get("reason"),
        "comment": feedback.get("comment"),
        "updatedAt": feedback.get("updatedAt"),
    }


def _check_ids(session_id: str, message_id: str) -> int:
    """The message's sequence number; a message id that is not of this session is a 404 like an unknown one."""
    match = _MESSAGE_ID.match(message_id)
    if match is None or match["session"] != session_id:
        raise NotFound("No such chat message.")
    return int(match["seq"])


def _question_of(store: ChatStore, owner: Owner, session_id: str, seq: int) -> str | None:
    """The question an answer replied to: the message before it (a turn stores both, question first)."""
    try:
        message = store.message(owner, session_id, f"{session_id}-{seq - 1:05d}")
    except NotFound:
        return None
    return str(message["content"]) if message.get("role") == "user" else None


def _citations_json(citations: Any) -> str:
    import json

    kept = [
        {k: c.get(k) for k in ("n", "documentId", "title", "headingPath", "pages", "chunkId")}
        for c in (citations or [])
        if isinstance(c, dict)
    ]
    return json.dumps(kept)
