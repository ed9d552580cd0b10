"""Owners' insights: usage events written by search and chat, the insights report, and the retention sweep.

Search (``POST /api/search``) and each answered chat question write one ``insight_events`` row
(migration 0014) after the user's request has its answer: one INSERT in its own short transaction,
and a failure is logged, never raised, so insight can never cost a user their search or answer.
Feedback (:mod:`shared.feedback`) keeps its own rows. :func:`report` is what ``GET /api/insights``
returns (owners only); :func:`drop_expired_texts` is the daily sweep that drops question and search
texts older than ``INSIGHTS_RETENTION_DAYS``. Why PostgreSQL rather than the chat store: docs/insights.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from shared.db import Database, one
from shared.errors import ConfigError
from shared.tenancy import Caller, Role

_log = logging.getLogger(__name__)

MAX_DAYS = 365
NEVER_RETRIEVED_DAYS = 30  # "documents never retrieved in the last 30 days", whatever ``days`` is
_MAX_TEXT_CHARS = 4000
_TOP = 20  # rows in each list of the report
_NEGATIVE_FEEDBACK = 50

_ASYNC_COMMIT = {"synchronous_commit": "off"}
_INSERT = (
    "INSERT INTO insight_events (tenant_id, kind, text, results, outcome, retrieved, cited)"
    " VALUES (%s, %s, %s, %s, %s, %s::uuid[], %s::uuid[])"
)


def record_search(db: Database, caller: Caller, query: str, results: list[dict[str, Any]]) -> None:
    """One search, its query and which documents it found (nothing raised: see the module docstring)."""
    _record(
        db,
        caller,
        "search",
        " ".join(query.split()),
        len(results),
        None,
        _ids(r.get("documentId") for r in results),
        [],
    )


def record_question(
    db: Database, caller: Caller, question: str, *, retrieved: Sequence[Any], cited: Sequence[Any], answered: bool
) -> None:
    """One answered chat question: its passages' documents, the cited ones, and whether it found anything."""
    outcome = "answered" if answered else "no_answer"
    _record(db, caller, "question", question, len(retrieved), outcome, _ids(retrieved), _ids(cited))


def _ids(values: Iterable[Any]) -> list[str]:
    return sorted({str(v) for v in values if v})


def _record(
    db: Database,
    caller: Caller,
    kind: str,
    text: str,
    results: int,
    outcome: str | None,
    retrieved: list[str],
    cited: list[str],
) -> None:
    try:
        # Asynchronous commit: the user's request does not wait for the WAL flush (~3 ms measured on 2 shared
        # cores); a crash can lose the last few events, never corrupt anything. Fine for usage statistics.
        with db.transaction(caller.tenant_id, caller.user_id, local_settings=_ASYNC_COMMIT) as conn:
            conn.execute(_INSERT, (caller.tenant_id, kind, text[:_MAX_TEXT_CHARS], results, outcome, retrieved, cited))
    except Exception as exc:  # insight must never fail the user's request: log instead
        _log.warning("insights: could not record a %s event (%s)", kind, type(exc).__name__)


# --- the report ---------------------------------------------------------------------------------


def report(db: Database, caller: Caller, *, days: int, retention_days: int) -> dict[str, Any]:
    """The workspace's insights over the last ``days`` days (owners only; 403 for everyone else).

    Texts older than the retention period are never shown, even before the sweep has dropped them.
    """
    caller.require(Role.OWNER)
    tenant = caller.tenant_id
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    first_day = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first_day, dt.time(), dt.UTC)
    kept_since = now - dt.timedelta(days=retention_days)
    with db.transaction(tenant, caller.user_id) as conn:
        per_day = {
            row["day"]: row
            for row in conn.execute(
                "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS questions,"
                " count(*) FILTER (WHERE outcome = 'no_answer') AS no_answer"
                " FROM insight_events WHERE tenant_id = %s AND kind = 'question' AND occurred_at >= %s"
                " GROUP BY 1",
                (tenant, since),
            )
        }
        searches = one(
            conn.execute(
                "SELECT count(*) AS searches, count(*) FILTER (WHERE results = 0) AS empty"
                " FROM insight_events WHERE tenant_id = %s AND kind = 'search' AND occurred_at >= %s",
                (tenant, since),
            ).fetchone()
        )
        empty_searches = conn.execute(
            "SELECT lower(text) AS query, count(*) AS count, max(occurred_at) AS last_at FROM insight_events"
            " WHERE tenant_id = %s AND kind = 'search' AND results = 0 AND occurred_at >= %s"
            " AND occurred_at >= %s AND text IS NOT NULL"
            " GROUP BY lower(text) ORDER BY count(*) DESC, max(occurred_at) DESC, lower(text) LIMIT %s",
            (tenant, since, kept_since, _TOP),
        ).fetchall()
        most_cited = conn.execute(
            "SELECT c.document_id, count(*) AS citations, d.filename, d.collection_id, d.status"
            " FROM insight_events e CROSS JOIN LATERAL unnest(e.cited) AS c(document_id)"
            " LEFT JOIN documents d ON d.tenant_id = e.tenant_id AND d.document_id = c.document_id"
            " WHERE e.tenant_id = %s AND e.kind = 'question' AND e.occurred_at >= %s"
            " GROUP BY c.document_id, d.filename, d.collection_id, d.status"
            " ORDER BY count(*) DESC, c.document_id LIMIT %s",
            (tenant, since, _TOP),
        ).fetchall()
        # The month's retrieved documents once, then a hashed anti-join: testing each document against
        # each event's array (`retrieved @> ARRAY[id]`, which no index or hash serves) ran past the 15 s
        # statement timeout at 5,000 documents and 20,000 searches.
        never = conn.execute(
            "WITH retrieved AS MATERIALIZED ("
            "   SELECT DISTINCT r.document_id FROM insight_events e CROSS JOIN LATERAL unnest(e.retrieved) AS r(document_id)"
            "   WHERE e.tenant_id = %s AND e.occurred_at >= %s)"
            " SELECT d.document_id, d.filename, d.collection_id, d.indexed_at, count(*) OVER () AS total"
            " FROM documents d WHERE d.tenant_id = %s AND d.status = 'ready'"
            " AND NOT EXISTS (SELECT 1 FROM retrieved r WHERE r.document_id = d.document_id)"
            " ORDER BY d.indexed_at NULLS FIRST, d.document_id LIMIT %s",
            (tenant, now - dt.timedelta(days=NEVER_RETRIEVED_DAYS), tenant, _TOP),
        ).fetchall()
        ratings = one(
            conn.execute(
                "SELECT count(*) FILTER (WHERE rating = 'up') AS up, count(*) FILTER (WHERE rating = 'down') AS down"
                " FROM answer_feedback WHERE tenant_id = %s AND updated_at >= %s",
                (tenant, since),
            ).fetchone()
        )
        negative = conn.execute(
            "SELECT message_id, session_id, reason, comment, question, answer, citations, asked_at, updated_at"
            " FROM answer_feedback WHERE tenant_id = %s AND rating = 'down' AND updated_at >= %s"
            " ORDER BY updated_at DESC, message_id LIMIT %s",
            (tenant, since, _NEGATIVE_FEEDBACK),
        ).fetchall()

    daily: list[dict[str, Any]] = []
    questions = no_answer = 0
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        row = per_day.get(day)
        asked, empty = (row["questions"], row["no_answer"]) if row else (0, 0)
        questions, no_answer = questions + asked, no_answer + empty
        daily.append({"day": day.isoformat(), "questions": asked, "noAnswer": empty})
    return {
        "days": days,
        "since": since.isoformat(),
        "retentionDays": retention_days,
        "questions": questions,
        "noAnswer": no_answer,
        "noAnswerShare": round(no_answer / questions, 4) if questions else None,
        "questionsPerDay": daily,
        "searches": searches["searches"],
        "searchesWithNoResult": searches["empty"],
        "emptySearches": [
            {"query": r["query"], "count": r["count"], "lastAt": r["last_at"].isoformat()} for r in empty_searches
        ],
        "feedback": {"up": ratings["up"], "down": ratings["down"]},
        "negativeFeedback": [_negative(r, kept_since) for r in negative],
        "mostCited": [
            {
                "documentId": str(r["document_id"]),
                "filename": r["filename"],
                "collectionId": str(r["collection_id"]) if r["collection_id"] else None,
                "deleted": r["status"] in (None, "deleted"),
                "citations": r["citations"],
            }
            for r in most_cited
        ],
        "neverRetrieved": {
            "days": NEVER_RETRIEVED_DAYS,
            "total": never[0]["total"] if never else 0,
            "documents": [
                {
                    "documentId": str(r["document_id"]),
                    "filename": r["filename"],
                    "collectionId": str(r["collection_id"]),
                }
                for r in never
            ],
        },
    }


def _negative(row: dict[str, Any], kept_since: dt.datetime) -> dict[str, Any]:
    kept = row["asked_at"] >= kept_since  # past retention: shown without its texts even before the sweep ran
    return {
        "messageId": row["message_id"],
        "sessionId": row["session_id"],
        "reason": row["reason"],
        "comment": row["comment"] if kept else None,
        "question": row["question"] if kept else None,
        "answer": row["answer"] if kept else None,
        "citations": row["citations"],
        "askedAt": row["asked_at"].isoformat(),
        "updatedAt": row["updated_at"].isoformat(),
    }


# --- retention ----------------------------------------------------------------------------------


def drop_expired_texts(db: Database, retention_days: int) -> int:
    """Drop (set NULL) every workspace's question, search and feedback texts older than ``retention_days``.

    Runs as the app role through ``folio_drop_expired_insight_texts`` (SECURITY DEFINER, migration
    0014), which alone reaches every workspace's rows. Idempotent: a second run finds nothing to drop.
    Returns how many rows lost their texts.
    """
    if retention_days < 1:
        raise ConfigError("INSIGHTS_RETENTION_DAYS must be at least 1.")
    with db.transaction() as conn:
        row = one(conn.execute("SELECT folio_drop_expired_insight_texts(%s) AS dropped", (retention_days,)).fetchone())
    return int(row["dropped"])
