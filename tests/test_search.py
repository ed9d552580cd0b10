"""Search over real HTTP and real PostgreSQL: scoping, filters, snippets, determinism, bad input.

Ranking quality is measured by benchmarks/retrieval.py with the real model; these tests check
behaviour, so the fast hashing embedder is enough here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.db import Conn, one
from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.test_ingestion import upload

CONTRACT = b"""# Supply Agreement

## Article 4 Payment

Section 4.1 The Buyer shall pay each invoice within thirty days of receipt.

Section 4.2 Late payment accrues interest at two percent per month.

## Article 9 Termination

Either party may terminate this agreement for material breach after a cure period of sixty days.
"""
HANDBOOK = b"""# Employee Handbook

## Holidays

Employees receive twenty-five days of paid holiday each year.

## Expenses

Travel expenses are reimbursed against receipts <script>alert(1)</script> within one month if costs < 5 & "fair".
"""


@pytest.fixture(scope="module")
def workspace(client_module: Client, pipeline: Pipeline) -> dict[str, Any]:
    user = client_module.as_user(f"searcher-{uuid.uuid4().hex[:8]}")
    legal = user.post("/api/collections", {"name": "legal"}).json()["id"]
    hr = user.post("/api/collections", {"name": "hr"}).json()["id"]
    contract = upload(user, legal, "supply.md", CONTRACT)
    handbook = upload(user, hr, "handbook.md", HANDBOOK)
    pipeline.settle()
    return {
        "user": user,
        "legal": legal,
        "hr": hr,
        "contract": contract["documentId"],
        "handbook": handbook["documentId"],
    }


@pytest.fixture(scope="module")
def client_module(host: str) -> Client:
    return Client(host)


def _search(user: Client, **body: Any) -> Any:
    response = user.post("/api/search", body)
    assert response.status == 200, response.body
    return response.json()


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "vector"])
def test_each_mode_finds_the_matching_passage(workspace: dict[str, Any], mode: str) -> None:
    found = _search(workspace["user"], query="How many days do we have to pay an invoice?", mode=mode, top=5)
    assert found["results"], found
    best = found["results"][0]
    assert best["documentId"] == workspace["contract"]
    assert best["headingPath"][-1].startswith("Article 4") or "Section 4.1" in " ".join(best["headingPath"])
    assert found["tookMs"] >= 0
    if mode == "hybrid":
        assert best["ranks"]["lexical"] == 1


def test_natural_language_questions_are_not_anded_together(workspace: dict[str, Any]) -> None:
    # "holiday" and "employees" match the handbook; "astronaut" matches nothing. An AND query would
    # return nothing at all.
    found = _search(workspace["user"], query="how many holiday days do employees or astronauts get", mode="lexical")
    assert found["results"] and found["results"][0]["documentId"] == workspace["handbook"]


def test_snippets_highlight_terms_and_escape_html(workspace: dict[str, Any]) -> None:
    found = _search(workspace["user"], query="travel expenses receipts", mode="lexical")
    snippet = found["results"][0]["snippet"]
    assert "<mark>" in snippet and "</mark>" in snippet
    # PostgreSQL's parser drops the tag; anything left is escaped, never live HTML.
    assert "<script" not in snippet and "alert(1)" in snippet
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0


def test_snippet_fallback_is_escaped_too() -> None:
    from shared.search import snippet_html

    assert snippet_html(None, 'a <b>bold</b> & "x"') == "a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;x&quot;"
    assert snippet_html("x \ue000<i>\ue001 y", "") == "x <mark>&lt;i&gt;</mark> y"


def test_collection_and_document_filters_scope_every_leg(workspace: dict[str, Any]) -> None:
    for mode in ("hybrid", "lexical", "vector"):
        only_hr = _search(workspace["user"], query="pay invoice days", mode=mode, collectionIds=[workspace["hr"]])
        assert {r["documentId"] for r in only_hr["results"]} <= {workspace["handbook"]}
        only_doc = _search(workspace["user"], query="days", mode=mode, filters={"documentIds": [workspace["contract"]]})
        assert only_doc["results"] and {r["documentId"] for r in only_doc["results"]} == {workspace["contract"]}


def test_doc_type_filter(workspace: dict[str, Any]) -> None:
    assert _search(workspace["user"], query="days", filters={"docType": ["pdf"]})["results"] == []
    assert _search(workspace["user"], query="days", filters={"docType": ["markdown"]})["results"]


def test_results_are_deterministic(workspace: dict[str, Any]) -> None:
    first = _search(workspace["user"], query="agreement termination breach", top=10)
    for _ in range(3):
        again = _search(workspace["user"], query="agreement termination breach", top=10)
        assert [r["chunkId"] for r in again["results"]] == [r["chunkId"] for r in first["results"]]


def test_search_never_returns_another_tenants_chunks(workspace: dict[str, Any], client_module: Client) -> None:
    stranger = client_module.as_user(f"stranger-{uuid.uuid4().hex[:8]}")
    for mode in ("hybrid", "lexical", "vector"):
        assert _search(stranger, query="invoice payment thirty days", mode=mode)["results"] == []
        # Naming the other tenant's collection or document changes nothing.
        assert (
            _search(
                stranger,
                query="invoice",
                mode=mode,
                collectionIds=[workspace["legal"]],
                filters={"documentIds": [workspace["contract"]]},
            )["results"]
            == []
        )


def test_deleted_documents_disappear_from_results(client_module: Client, pipeline: Pipeline) -> None:
    user = client_module.as_user(f"deleter-{uuid.uuid4().hex[:8]}")
    collection = user.post("/api/collections", {"name": "tmp"}).json()["id"]
    doc = upload(user, collection, "tmp.md", b"# Zebra\n\nThe zebra clause covers striped animals.\n")
    pipeline.settle()
    assert _search(user, query="zebra striped", mode="lexical")["results"]
    user.delete(f"/api/documents/{doc['documentId']}")
    assert _search(user, query="zebra striped", mode="lexical")["results"] == []


def test_bm25_statistics_follow_inserts_and_deletes(
    workspace: dict[str, Any], admin_conn: Conn, client_module: Client, pipeline: Pipeline
) -> None:
    tenant = workspace["user"].get("/api/me").json()["tenant"]["id"]

    def stats() -> tuple[int, int, dict[str, int]]:
        row = one(
            admin_conn.execute(
                "SELECT chunks, total_len FROM tenant_text_stats WHERE tenant_id = %s", (tenant,)
            ).fetchone()
        )
        actual = one(
            admin_conn.execute(
                "SELECT count(*) AS n, sum(lex_len) AS len FROM chunks WHERE tenant_id = %s", (tenant,)
            ).fetchone()
        )
        assert (row["chunks"], row["total_len"]) == (actual["n"], actual["len"])
        df = {
            r["lexeme"]: r["df"]
            for r in admin_conn.execute("SELECT lexeme, df FROM lexeme_stats WHERE tenant_id = %s", (tenant,))
        }
        expected = {
            r["lexeme"]: r["n"]
            for r in admin_conn.execute(
                "SELECT u.lexeme, count(*) AS n FROM chunks c, unnest(c.tsv) u WHERE c.tenant_id = %s GROUP BY 1",
                (tenant,),
            )
        }
        assert df == expected
        return row["chunks"], row["total_len"], df

    before = stats()
    doc = upload(workspace["user"], workspace["legal"], "extra.md", b"# Extra\n\nAn extra clause on invoices.\n")
    pipeline.settle()
    assert stats()[0] > before[0]
    workspace["user"].delete(f"/api/documents/{doc['documentId']}")
    assert stats() == before


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"query": ""}, "must not be empty"),
        ({"query": "   "}, "must not be empty"),
        ({"query": "x" * 5000}, "at most"),
        ({"query": "x", "mode": "fuzzy"}, "mode"),
        ({"query": "x", "top": 0}, "top"),
        ({"query": "x", "top": 51}, "top"),
        ({"query": "x", "collectionIds": ["nope"]}, "malformed"),
        ({"query": "x", "filters": {"colour": ["red"]}}, "Unknown field"),
        ({"query": 5}, "must be a string"),
    ],
)
def test_bad_search_requests_are_400(workspace: dict[str, Any], body: dict[str, Any], detail: str) -> None:
    response = workspace["user"].post("/api/search", body)
    assert response.status == 400
    assert detail in response.json()["detail"]


def test_search_in_an_empty_workspace_returns_nothing(client_module: Client) -> None:
    newcomer = client_module.as_user(f"new-{uuid.uuid4().hex[:8]}")
    assert _search(newcomer, query="anything at all")["results"] == []


def test_search_past_the_monthly_quota_is_402_naming_the_limit(client_module: Client, settings_override: Any) -> None:
    import json

    plans = {
        "free": {
            "limits": {
                "documents": 100,
                "storageBytes": 10**9,
                "pagesPerMonth": 1000,
                "searchesPerMonth": 2,
                "chatTokensPerMonth": 1000,
            }
        }
    }
    settings_override(BILLING_PLANS=json.dumps(plans))
    user = client_module.as_user(f"quota-{uuid.uuid4().hex[:8]}")
    assert user.post("/api/search", {"query": "one"}).status == 200
    assert user.post("/api/search", {"query": ""}).status == 400  # bad requests are not counted
    assert user.post("/api/search", {"query": "two"}).status == 200
    refused = user.post("/api/search", {"query": "three"})
    assert refused.status == 402
    problem = refused.json()
    assert problem["type"].endswith("/quota-exceeded") and problem["limit"] == "searchesPerMonth"


def test_legal_abbreviations_expand_the_lexical_query(client_module: Client, pipeline: Pipeline) -> None:
    from shared.synonyms import expand

    assert expand("Is the NDA mutual?") == "Is the NDA mutual? non-disclosure agreement confidentiality agreement"
    assert (
        expand("the non-disclosure agreement term") == "the non-disclosure agreement term nda confidentiality agreement"
    )
    assert expand("zip codes") == "zip codes"  # "ip" inside a word is not the abbreviation
    user = client_module.as_user(f"syn-{uuid.uuid4().hex[:8]}")
    collection = user.post("/api/collections", {"name": "nda"}).json()["id"]
    upload(
        user,
        collection,
        "nda.md",
        b"# Mutual Non-Disclosure Agreement\n\nEach party keeps the other's "
        b"confidential information secret for five years.\n",
    )
    pipeline.settle()
    found = _search(user, query="how long does the NDA last", mode="lexical")
    assert found["results"] and "<mark>" in found["results"][0]["snippet"]


COMMON_WORDS = b"""# Field notes

## One

The harbour pilot checked the tide tables.

## Two

The harbour pilot waited for the tide and the wind.

## Three

A harbour crane lifted crates all night.

## Four

The harbour was quiet.

## Five

Tide tables for the harbour are printed weekly.
"""


def test_when_every_term_is_common_chunks_with_more_rare_terms_are_candidates_first(
    client_module: Client, pipeline: Pipeline
) -> None:
    """Past the candidate budget (tiny here, as if the workspace held millions of chunks), candidates
    holding the three rarest terms come first, then two, then either; at most ``candidate_cap``."""
    from shared.bootstrap import services
    from shared.search import SearchRequest, Tuning, search
    from shared.tenancy import Caller, Role

    user = client_module.as_user(f"narrow-{uuid.uuid4().hex[:8]}")
    collection = user.post("/api/collections", {"name": "notes"}).json()["id"]
    upload(user, collection, "notes.md", COMMON_WORDS)
    pipeline.settle()
    caller = Caller(uuid.UUID(user.get("/api/me").json()["tenant"]["id"]), Role.VIEWER, "user", "test")

    class NoEmbeddings:  # lexical search never embeds the query
        model_id, dimensions = "none", 0

        def embed(self, texts: Any) -> list[list[float]]:
            raise AssertionError("a lexical search embedded its query")

    def headings(tuning: Tuning) -> list[str]:
        found = search(
            services().database,
            caller,
            SearchRequest("harbour pilot tide wind", mode="lexical", tuning=tuning),
            embedder=NoEmbeddings(),
            highlight=False,
        )["results"]
        return [r["headingPath"][-1] for r in found]

    everything = headings(Tuning())  # within the budget: every chunk with any of the terms
    assert set(everything) == {"One", "Two", "Three", "Four", "Five"}
    # wind (1) < pilot (2) < tide (3) < harbour (5): "Two" alone holds the three rarest.
    assert headings(Tuning(candidate_budget=0, candidate_cap=1)) == ["Two"]
    # Then the chunks with the two rarest (wind & pilot: only "Two" again), then either of them ("One").
    assert headings(Tuning(candidate_budget=0, candidate_cap=2)) == ["Two", "One"]
