"""One chat turn: rewrite → search → prompt → generate → cite, as a stream of events.

:func:`run_turn` is a generator of event dicts, the NDJSON lines of ``POST /api/chat``:

* ``{"type": "session", "sessionId", "title", "created"}`` — first, once the turn is accepted;
* ``{"type": "delta", "text"}`` — answer text, in order;
* ``{"type": "citations", "citations": [{n, chunkId, documentId, title, headingPath, pages, snippet}]}``;
* ``{"type": "done", "messageId", "usage", "provider", "model", "extractive", "grounded"}`` — last;

Failures are raised as :class:`~shared.errors.FolioError`. One raised before the session event (bad
input, unknown session, quota) can still be an HTTP status; one raised after it (a provider's 429 or
timeout, the store down...) ends the stream, and the HTTP layer writes it as a final
``{"type": "error", "error": {problem+json}}`` line. A failed turn stores nothing. A turn the client
abandons (it disconnects, and the generator is closed) stores nothing either, but is billed for what
the model read and wrote until then, estimated when the provider had not reported it yet.

Scope comes only from the caller: the workspace searched is ``caller.tenant_id`` (the search
filters on it in SQL, and row-level security backs that), the history is the caller's own session
read from the caller's own partition, and the collection filter can only narrow that workspace.
Neither a document nor a model's output can change any of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared import billing, insights
from shared.chat import prompt
from shared.chat.providers.base import Generation, Source, Usage, complete, estimated_usage
from shared.chat.providers.extractive import ExtractiveAnswerer
from shared.chat.secrets import get_user_key
from shared.chat.store import now_iso, owner_of
from shared.config import Settings
from shared.db import Database
from shared.errors import Conflict, FolioError, Invalid
from shared.ports import ChatModel, ChatModels, ChatStore, Embedder, SecretStore
from shared.search import SearchRequest, search
from shared.tenancy import Caller

_log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class Turn:
    message: str
    session_id: UUID | None = None
    collection_ids: tuple[UUID, ...] = ()


def run_turn(
    turn: Turn,
    *,
    caller: Caller,
    db: Database,
    store: ChatStore,
    settings: Settings,
    embedder: Embedder,
    models: ChatModels,
    keys: SecretStore | None = None,
) -> Iterator[dict[str, Any]]:
    """The events of one turn (see the module docstring). The model is the user's own (``keys``) if
    they set one, else the deployment's (``models``)."""
    message = turn.message.strip()
    if not message:
        raise Invalid("Field 'message' must not be empty.", fields=["message"])
    if len(message) > MAX_MESSAGE_CHARS:
        raise Invalid(f"Field 'message' must be at most {MAX_MESSAGE_CHARS} characters.", fields=["message"])
    owner = owner_of(caller)

    own_key = get_user_key(keys, caller)
    provider = (
        models.with_user_key(own_key.provider, own_key.api_key, own_key.model) if own_key else models.configured()
    )
    billed = own_key is None  # with their own key the user pays the provider; usage is still recorded
    if billed:
        billing.check(
            db, caller, billing.CHAT_TOKENS, 1, settings=settings
        )  # 402 before any work when the month is used up

    if turn.session_id is not None:
        session = store.get_session(owner, str(turn.session_id))
        if session.get("turns", 0) >= settings.chat_max_turns:
            raise Conflict(f"This chat has reached {settings.chat_max_turns} turns; start a new one.")
        history = store.recent_messages(owner, session["id"], 2 * settings.chat_history_turns)
        created = False
    else:
        session = store.create_session(owner, message)
        history, created = [], True
    yield {"type": "session", "sessionId": session["id"], "title": session["title"], "created": created}
    yield from _answer(
        message,
        turn,
        session["id"],
        history,
        caller=caller,
        db=db,
        store=store,
        settings=settings,
        embedder=embedder,
        provider=provider,
        billed=billed,
    )


def _answer(
    message: str,
    turn: Turn,
    session_id: str,
    history: list[dict[str, Any]],
    *,
    caller: Caller,
    db: Database,
    store: ChatStore,
    settings: Settings,
    embedder: Embedder,
    provider: ChatModel,
    billed: bool,
) -> Iterator[dict[str, Any]]:
    asked_at = now_iso()
    usage = Usage()
    query = message
    if prompt.needs_rewrite(message, history):
        query, rewrite_usage = _rewrite(provider, message, history)
        usage = usage.add(rewrite_usage)

    embedder = TurnEmbedder(embedder)  # the search's question vector serves the extractive answerer too
    sources = retrieve(db, caller, query, turn.collection_ids, embedder, settings.chat_sources)
    writing = Answering(for_turn(provider, embedder, settings, db=db, caller=caller, sources=sources), sources)
    try:
        yield from ({"type": "delta", "text": text} for text in writing.stream(message, history, settings))
        citations = writing.citations()
        yield {"type": "citations", "citations": citations}
    except GeneratorExit:
        # The client left mid-answer. The model still read the prompt and wrote until now (and its
        # provider bills for that), so it counts: otherwise leaving early would be free, unlimited chat.
        _charge(db, caller, usage.add(writing.spent()), billed, session_id, settings)
        raise
    usage = usage.add(writing.usage)
    _charge(db, caller, usage, billed, session_id, settings)
    text = writing.text
    model = {"provider": provider.name, "model": provider.model, "extractive": provider.extractive}
    _, stored = store.append_turn(
        owner_of(caller),
        session_id,
        {"role": "user", "content": message, "createdAt": asked_at, **({"query": query} if query != message else {})},
        {
            "role": "assistant",
            "content": text,
            "citations": citations,
            "usage": usage.as_json(),
            "billed": billed,
            **model,
        },
        max_turns=settings.chat_max_turns,
    )
    # Owners' insights: one row, after the answer is stored; a failure is logged, never raised.
    cited = [c["documentId"] for c in citations]
    insights.record_question(
        db, caller, message, retrieved=[s.document_id for s in sources], cited=cited, answered=writing.grounded
    )
    yield {
        "type": "done",
        "messageId": stored[1]["id"],
        "usage": usage.as_json(),
        **model,
        "grounded": writing.grounded,
    }


@dataclass
class Answering:
    """One answer being written: the provider's text through the citation filter, and what it cost.

    Citations are renumbered 1..k in the order they first appear in the answer (the filter does it
    as the text streams), and :meth:`citations` lists them in that order.
    """

    provider: ChatModel
    sources: list[Source]
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    _generation: Generation | None = None
    _reported: bool = False  # whether the provider's own usage arrived (it comes last)

    def __post_init__(self) -> None:
        self._cite = prompt.CitationFilter({s.n for s in self.sources})

    def stream(self, question: str, history: list[dict[str, Any]], settings: Settings) -> Iterator[str]:
        """The answer's text, piece by piece, with only real citations in it."""
        if not self.sources:
            # Nothing retrieved: say so without asking a model to make something up.
            self.text = prompt.NO_ANSWER
            yield prompt.NO_ANSWER
            return
        self._generation = prompt.answer_generation(question, self.sources, history, settings.chat_max_output_tokens)
        for piece in self.provider.stream(self._generation):
            if isinstance(piece, Usage):
                self.usage, self._reported = self.usage.add(piece), True
                continue
            text = self._cite.feed(piece)
            if text:
                self.text += text
                yield text
        rest = self._cite.finish()
        if rest:
            self.text += rest
            yield rest

    def citations(self) -> list[dict[str, Any]]:
        by_number = {s.n: s for s in self.sources}
        return [{**by_number[n].citation(), "n": shown} for shown, n in enumerate(self._cite.cited, 1)]

    @property
    def grounded(self) -> bool:
        """Whether the answer rests on the documents: it cites something and is not the no-answer sentence."""
        return bool(self._cite.cited) and self.text.strip() != prompt.NO_ANSWER

    def spent(self) -> Usage:
        """The usage so far; estimated when the provider has not reported it (the client left early)."""
        if self._generation is not None and not self._reported:
            return self.usage.add(estimated_usage(self._generation, self.text))
        return self.usage


def for_turn(
    provider: ChatModel,
    embedder: Embedder,
    settings: Settings,
    *,
    db: Database | None = None,
    caller: Caller | None = None,
    sources: Sequence[Source] = (),
) -> ChatModel:
    """The provider as this turn uses it: the extractive answerer scores sentences with the process's
    embedder and the sentence vectors stored for ``sources`` (read with ``db`` as ``caller``)."""
    if isinstance(provider, ExtractiveAnswerer):
        known = sentence_vectors(db, caller, sources) if db is not None and caller is not None else None
        return provider.using(embedder, settings.chat_extractive_min_score, known)
    return provider


def sentence_vectors(db: Database, caller: Caller, sources: Sequence[Source]) -> dict[str, list[float]]:
    """The stored vectors of the sources' sentences (migration 0015), by sentence key; one indexed read."""
    if not sources:
        return {}
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        rows = conn.execute(
            "SELECT text_hash, embedding::vector::text AS embedding FROM chunk_sentences"
            " WHERE tenant_id = %s AND chunk_id = ANY(%s)",
            (caller.tenant_id, [int(s.chunk_id) for s in sources]),
        ).fetchall()
    return {row["text_hash"]: [float(x) for x in row["embedding"][1:-1].split(",")] for row in rows}


class TurnEmbedder:
    """The process's embedder for one turn, remembering what it embedded: search embeds the question,
    and the extractive answerer needs the same vector again."""

    def __init__(self, embedder: Embedder) -> None:
        self.model_id, self.dimensions = embedder.model_id, embedder.dimensions
        self._embedder = embedder
        self._seen: dict[str, list[float]] = {}

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        todo = list(dict.fromkeys(t for t in texts if t not in self._seen))
        if todo:
            self._seen.update(zip(todo, self._embedder.embed(todo), strict=True))
        return [self._seen[t] for t in texts]


@dataclass(frozen=True)
class Answered:
    text: str
    citations: list[dict[str, Any]]
    sources: list[Source]
    grounded: bool
    usage: Usage


def answer_question(
    question: str,
    *,
    caller: Caller,
    db: Database,
    settings: Settings,
    embedder: Embedder,
    provider: ChatModel,
    collection_ids: tuple[UUID, ...] = (),
) -> Answered:
    """One question answered as a first chat turn would be (retrieve, prompt, provider, citation filter),
    without a session, history or billing: what benchmarks/answers.py scores."""
    embedder = TurnEmbedder(embedder)
    sources = retrieve(db, caller, question, collection_ids, embedder, settings.chat_sources)
    writing = Answering(for_turn(provider, embedder, settings, db=db, caller=caller, sources=sources), sources)
    for _ in writing.stream(question, [], settings):
        pass
    return Answered(writing.text, writing.citations(), sources, writing.grounded, writing.usage)


def _charge(db: Database, caller: Caller, usage: Usage, billed: bool, session_id: str, settings: Settings) -> None:
    if billed and usage.total_tokens:
        billing.consume(
            db,
            caller,
            billing.CHAT_TOKENS,
            usage.total_tokens,
            allow_overrun=True,
            source=f"chat:{session_id}",
            settings=settings,
        )


def _rewrite(provider: ChatModel, message: str, history: list[dict[str, Any]]) -> tuple[str, Usage]:
    """A standalone query for a follow-up question; the model's if there is one, else a heuristic."""
    if provider.extractive:
        return prompt.heuristic_rewrite(message, history), Usage()
    try:
        text, usage = complete(provider, prompt.rewrite_generation(message, history))
    except FolioError as exc:
        # The rewrite only improves retrieval: when it fails, search with the heuristic instead. If the
        # provider is really down, the answer itself fails next and says so.
        _log.info("question rewrite failed (%s); using the heuristic", type(exc).__name__)
        return prompt.heuristic_rewrite(message, history), Usage()
    query = " ".join(text.split())[:1000]
    return (query or prompt.heuristic_rewrite(message, history)), usage


def retrieve(
    db: Database, caller: Caller, query: str, collection_ids: tuple[UUID, ...], embedder: Embedder, top: int
) -> list[Source]:
    """The caller's best passages for ``query``, numbered 1..n, with their full text."""
    found = search(
        db, caller, SearchRequest(query=query[:1000], top=top, collection_ids=collection_ids), embedder=embedder
    )["results"]
    if not found:
        return []
    ids = [int(r["chunkId"]) for r in found]
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        bodies = {
            row["chunk_id"]: row["body"]
            for row in conn.execute(
                "SELECT chunk_id, body FROM chunks WHERE tenant_id = %s AND chunk_id = ANY(%s)", (caller.tenant_id, ids)
            )
        }
    sources: list[Source] = []
    for result in found:
        body = bodies.get(int(result["chunkId"]))
        if body is None:  # deleted between the search and now
            continue
        sources.append(
            Source(
                n=len(sources) + 1,
                chunk_id=result["chunkId"],
                document_id=result["documentId"],
                title=result["title"],
                heading_path=list(result["headingPath"] or []),
                pages=result["pages"],
                snippet=result["snippet"],
                text=body,
            )
        )
    return sources
