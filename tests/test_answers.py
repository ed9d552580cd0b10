"""Answers worth reading (#15): the extractive answerer chooses evidence by meaning, skips headings and
repeats, numbers its citations 1..k and refuses what the passages do not answer; and the answer
benchmark runs end to end with a model provider (the loopback OpenAI stub, answering by rule).

The answerer tests use the real local embedding model (all-MiniLM-L6-v2), since choosing by meaning
is what they check. The benchmark test runs ``python -m benchmarks.answers`` against the test
PostgreSQL, so ingestion, retrieval, the prompt, the OpenAI SDK over HTTP, the citation filter and
the scoring are all real; only the model's answers are scripted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.chat.answer import Answering, answer_question, sentence_vectors
from shared.chat.prompt import NO_ANSWER
from shared.chat.providers.base import Generation, Source, Usage, complete
from shared.chat.providers.extractive import LABEL, MAX_CANDIDATES, ExtractiveAnswerer, pick, rank, sentences
from shared.config import load_settings
from shared.db import Conn
from shared.tenancy import Caller, Role
from tests.conftest import TEST_CONTEXT_KEY
from tests.fakes_embedding import HashingEmbedder
from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.stubs.llm_server import LlmStub, Recorded, Reply

ROOT = Path(__file__).resolve().parent.parent

MANUAL = """# Updating a Value Based on the Old Value

## Overview

To change a value that depends on its current value, read the old value with get() and store the new one with set().

Call update() with a function instead when other writers may change the value at the same time.

| Method | Returns |
|---|---|
"""
INSTALL = """# Installing

Run the installer as an administrator and restart the machine when it asks you to.
"""
LEAVE = "Employees receive twenty-five days of paid holiday each year."


@pytest.fixture(scope="module")
def embedder() -> Any:
    from shared.ingest.embedders import LocalMiniLMEmbedder

    model = LocalMiniLMEmbedder()
    model.load()
    return model


def source(n: int, text: str, document: str = "d") -> Source:
    return Source(n, str(100 + n), document, f"doc {n}", [], None, text[:40], text)


def answer(question: str, sources: list[Source], embedder: Any) -> str:
    text, _ = complete(ExtractiveAnswerer(embedder), Generation("", [], 100, question, sources))
    return text


def test_sentences_leave_out_headings_table_rows_and_fragments() -> None:
    found = sentences(MANUAL + "\nSee also\n\nA short note.\n")
    assert found == [
        "To change a value that depends on its current value, read the old value with get() and store the new "
        "one with set().",
        "Call update() with a function instead when other writers may change the value at the same time.",
    ]
    # Lines wrapped by a PDF's layout are one sentence; "e.g." and "et al." do not end one.
    assert sentences(
        "The dose was reduced, e.g. to 5 mg, as Smith et al. reported\nin 2019. Nothing else changed in the protocol."
    ) == [
        "The dose was reduced, e.g. to 5 mg, as Smith et al. reported in 2019.",
        "Nothing else changed in the protocol.",
    ]


def test_a_heading_repeated_as_the_first_line_of_a_passage_is_not_a_sentence() -> None:
    # The chunker writes a section's heading as a plain first line of the chunk's body (no "#"): a
    # long title without a full stop was quoted as if it answered.
    body = "Kinetics and Fidelity of the Repair of Cas9-Induced Double-Strand DNA Breaks in Human Cells\n\n" + LEAVE
    assert sentences(body) == [body.split("\n\n")[0], LEAVE]
    assert sentences(
        body, ["Kinetics and Fidelity of the Repair of Cas9-Induced Double-Strand DNA Breaks in Human Cells"]
    ) == [LEAVE]


def test_the_answer_quotes_the_sentence_that_answers_not_the_heading(embedder: Any) -> None:
    text = answer("How do I update a value based on the old value?", [source(1, MANUAL), source(2, INSTALL)], embedder)
    assert text.startswith(LABEL)
    assert "read the old value with get()" in text
    assert "Updating a Value Based" not in text and "Installing" not in text


def test_meaning_counts_when_the_words_differ(embedder: Any) -> None:
    sources = [source(1, INSTALL), source(2, LEAVE)]
    text = answer("How much vacation do workers get?", sources, embedder)  # no word in common
    assert f'"{LEAVE}" [2]' in text


def test_a_sentence_repeated_by_overlapping_passages_is_quoted_once(embedder: Any) -> None:
    text = answer("How many days of paid holiday do employees get?", [source(1, LEAVE), source(2, LEAVE)], embedder)
    assert text.count(LEAVE) == 1


def test_a_question_the_passages_do_not_answer_is_refused(embedder: Any) -> None:
    sources = [source(1, MANUAL), source(2, INSTALL), source(3, LEAVE)]
    assert answer("What is the capital of France?", sources, embedder) == NO_ANSWER
    assert pick("Who won the 2018 FIFA World Cup?", sources, embedder) == []


def test_citations_are_numbered_in_the_order_they_appear() -> None:
    class Model:
        name, model, extractive = "scripted", "scripted", False

        def stream(self, generation: Generation) -> Iterator[str | Usage]:
            yield "Pay in thirty days [3]; holidays [5][3]; nothing from [9]."
            yield Usage(1, 1)

    sources = [source(n, f"Passage number {n} says something.", f"doc{n}") for n in range(1, 7)]
    writing = Answering(Model(), sources)
    text = "".join(writing.stream("q", [], load_settings({})))
    assert text == "Pay in thirty days [1]; holidays [2][1]; nothing from ."
    assert [(c["n"], c["documentId"]) for c in writing.citations()] == [(1, "doc3"), (2, "doc5")]
    assert writing.grounded


def test_grounded_only_when_something_was_quoted(embedder: Any) -> None:
    writing = Answering(ExtractiveAnswerer(embedder), [source(1, INSTALL), source(2, LEAVE)])
    assert "".join(writing.stream("Who painted the Mona Lisa?", [], load_settings({}))) == NO_ANSWER
    assert writing.citations() == [] and not writing.grounded


class Counting(HashingEmbedder):
    """The tests' fake embedder, recording every text it is asked to embed."""

    def __init__(self) -> None:
        super().__init__(384)
        self.texts: list[str] = []

    def embed(self, texts: Any) -> Any:
        self.texts += list(texts)
        return super().embed(texts)


def test_sentences_without_a_stored_vector_are_embedded_at_most_max_candidates() -> None:
    many = " ".join(f"Clause {i} says the fee for item {i} is {i} euros." for i in range(3 * MAX_CANDIDATES))
    counting = Counting()
    ranked = rank("What is the fee for item 3?", [source(1, many)], counting)
    assert len(counting.texts) == 1 + MAX_CANDIDATES and len(ranked) == MAX_CANDIDATES
    stored = rank("What is the fee for item 3?", [source(1, many)], counting, {k: [0.0] * 384 for k in _keys(many)})
    assert len(counting.texts) == 2 + MAX_CANDIDATES and len(stored) == 3 * MAX_CANDIDATES  # only the question


def _keys(text: str) -> list[str]:
    from shared.chat.providers.extractive import sentence_key

    return [sentence_key([], s) for s in sentences(text)]


CONTRACT = b"""# Supply Agreement

## Article 4 Payment

Section 4.1 The Buyer shall pay each invoice within thirty days of receipt. Payment is made by bank transfer.

Section 4.2 Late payment accrues interest at two percent per month.
"""


def test_indexing_stores_sentence_vectors_so_a_turn_embeds_only_the_question(
    client: Client, pipeline: Pipeline, admin_conn: Conn, database_urls: dict[str, str]
) -> None:
    from benchmarks.common import app_database
    from tests.test_ingestion import _collection, _user, upload

    user = _user(client)
    created = upload(user, _collection(user), "supply.md", CONTRACT)
    pipeline.settle()
    chunks = admin_conn.execute(
        "SELECT c.tenant_id, c.heading_path, c.body, count(s.position) AS stored FROM chunks c"
        " LEFT JOIN chunk_sentences s USING (tenant_id, chunk_id) WHERE c.document_id = %s"
        " GROUP BY c.tenant_id, c.chunk_id ORDER BY c.ordinal",
        (created["documentId"],),
    ).fetchall()
    assert [c["stored"] for c in chunks] == [len(sentences(c["body"], c["heading_path"])) for c in chunks]
    assert sum(c["stored"] for c in chunks) == 3

    counting = Counting()
    db = app_database(database_urls["app"])
    try:
        caller = Caller(chunks[0]["tenant_id"], Role.VIEWER, "user", "test")
        question = "When must the buyer pay an invoice?"
        answered = answer_question(
            question, caller=caller, db=db, settings=load_settings({}), embedder=counting, provider=ExtractiveAnswerer()
        )
        assert "within thirty days of receipt" in answered.text and answered.grounded
        # The search embedded the question; the answerer reused that vector and every sentence's stored one.
        assert counting.texts == [question]
        # Another workspace reads none of them (row-level security).
        stranger = Caller(uuid.uuid4(), Role.VIEWER, "user", "test")
        assert len(sentence_vectors(db, caller, answered.sources)) == 3
        assert sentence_vectors(db, stranger, answered.sources) == {}
    finally:
        db.close()


# --- the benchmark, end to end with a model provider ---------------------------------------------

CORPUS = {
    "d1": (
        "Aspirin and bleeding",
        "Daily aspirin raised the risk of major bleeding by 40 percent. The trial ran five years.",
    ),
    "d2": ("Coffee and sleep", "Evening coffee delayed sleep onset by twenty minutes. Morning coffee had no effect."),
    "d3": ("Statins", "Statins lowered LDL cholesterol in all age groups. Muscle pain was rare."),
    "d4": ("Vitamin D", "Vitamin D supplements did not prevent fractures in older adults."),
    "d5": ("Exercise", "Walking thirty minutes a day improved mood scores in adults with depression."),
}
CLAIMS = {  # query id -> (claim, gold doc, gold sentence, what the scripted model does)
    "1": (
        "Aspirin increases bleeding risk.",
        "d1",
        "Daily aspirin raised the risk of major bleeding by 40 percent.",
        "cite gold",
    ),
    "2": ("Evening coffee delays sleep.", "d2", "Evening coffee delayed sleep onset by twenty minutes.", "cite gold"),
    "3": ("Statins lower cholesterol.", "d3", "Statins lowered LDL cholesterol in all age groups.", "cite other"),
    "4": (
        "Vitamin D prevents fractures.",
        "d4",
        "Vitamin D supplements did not prevent fractures in older adults.",
        "refuse",
    ),
}
OFFTOPIC = {"What is the capital of France?": "refuse", "Who wrote Hamlet?": "cite other"}


def scripted_model(recorded: Recorded) -> Reply:
    """Answers by rule from the prompt it was sent: cite the source holding the gold sentence, cite
    a wrong one, or refuse."""
    turn = recorded.body["messages"][-1]["content"]
    question = turn.rsplit("Question: ", 1)[1].strip()
    passages = dict(re.findall(r'<source n="(\d+)"[^>]*>\n(.*?)\n</source>', turn, re.S))
    action = OFFTOPIC.get(question) or next(c[3] for c in CLAIMS.values() if c[0] == question)
    gold = next((c[2] for c in CLAIMS.values() if c[0] == question), "")
    holding = [n for n, text in passages.items() if gold and gold in text]
    other = [n for n, text in passages.items() if not (gold and gold in text)]
    if action == "refuse":
        return Reply(text=[NO_ANSWER])
    if action == "cite gold":
        return Reply(text=["It does, per the trial ", f"[{holding[0]}]."])
    return Reply(text=["Yes ", f"[{other[-1]}]."])


def test_answer_benchmark_scores_a_model_provider_end_to_end(database_urls: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "tiny-scifact"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in CORPUS.items())
    )
    (data / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": c[0]}) + "\n" for q, c in CLAIMS.items()))
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{c[1]}\t1\n" for q, c in CLAIMS.items())
    )
    evidence = tmp_path / "evidence.jsonl"
    evidence.write_text(
        "".join(
            json.dumps({"query_id": q, "doc_id": c[1], "label": "SUPPORT", "sentences": [c[2]]}) + "\n"
            for q, c in CLAIMS.items()
        )
    )
    offtopic = tmp_path / "offtopic.jsonl"
    offtopic.write_text("".join(json.dumps({"text": q}) + "\n" for q in OFFTOPIC))

    with LlmStub() as llm:
        llm.responder = scripted_model
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "BENCH_ADMIN_URL": database_urls["admin"],
            "BENCH_APP_URL": database_urls["app"],
            # The test database signs each transaction's tenant (tests/conftest.py), and under PgBouncer the
            # benchmark's pool must not prepare statements: the same settings as the app's.
            "DATABASE_CONTEXT_KEY": TEST_CONTEXT_KEY,
            **{k: os.environ[k] for k in ("DATABASE_SERVER_PREPARE",) if k in os.environ},
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": llm.url + "/v1",
        }
        command = ["-m", "benchmarks.answers", "--dataset", str(data), "--evidence", str(evidence), "--json"]
        run = subprocess.run(
            [sys.executable, *command, "--offtopic", str(offtopic), "--provider", "openai"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        requests = list(llm.requests)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["provider"] == "openai" and result["claims"] == 4 and result["offtopic"] == 2
    assert result["evidence@answer"] == 0.5  # claims 1 and 2 cite the passage with the gold sentence
    assert result["cited_gold_doc"] == 0.5  # claim 3 cites another document, claim 4 refuses
    assert result["refused_answerable"] == 0.25
    assert result["offtopic_refused"] == 0.5  # "Hamlet" got a (wrong) citation
    assert result["median_ms"] > 0
    assert len(requests) == 6  # one model call per question, the real chat prompt each time
    system = requests[0].body["messages"][0]["content"]
    assert "the source holding the evidence" in system and NO_ANSWER in system
