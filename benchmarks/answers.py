"""Grounded chat on a BEIR dataset with gold rationale sentences: does the answer quote the evidence?

    python -m benchmarks.answers --dataset ../shared/data/scifact --split test \\
        --evidence ../shared/data/scifact/evidence/test.jsonl \\
        --offtopic benchmarks/data/offtopic.jsonl [--provider NAME] [--baseline] [--calibrate] --json

Ingests the corpus through the real pipeline code (``benchmarks.retrieval``: parse → chunk → embed →
COPY; ``--reuse`` keeps a complete scratch database), then asks every claim that has evidence as a
first chat turn: retrieval, prompt, provider and citation filter (``shared.chat.answer.answer_question``;
no session history, storage or billing). Prints one JSON object:

* ``evidence@answer``: share of claims whose answer cites a passage of a gold document holding a
  gold rationale sentence; for an extractive provider the quoted sentence itself must be one;
* ``cited_gold_doc``: share with at least one citation of a gold document;
* ``refused_answerable``: share answered with the no-answer sentence (and no citation);
* ``offtopic_refused`` (with ``--offtopic``, a JSONL of ``{"text"}`` questions the corpus does not
  answer): share of those refused;
* ``median_ms``: median time of a claim's answer, retrieval (with its query embedding) included.

``--provider`` picks ``CHAT_PROVIDER`` (default: the environment's, else ``extractive``); model
providers read their keys and endpoints from the environment, so a deployment's Azure OpenAI chat
model is scored the same way. ``--baseline`` scores the answerer Folio had before (word overlap,
``extractive-v1``) in the same run. ``--calibrate`` prints, for the extractive answerer, the share
of claims and of off-topic questions refused at each refusal threshold, and the threshold that
refuses the most off-topic questions while refusing at most 10% of claims. Retrieval embeds with
the local model (the index's); embeddings of the corpus, its chunks and (migration 0015) its
sentences, are made at ingestion and cached in .local/cache (``index_sentences`` adds the sentence
vectors a reused scratch database lacks); a turn's own embedding (the question) is not cached, so
the time is what a turn costs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import beir
from benchmarks.common import ROOT, app_database
from benchmarks.retrieval import document_ids

REFUSAL_BUDGET = 0.10  # --calibrate: the most claims the chosen threshold may refuse
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_QUOTE = re.compile(r'^- "(.*)" ((?:\[\d+\])+)\s*$')


@dataclass(frozen=True)
class Claim:
    query_id: str
    text: str
    evidence: dict[str, list[str]]  # gold doc id -> gold rationale sentences


def load_claims(dataset: beir.Dataset, evidence_file: Path, queries_file: Path) -> list[Claim]:
    """The claims with gold rationale sentences, in file order (text from queries.jsonl)."""
    texts: dict[str, str] = {}
    with queries_file.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            texts[str(row["_id"])] = row["text"]
    evidence: dict[str, dict[str, list[str]]] = {}
    with evidence_file.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row.get("sentences"):
                evidence.setdefault(str(row["query_id"]), {})[str(row["doc_id"])] = list(row["sentences"])
    return [Claim(qid, texts[qid], docs) for qid, docs in evidence.items()]


def load_offtopic(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def same_sentence(quote: str, gold: str) -> bool:
    """A quote is a gold sentence if one holds the other (sentence splitters differ at the edges), or
    they share nearly all their words."""
    q, g = _norm(quote.rstrip("…")), _norm(gold)
    if not q or not g:
        return False
    if len(q) >= 20 and len(g) >= 20 and (q in g or g in q):
        return True
    wq, wg = set(q.split()), set(g.split())
    common = len(wq & wg)
    return common >= 0.8 * len(wg) and common >= 0.8 * len(wq)


def holds(passage: str, gold: str) -> bool:
    """Whether a passage contains a gold sentence (or, cut by a chunk boundary, most of its start)."""
    p, g = _norm(passage), _norm(gold)
    return bool(g) and (g in p or (len(g) > 80 and g[:80] in p))


def quotes(text: str) -> Iterator[tuple[str, list[int]]]:
    """The extractive answer's quoted sentences with their citation numbers."""
    for line in text.splitlines():
        match = _QUOTE.match(line.strip())
        if match:
            yield match.group(1), [int(n) for n in re.findall(r"\d+", match.group(2))]


def score(claim: Claim, answer: Any, doc_of: dict[str, str], *, extractive: bool, no_answer: str) -> dict[str, bool]:
    """One claim's three outcomes, from the answer's text, citations and the passages they point at."""
    by_shown = {c["n"]: c for c in answer.citations}
    text_of = {s.chunk_id: s.text for s in answer.sources}
    cited_docs = {doc_of.get(c["documentId"]) for c in answer.citations}
    evidence = False
    if extractive:
        for quote, numbers in quotes(answer.text):
            for n in numbers:
                doc = doc_of.get(by_shown[n]["documentId"]) if n in by_shown else None
                if doc in claim.evidence and any(same_sentence(quote, g) for g in claim.evidence[doc]):
                    evidence = True
    else:
        for citation in answer.citations:
            doc = doc_of.get(citation["documentId"])
            passage = text_of.get(citation["chunkId"], "")
            if doc in claim.evidence and any(holds(passage, g) for g in claim.evidence[doc]):
                evidence = True
    return {
        "evidence": evidence,
        "cited_gold": bool(cited_docs & set(claim.evidence)),
        "refused": refused(answer, no_answer),
    }


def refused(answer: Any, no_answer: str) -> bool:
    return not answer.citations and no_answer in answer.text


def evaluate(
    claims: list[Claim],
    offtopic: list[str],
    *,
    urls: dict[str, str],
    tenant: uuid.UUID,
    settings: Any,
    embedder: Any,
    provider: Any,
) -> dict[str, Any]:
    """Every claim (and off-topic question) through ``answer_question``; the shares and the median time."""
    from shared.chat import prompt
    from shared.chat.answer import answer_question
    from shared.tenancy import Caller, Role

    db = app_database(urls["app"])
    caller = Caller(tenant, Role.VIEWER, "user", "benchmark")
    doc_of = document_ids(urls, tenant)
    outcomes, times = [], []
    try:
        for claim in claims:
            started = time.perf_counter()
            answer = answer_question(
                claim.text, caller=caller, db=db, settings=settings, embedder=embedder, provider=provider
            )
            times.append(time.perf_counter() - started)
            outcomes.append(score(claim, answer, doc_of, extractive=provider.extractive, no_answer=prompt.NO_ANSWER))
        off = [
            refused(
                answer_question(q, caller=caller, db=db, settings=settings, embedder=embedder, provider=provider),
                prompt.NO_ANSWER,
            )
            for q in offtopic
        ]
    finally:
        db.close()
    count = len(outcomes)
    result: dict[str, Any] = {
        "provider": provider.name,
        "model": provider.model,
        "claims": count,
        "evidence@answer": round(sum(o["evidence"] for o in outcomes) / count, 4) if count else None,
        "cited_gold_doc": round(sum(o["cited_gold"] for o in outcomes) / count, 4) if count else None,
        "refused_answerable": round(sum(o["refused"] for o in outcomes) / count, 4) if count else None,
        "offtopic_refused": round(sum(off) / len(off), 4) if off else None,
        "offtopic": len(off),
        "median_ms": round(statistics.median(times) * 1000, 1) if times else None,
    }
    return result


def calibrate(
    claims: list[Claim], offtopic: list[str], *, urls: dict[str, str], tenant: uuid.UUID, settings: Any, embedder: Any
) -> dict[str, Any]:
    """The extractive answerer's best-sentence score for every claim and off-topic question, and the
    threshold that refuses the most off-topic questions while refusing at most REFUSAL_BUDGET of claims."""
    from shared.chat.answer import retrieve, sentence_vectors
    from shared.chat.providers.extractive import rank
    from shared.tenancy import Caller, Role

    db = app_database(urls["app"])
    caller = Caller(tenant, Role.VIEWER, "user", "benchmark")

    def best(question: str) -> float:
        sources = retrieve(db, caller, question, (), embedder, settings.chat_sources)
        ranked = rank(question, sources, embedder, sentence_vectors(db, caller, sources))  # as a turn scores
        return ranked[0].score if ranked else float("-inf")

    try:
        answerable = sorted(best(c.text) for c in claims)
        off = sorted(best(q) for q in offtopic)
    finally:
        db.close()
    sweep: list[dict[str, Any]] = []
    for step in range(10, 71):
        threshold = step / 100
        sweep.append(
            {
                "threshold": threshold,
                "refused_answerable": round(sum(s < threshold for s in answerable) / len(answerable), 4),
                "offtopic_refused": round(sum(s < threshold for s in off) / len(off), 4) if off else None,
            }
        )
    allowed = [row for row in sweep if row["refused_answerable"] <= REFUSAL_BUDGET]
    chosen = max(allowed, key=lambda row: (row["offtopic_refused"] or 0, -row["threshold"])) if allowed else None
    return {
        "best_score_quartiles": {
            "answerable": [round(x, 3) for x in statistics.quantiles(answerable, n=4)],
            "offtopic": [round(x, 3) for x in statistics.quantiles(off, n=4)] if len(off) > 1 else off,
        },
        "chosen": chosen,
        "sweep": sweep,
    }


def index_sentences(urls: dict[str, str], tenant: uuid.UUID, embedder: Any) -> int:
    """Sentence vectors (migration 0015) for the chunks that have none, written as the indexer writes
    them (``shared.indexer.sentence_embeddings``); a scratch database built before 0015, or by
    ``benchmarks.retrieval`` (which loads chunks without the indexer), gets them here. Returns how
    many sentences were written."""
    from shared.indexer import sentence_embeddings, store_sentences

    db = app_database(urls["app"])
    written = 0
    try:
        with db.transaction(tenant_id=tenant) as conn:
            todo = [
                (row["chunk_id"], row["heading_path"], row["body"])
                for row in conn.execute(
                    "SELECT chunk_id, heading_path, body FROM chunks c WHERE tenant_id = %s AND NOT EXISTS"
                    " (SELECT 1 FROM chunk_sentences s WHERE s.tenant_id = c.tenant_id AND s.chunk_id = c.chunk_id)"
                    " ORDER BY chunk_id",
                    (tenant,),
                )
            ]
        for start in range(0, len(todo), 512):
            rows = sentence_embeddings(embedder, todo[start : start + 512])
            with db.transaction(tenant_id=tenant) as conn:
                store_sentences(conn, tenant, rows)
            written += len(rows)
            print(f"\rsentence vectors: {min(start + 512, len(todo))}/{len(todo)} chunks", end="", file=sys.stderr)
    finally:
        db.close()
    return written


class WordOverlapAnswerer:
    """The extractive answerer as it was before #15 (``extractive-v1``), kept here as the baseline: a
    sentence qualifies when it holds at least half of the question's content words; the best three
    are quoted in document order."""

    name = "extractive"
    model = "extractive-v1"
    extractive = True

    def stream(self, generation: Any) -> Iterator[Any]:
        from shared.chat.prompt import NO_ANSWER
        from shared.chat.providers.base import Usage
        from shared.chat.providers.extractive import LABEL, content_terms

        wanted = content_terms(generation.question)
        needed = (len(wanted) + 1) // 2
        scored = []
        for rank, source in enumerate(generation.sources):
            for position, sentence in enumerate(_v1_sentences(source.text)):
                matched = len(wanted & content_terms(sentence))
                if wanted and matched >= needed:
                    scored.append((-matched, rank, len(sentence), position, source, sentence))
        scored.sort(key=lambda s: s[:4])
        best = sorted(scored[:3], key=lambda s: (s[1], s[3]))
        pieces = [NO_ANSWER] if not best else [LABEL + "\n"] + [f'\n- "{s[5]}" [{s[4].n}]' for s in best]
        yield from pieces
        yield Usage(0, 0, estimated=True)


_V1_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”')\]]*\s+")
_V1_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*•]\s+|\d+[.)]\s+|>\s*)")


def _v1_sentences(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        line = _V1_MARKUP.sub("", line).strip()
        for sentence in _V1_SENTENCE_END.split(line):
            sentence = " ".join(sentence.split())
            if len(_WORD.findall(sentence)) >= 4:
                found.append(sentence if len(sentence) <= 400 else sentence[:399] + "…")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--evidence", type=Path, required=True, help="JSONL: query_id, doc_id, sentences")
    parser.add_argument("--offtopic", type=Path, help='JSONL of {"text"} questions the corpus does not answer')
    parser.add_argument("--provider", help="CHAT_PROVIDER to score (default: the environment's, else extractive)")
    parser.add_argument("--baseline", action="store_true", help="also score the pre-#15 extractive answerer")
    parser.add_argument("--calibrate", action="store_true", help="sweep the extractive refusal threshold")
    parser.add_argument("--reuse", action="store_true", help="reuse an already ingested scratch database")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output anyway)")
    args = parser.parse_args(argv)

    from benchmarks.embedding_cache import CachedEmbedder
    from benchmarks.retrieval import prepared_database
    from shared.chat.providers import get_provider
    from shared.config import load_settings
    from shared.ingest.embedders import embedder_from_settings

    dataset = beir.load(args.dataset, args.split)
    claims = load_claims(dataset, args.evidence, args.dataset / "queries.jsonl")
    offtopic = load_offtopic(args.offtopic) if args.offtopic else []
    index_embedder = embedder_from_settings(load_settings({}))  # the local model the scratch index is built with
    cached = CachedEmbedder(index_embedder, ROOT / ".local" / "cache" / "embeddings.sqlite")
    urls, tenant, info = prepared_database(dataset, cached, reuse=args.reuse)
    info["sentences_indexed"] = index_sentences(urls, tenant, cached)
    environ = dict(os.environ)
    if args.provider:
        environ["CHAT_PROVIDER"] = args.provider
    settings = load_settings(environ)
    provider = get_provider(settings)
    index_embedder.embed(["warm up"])  # the model loads once per process, not inside the first turn
    common: dict[str, Any] = {"urls": urls, "tenant": tenant, "settings": settings, "embedder": index_embedder}
    result: dict[str, Any] = {"dataset": dataset.name, "split": args.split, **info}
    if provider.extractive:
        from shared.chat.providers.extractive import min_score_for

        result["min_score"] = settings.chat_extractive_min_score or min_score_for(index_embedder)
    result.update(evaluate(claims, offtopic, provider=provider, **common))
    if args.baseline:
        result["baseline"] = evaluate(claims, offtopic, provider=WordOverlapAnswerer(), **common)
    if args.calibrate:
        result["calibration"] = calibrate(claims, offtopic, **common)
    print(json.dumps(result, default=str))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
