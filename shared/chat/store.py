"""Chat sessions and messages in Cosmos DB (NoSQL): one logical partition per (tenant, user).

The ``chat`` container has the hierarchical partition key ``['/tenantId', '/userId']`` (see
bicep/modules/cosmos.bicep), so listing a user's sessions and reading one session, with its
messages, are single-partition operations, and one tenant's users spread over many physical
partitions. Two item types share the container:

* a session ``{id, type: "session", tenantId, userId, title, state, createdAt, updatedAt,
  messageCount, turns, usage}``;
* a message ``{id: "<session>-<seq>", type: "message", tenantId, userId, sessionId, seq, role,
  content, createdAt, citations?, usage?, provider?, model?, feedback?}``; ``feedback`` (answers
  only, :mod:`shared.feedback`) is ``{rating, reason, comment, updatedAt}``.

Every query names both partition key values *in its text* as well as in ``partition_key``: the
local emulator ignores the argument (and refuses queries that do not filter on the key), and on
real Cosmos DB the text filter is what makes the query single-partition anyway. Pages use the
SDK's continuation tokens (no OFFSET/LIMIT, which the emulator lacks and which cost O(offset)).

Writes to a session are optimistic: each carries the ``_etag`` it read as ``If-Match``. A turn
claims its message numbers by updating the session under its etag *before* writing the messages,
so two concurrent turns on one session can never get the same numbers; the loser re-reads and
retries. Deleting a session marks it ``deleting`` first (hidden from then on), removes its
messages, then the session; a delete that was interrupted is finished by the next one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.errors import ConfigError, Conflict, FolioError, Invalid, NotFound, PreconditionFailed, Unavailable
from shared.tenancy import Caller

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_log = logging.getLogger(__name__)

SESSION, MESSAGE = "session", "message"
ACTIVE, DELETING = "active", "deleting"
MAX_TITLE_CHARS = 120
MAX_PAGE_SIZE = 100
_APPEND_ATTEMPTS = 6
# A session being deleted expires on its own (Cosmos TTL) should the cleanup never finish.
_DELETING_TTL_S = 24 * 3600
_MAX_CONTINUATION_CHARS = 4096

_SELECT_SESSIONS = (
    "SELECT * FROM c WHERE c.tenantId = @tenant AND c.userId = @user AND c.type = 'session'"
    " AND c.state = 'active' ORDER BY c.updatedAt DESC"
)
_SELECT_MESSAGES = (
    "SELECT * FROM c WHERE c.tenantId = @tenant AND c.userId = @user AND c.type = 'message'"
    " AND c.sessionId = @session ORDER BY c.seq"
)
_SELECT_RECENT = (
    "SELECT TOP @n * FROM c WHERE c.tenantId = @tenant AND c.userId = @user AND c.type = 'message'"
    " AND c.sessionId = @session ORDER BY c.seq DESC"
)
_SELECT_MESSAGE_IDS = (
    "SELECT c.id FROM c WHERE c.tenantId = @tenant AND c.userId = @user AND c.type = 'message'"
    " AND c.sessionId = @session"
)


@dataclass(frozen=True)
class Owner:
    """Whose conversations these are: the logical partition. Only ever built from the authenticated caller."""

    tenant_id: str
    user_id: str

    @property
    def partition_key(self) -> list[str]:
        return [self.tenant_id, self.user_id]

    def params(self, **extra: Any) -> list[dict[str, Any]]:
        values = {"@tenant": self.tenant_id, "@user": self.user_id, **{f"@{k}": v for k, v in extra.items()}}
        return [{"name": k, "value": v} for k, v in values.items()]


def owner_of(caller: Caller) -> Owner:
    """Users own their sessions; an API key is its own owner (it has no user), scoped to its workspace."""
    user = str(caller.user_id) if caller.user_id is not None else f"{caller.actor_type}:{caller.actor_id}"
    return Owner(str(caller.tenant_id), user)


@dataclass(frozen=True)
class Page:
    sessions: list[dict[str, Any]]
    continuation: str | None


def now_iso() -> str:
    # Microseconds, fixed width, UTC: ISO strings then sort in time order, which ORDER BY relies on.
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def http_etag(raw: str) -> str:
    """An item's ``_etag`` as an HTTP entity tag (real Cosmos quotes it, the emulator does not)."""
    return raw if raw.startswith('"') else f'"{raw}"'


def _etag_matches(if_match: str | None, raw: str) -> bool:
    if if_match is None:
        return True
    wanted = {tag.strip() for tag in if_match.split(",")}
    return "*" in wanted or http_etag(raw) in wanted


class ChatStore:
    """The chat repository. ``container`` is an azure-cosmos ``ContainerProxy``."""

    def __init__(self, container: Any, *, clock: Callable[[], str] = now_iso) -> None:
        self._container = container
        self._now = clock

    def ping(self) -> None:
        """Read the container's properties: proves the endpoint, the credential and the container."""
        with _cosmos_errors("checking the chat store"):
            self._container.read()

    # --- sessions -------------------------------------------------------------------------

    def create_session(self, owner: Owner, title: str) -> dict[str, Any]:
        now = self._now()
        item = {
            "id": str(uuid.uuid4()),
            "type": SESSION,
            "tenantId": owner.tenant_id,
            "userId": owner.user_id,
            "title": _title(title),
            "state": ACTIVE,
            "createdAt": now,
            "updatedAt": now,
            "messageCount": 0,
            "turns": 0,
            "usage": {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0},
        }
        with _cosmos_errors("create the chat session"):
            return dict(self._container.create_item(item))

    def get_session(self, owner: Owner, session_id: str) -> dict[str, Any]:
        """The active session, or NotFound: another user's id, a deleted or a malformed one look the same."""
        item = self._read(owner, session_id)
        if item is None or item.get("type") != SESSION or item.get("state") != ACTIVE:
            raise NotFound("No such chat session.")
        return item

    def list_sessions(self, owner: Owner, *, limit: int, continuation: str | None) -> Page:
        """Newest activity first, ``limit`` per page; ``continuation`` comes from the previous page."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise Invalid(f"Query parameter 'limit' must be between 1 and {MAX_PAGE_SIZE}.")
        token = _decode_continuation(continuation)
        with _cosmos_errors("list chat sessions", bad_request="The continuation token is not valid."):
            pager = self._container.query_items(
                _SELECT_SESSIONS,
                parameters=owner.params(),
                partition_key=owner.partition_key,
                max_item_count=limit,
            ).by_page(token)
            sessions = [dict(item) for item in next(pager, [])]
            next_token = pager.continuation_token if sessions else None
        return Page(sessions, _encode_continuation(next_token))

    def rename_session(self, owner: Owner, session_id: str, title: str, *, if_match: str | None) -> dict[str, Any]:
        return self._update(
            owner, session_id, lambda s: {**s, "title": _title(title), "updatedAt": self._now()}, if_match=if_match
        )

    def delete_session(self, owner: Owner, session_id: str, *, if_match: str | None) -> None:
        item = self._read(owner, session_id)
        if item is None or item.get("type") != SESSION:
            raise NotFound("No such chat session.")
        if item.get("state") == ACTIVE:
            # Hide it first, under the caller's etag: from here on it is gone for every reader.
            item = self._update(
                owner, session_id, lambda s: {**s, "state": DELETING, "ttl": _DELETING_TTL_S}, if_match=if_match
            )
        with _cosmos_errors("delete the chat session"):
            ids = [
                row["id"]
                for row in self._container.query_items(
                    _SELECT_MESSAGE_IDS, parameters=owner.params(session=session_id), partition_key=owner.partition_key
                )
            ]
            for message_id in ids:
                self._delete_item(owner, message_id)
            self._delete_item(owner, session_id)

    # --- messages -------------------------------------------------------------------------

    def messages(self, owner: Owner, session_id: str) -> list[dict[str, Any]]:
        with _cosmos_errors("read the chat messages"):
            return [
                dict(m)
                for m in self._container.query_items(
                    _SELECT_MESSAGES, parameters=owner.params(session=session_id), partition_key=owner.partition_key
                )
            ]

    def recent_messages(self, owner: Owner, session_id: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` messages, oldest first."""
        if count <= 0:
            return []
        with _cosmos_errors("read the chat history"):
            newest_first = [
                dict(m)
                for m in self._container.query_items(
                    _SELECT_RECENT,
                    parameters=owner.params(session=session_id, n=count),
                    partition_key=owner.partition_key,
                )
            ]
        return list(reversed(newest_first))

    def append_turn(
        self, owner: Owner, session_id: str, question: dict[str, Any], answer: dict[str, Any], *, max_turns: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Store a question and its answer as the next two messages; returns the session and both messages."""
        usage = answer.get("usage") or {}
        claimed: dict[str, Any] = {}

        def claim(session: dict[str, Any]) -> dict[str, Any]:
            if session.get("turns", 0) >= max_turns:
                raise Conflict(f"This chat has reached {max_turns} turns; start a new one.")
            claimed["seq"] = session.get("messageCount", 0) + 1
            total = dict(session.get("usage") or {})
            for key in ("promptTokens", "completionTokens", "totalTokens"):
                total[key] = int(total.get(key, 0)) + int(usage.get(key, 0))
            return {
                **session,
                "messageCount": claimed["seq"] + 1,
                "turns": session.get("turns", 0) + 1,
                "usage": total,
                "updatedAt": self._now(),
            }

        session = self._update(owner, session_id, claim, if_match=None)
        seq = claimed["seq"]
        stored = []
        with _cosmos_errors("store the chat messages"):
            for offset, message in enumerate((question, answer)):
                item = {
                    **message,
                    "id": f"{session_id}-{seq + offset:05d}",
                    "type": MESSAGE,
                    "tenantId": owner.tenant_id,
                    "userId": owner.user_id,
                    "sessionId": session_id,
                    "seq": seq + offset,
                    "createdAt": message.get("createdAt") or self._now(),
                }
                stored.append(dict(self._container.create_item(item)))
        return session, stored

    def message(self, owner: Owner, session_id: str, message_id: str) -> dict[str, Any]:
        """One message of one of the owner's sessions, or NotFound (another user's looks the same)."""
        item = self._read(owner, message_id)
        if item is None or item.get("type") != MESSAGE or item.get("sessionId") != session_id:
            raise NotFound("No such chat message.")
        return item

    def set_feedback(
        self, owner: Owner, session_id: str, message_id: str, feedback: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Put (``None``: remove) the owner's feedback on an assistant message, under the message's etag."""
        from azure.core import MatchConditions
        from azure.cosmos import exceptions

        for _ in range(_APPEND_ATTEMPTS):
            current = self.message(owner, session_id, message_id)
            if current.get("role") != "assistant":
                raise Invalid("Only answers take feedback.")
            updated = {k: v for k, v in current.items() if not k.startswith("_") and k != "feedback"}
            if feedback is not None:
                updated["feedback"] = feedback
            try:
                return dict(
                    self._container.replace_item(
                        message_id, updated, etag=current["_etag"], match_condition=MatchConditions.IfNotModified
                    )
                )
            except exceptions.CosmosAccessConditionFailedError:
                continue  # changed in between (a second click): re-read and apply this one on top
            except exceptions.CosmosResourceNotFoundError:
                raise NotFound("No such chat message.") from None
            except exceptions.CosmosHttpResponseError as exc:
                raise _unavailable("store the feedback", exc) from None
        raise Conflict("The chat message is being changed by another request; retry.")

    # --- internals ------------------------------------------------------------------------

    def _read(self, owner: Owner, item_id: str) -> dict[str, Any] | None:
        from azure.cosmos import exceptions

        try:
            return dict(self._container.read_item(item_id, partition_key=owner.partition_key))
        except exceptions.CosmosResourceNotFoundError:
            return None
        except exceptions.CosmosHttpResponseError as exc:
            if exc.status_code == 404:
                return None
            raise _unavailable("read the chat session", exc) from None
        except Exception as exc:  # azure-core transport errors: no answer at all
            raise _unavailable("read the chat session", exc) from None

    def _update(
        self, owner: Owner, session_id: str, change: Callable[[dict[str, Any]], dict[str, Any]], *, if_match: str | None
    ) -> dict[str, Any]:
        """Read-modify-write under the item's etag. With ``if_match`` (the client's), a stale etag is a 412;
        without, a lost race is retried on fresh data."""
        from azure.core import MatchConditions
        from azure.cosmos import exceptions

        for _ in range(_APPEND_ATTEMPTS):
            current = self.get_session(owner, session_id)
            if not _etag_matches(if_match, current["_etag"]):
                raise PreconditionFailed(
                    "The chat session has changed since it was read; reload it and retry.",
                    etag=http_etag(current["_etag"]),
                )
            updated = {k: v for k, v in change(current).items() if not k.startswith("_")}
            try:
                return dict(
                    self._container.replace_item(
                        session_id, updated, etag=current["_etag"], match_condition=MatchConditions.IfNotModified
                    )
                )
            except exceptions.CosmosAccessConditionFailedError:
                if if_match is not None and "*" not in if_match:
                    raise PreconditionFailed(
                        "The chat session has changed since it was read; reload it and retry."
                    ) from None
                continue  # someone else wrote in between: re-read and apply the change again
            except exceptions.CosmosResourceNotFoundError:
                raise NotFound("No such chat session.") from None
            except exceptions.CosmosHttpResponseError as exc:
                raise _unavailable("update the chat session", exc) from None
        raise Conflict("The chat session is being changed by another request; retry.")

    def _delete_item(self, owner: Owner, item_id: str) -> None:
        from azure.cosmos import exceptions

        try:
            self._container.delete_item(item_id, partition_key=owner.partition_key)
        except exceptions.CosmosResourceNotFoundError:
            pass  # already gone: deletes are repeatable


def _title(text: str) -> str:
    title = " ".join(text.split())
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return title or "New chat"


# Continuation tokens are the SDK's (JSON text), wrapped in a versioned envelope and base64url-encoded, so
# they travel in a query string untouched and anything else is refused before it reaches Cosmos DB. They
# carry a position only: the query itself always names the caller's partition.
def _encode_continuation(token: str | None) -> str | None:
    if not token:
        return None
    envelope = json.dumps({"v": 1, "cosmos": token}, separators=(",", ":"))
    return base64.urlsafe_b64encode(envelope.encode()).decode().rstrip("=")


def _decode_continuation(value: str | None) -> str | None:
    if not value:
        return None
    try:
        if len(value) > _MAX_CONTINUATION_CHARS:
            raise ValueError("too long")
        envelope = json.loads(base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True))
        token = envelope["cosmos"] if isinstance(envelope, dict) and envelope.get("v") == 1 else None
        if not isinstance(token, str) or not token:
            raise ValueError("not ours")
        return token
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError):
        raise Invalid("The continuation token is not valid.") from None


@contextmanager
def _cosmos_errors(doing: str, *, bad_request: str | None = None) -> Iterator[None]:
    """Map Cosmos failures to Folio errors; the SDK's own messages (which quote requests) stay out of bodies."""
    try:
        yield
    except FolioError:
        raise
    except Exception as exc:
        if getattr(exc, "status_code", None) == 400 and bad_request:
            raise Invalid(bad_request) from None
        if type(exc).__module__.startswith(("azure.", "requests", "urllib3")) or isinstance(exc, OSError):
            raise _unavailable(doing, exc) from None
        raise


def _unavailable(doing: str, exc: BaseException) -> Unavailable:
    status = getattr(exc, "status_code", None)
    _log.warning("Cosmos DB: could not %s (%s%s)", doing, type(exc).__name__, f", HTTP {status}" if status else "")
    return Unavailable(f"Could not {doing}: the chat store is unavailable; retry shortly.")


def cosmos_chat_store(settings: Settings, credential: TokenCredential | None = None) -> ChatStore:
    """The chat store on Cosmos DB: Entra (``credential``, the app identity) in Azure, or COSMOS_KEY."""
    from azure.cosmos import CosmosClient

    endpoint = settings.require("cosmos_endpoint")
    # The SDK logs every request and response at INFO through its own policy: far too much for app logs.
    logging.getLogger("azure.cosmos._cosmos_http_logging_policy").setLevel(logging.WARNING)
    auth: Any = credential
    if settings.cosmos_key is not None and settings.cosmos_key.is_set():
        auth = settings.cosmos_key.reveal()
    if auth is None:
        raise ConfigError("Cosmos DB needs the app's identity (Azure) or COSMOS_KEY.")
    client = CosmosClient(
        endpoint,
        auth,
        connection_timeout=max(1, int(settings.cosmos_timeout_s)),
        read_timeout=settings.cosmos_timeout_s,
    )
    container = client.get_database_client(settings.cosmos_database).get_container_client(
        settings.cosmos_chat_container
    )
    return ChatStore(container)
