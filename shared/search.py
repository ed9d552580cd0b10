"""Hybrid search: BM25 over the stored tsvector and HNSW over embeddings, fused by RRF in one SQL statement.

The lexical leg does not AND the words of a question together (``plainto_tsquery`` does, and
loses most of SciFact): query lexemes are OR-ed, and candidates are ranked by BM25 computed in
SQL. Term frequency comes from ``ts_rank`` of the single lexeme with all weights 1, which for
one term is H2(tf)/zeta(2) with H2 the partial sum of 1/j^2, a strictly increasing function of
tf that ``folio_tf`` inverts; document frequencies and lengths come from the statistics kept by
migration 0003. A lexeme found in the chunk's heading (weight A) counts extra (``heading_boost``).

To stay fast on large workspaces the leg prunes like MaxScore: candidates come from the rarest
query terms whose postings fit ``candidate_budget`` (always at least the rarest term), are
scored on those terms, and the best ``rescore_depth`` are rescored with every term. A chunk that
holds only common terms can rarely outrank one holding a rare term; on SciFact this pruning
changes nDCG@10 by less than 0.002 while cutting the work at 100k chunks about five-fold.

The vector leg is an HNSW scan with pgvector's iterative scan, so filters that keep few rows
(one collection, a few documents) still fill the result; for small workspaces an exact scan is
cheaper and exact, and is used instead.

Both legs take their candidates from SECURITY DEFINER functions (migrations 0009, 0012) that scope
rows to the signed tenant in their own statement (row-level security on the table itself would stop
PostgreSQL from using the GIN index: see migration 0003), so nothing in the caller's query runs over
another workspace's rows; ranks are fused with weighted Reciprocal Rank Fusion; ties break on
chunk id, so results are deterministic.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg import Connection

from shared import access, synonyms
from shared.config import Settings
from shared.db import Database
from shared.errors import Invalid
from shared.tenancy import Caller

if TYPE_CHECKING:
    from shared.ports import Embedder

MODES = ("hybrid", "lexical", "vector")
MAX_QUERY_CHARS = 1000
MAX_TOP = 50  # what a caller of the API may ask for
# What evaluation may ask for: recall@100 is measured through search() itself (benchmarks.retrieval).
EVALUATION_MAX_TOP = 100
# Below this many chunks a workspace reads its own rows for lexical candidates: that beats GIN
# postings that span every workspace.
SMALL_WORKSPACE_CHUNKS = 5_000
# Below this many chunks the vector leg scans exactly: about as fast as HNSW there, and exact (at
# 1M chunks, a 10k-chunk workspace got recall@10 0.76 from the filtered HNSW scan, 1.0 exact).
EXACT_SCAN_MAX_CHUNKS = 20_000
# HNSW candidate list: wider for large workspaces. At 1M chunks (m 24, ef_construction 128: migration
# 0006) recall@10 was 0.75 at ef_search 100, 0.93 at 400 and 0.96 at 800, p95 27 ms.
LARGE_WORKSPACE_CHUNKS = 250_000
LARGE_EF_SEARCH = 800
MAX_EF_SEARCH = 1000  # pgvector's limit
_MARK_START, _MARK_END = "\ue000", "\ue001"  # private-use code points: never HTML, never in text


@dataclass(frozen=True)
class Tuning:
    """Ranking knobs, measured on BEIR SciFact (see README); defaults are the best found."""

    k1: float = 0.9
    b: float = 0.4
    heading_boost: float = 1.0  # a query term in the heading counts as this many extra occurrences
    rrf_k: int = 60
    lexical_weight: float = 1.0
    vector_weight: float = 1.0
    depth: int = 100  # candidates taken from each leg before fusion
    # Candidates come from the rarest query terms whose postings add up to this many (at least
    # one term); the others still score. Bounds the work on large workspaces.
    candidate_budget: int = 1000
    candidate_cap: int = 2000  # at most this many candidates when even the rarest term exceeds the budget
    rescore_depth: int = 400  # stage-1 shortlist rescored with every term
    ef_search: int = 100


@dataclass(frozen=True)
class SearchRequest:
    query: str
    mode: str = "hybrid"
    top: int = 10
    collection_ids: tuple[UUID, ...] = ()
    document_ids: tuple[UUID, ...] = ()
    doc_types: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    tuning: Tuning = field(default_factory=Tuning)
    expand_synonyms: bool = True  # legal abbreviations and synonyms, lexical leg only

    def validate(self, max_top: int = MAX_TOP) -> SearchRequest:
        query = " ".join(self.query.split())
        if not query:
            raise Invalid("Field 'query' must not be empty.", fields=["query"])
        if len(query) > MAX_QUERY_CHARS:
            raise Invalid(f"Field 'query' must be at most {MAX_QUERY_CHARS} characters.", fields=["query"])
        if self.mode not in MODES:
            raise Invalid("Field 'mode' must be one of: hybrid, lexical, vector.", fields=["mode"])
        if not 1 <= self.top <= max_top:
            raise Invalid(f"Field 'top' must be between 1 and {max_top}.", fields=["top"])
        return SearchRequest(
            query,
            self.mode,
            self.top,
            self.collection_ids,
            self.document_ids,
            self.doc_types,
            self.jurisdictions,
            self.tuning,
            self.expand_synonyms,
        )


# --- SQL ------------------------------------------------------------------------------------

# Candidates of each leg come from SECURITY DEFINER functions (migrations 0009, 0012), which apply
# the tenant (checked against the signed context), the filters and the index conditions in one
# statement of their own: a function in the caller's query can never see another workspace's rows.
# Every placeholder is bound; {scan} and {exact} are the literals true/false chosen by build_sql.


def _bm25(n: str, idf: str, length: str) -> str:
    """BM25 of one term as SQL: ``n`` occurrences, ``idf``, chunk ``length``; avgdl from ``a``."""
    return f"({idf} * {n} * (%(k1)s + 1) / ({n} + %(k1)s * (1 - %(b)s + %(b)s * {length} / a.avgdl)))"


_TF = "(folio_tf(ts_rank('{1,1,1,1}', c.tsv, x.tq)) + CASE WHEN c.tsv @@ x.tq_head THEN %(heading_boost)s ELSE 0 END)"

_LEXICAL = f"""
terms AS MATERIALIZED (
  SELECT lexeme, tq, tq_head, idf, df, sum(df) OVER (ORDER BY df, lexeme) - df AS df_before,
         CASE WHEN df > 0 THEN row_number() OVER (PARTITION BY df > 0 ORDER BY df, lexeme) END AS rarity
  FROM (
    SELECT q.lexeme, quote_literal(q.lexeme)::tsquery AS tq, (quote_literal(q.lexeme) || ':A')::tsquery AS tq_head,
           ln(1 + (st.chunks - coalesce(ls.df, 0) + 0.5) / (coalesce(ls.df, 0) + 0.5)) AS idf,
           coalesce(ls.df, 0) AS df
    FROM unnest(tsvector_to_array(to_tsvector('english', %(query)s))) AS q(lexeme)
    JOIN tenant_text_stats st ON st.tenant_id = %(tenant)s
    LEFT JOIN lexeme_stats ls ON ls.tenant_id = %(tenant)s AND ls.lexeme = q.lexeme
  ) t
),
avg_len AS MATERIALIZED (
  SELECT greatest(total_len::float8 / greatest(chunks, 1), 1) AS avgdl FROM tenant_text_stats
  WHERE tenant_id = %(tenant)s
),
-- Narrow: even the rarest term that occurs has more postings than the budget (common words only,
-- in a large workspace). Then the three rarest terms make the candidates, and chunks holding all
-- three come first, then two, then either of the two rarest, up to a cap: the chunks with several
-- query terms are where BM25's best scores are, and the work stays bounded.
narrow AS MATERIALIZED (
  SELECT coalesce(min(df) FILTER (WHERE df > 0) > %(candidate_budget)s, false) AS active,
         string_agg(quote_literal(lexeme), ' & ') FILTER (WHERE rarity <= 3)::tsquery AS all3,
         string_agg(quote_literal(lexeme), ' & ') FILTER (WHERE rarity <= 2)::tsquery AS all2,
         string_agg(quote_literal(lexeme), ' | ') FILTER (WHERE rarity <= 2)::tsquery AS any2
  FROM terms
),
-- Otherwise candidates come from the rarest terms, as many as fit a budget of postings (at least one).
matcher AS MATERIALIZED (
  SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS tq,
         array_agg(tq) AS tqs, array_agg(tq_head) AS heads, array_agg(idf) AS idfs
  FROM terms
  WHERE CASE WHEN (SELECT active FROM narrow) THEN rarity <= 3
             ELSE df_before = 0 OR df_before + df <= %(candidate_budget)s END
),
everything AS MATERIALIZED (
  SELECT array_agg(tq) AS tqs, array_agg(tq_head) AS heads, array_agg(idf) AS idfs FROM terms
),
-- Where candidates come from, in order: the matcher's chunks, or (narrow) those holding all three
-- rarest terms, then two, then either. One call takes them all, up to the cap, and reads no row past
-- it (a function's result is materialised: a LIMIT out here would not stop it).
tiers AS MATERIALIZED (
  SELECT CASE WHEN n.active THEN ARRAY[n.all3, n.all2, n.any2] ELSE ARRAY[m.tq] END AS tqs
  FROM narrow n, matcher m
),
-- Stage 1: score candidates on the candidate-generating terms only; keep the best few hundred.
shortlist AS MATERIALIZED (
  SELECT c.chunk_id, c.lex_len, c.tsv
  FROM (
    -- "|| ''" detoasts each candidate's tsvector once, not once per term; OFFSET 0 keeps it so.
    SELECT c.chunk_id, c.lex_len, c.tsv || ''::tsvector AS tsv
    FROM folio_lexical_tiers(%(tenant)s, (SELECT tqs FROM tiers), {{scan}}, %(collections)s::uuid[],
      %(documents)s::uuid[], %(doc_types)s::text[], %(jurisdictions)s::text[], %(candidate_cap)s) c
    OFFSET 0
  ) c
  CROSS JOIN avg_len a
  CROSS JOIN LATERAL (
    SELECT sum({_bm25(_TF, "x.idf", "c.lex_len")}) AS score
    FROM matcher m, unnest(m.tqs, m.heads, m.idfs) AS x(tq, tq_head, idf)) s
  ORDER BY s.score DESC, c.chunk_id
  LIMIT %(rescore_depth)s
),
-- Stage 2: full BM25 over every query term for the shortlist.
lexical AS MATERIALIZED (
  SELECT chunk_id, score, row_number() OVER (ORDER BY score DESC, chunk_id) AS rank
  FROM (
    SELECT c.chunk_id, s.score
    FROM shortlist c
    CROSS JOIN avg_len a
    CROSS JOIN LATERAL (
      SELECT sum({_bm25(_TF, "x.idf", "c.lex_len")}) AS score
      FROM everything e, unnest(e.tqs, e.heads, e.idfs) AS x(tq, tq_head, idf)) s
    ORDER BY s.score DESC, c.chunk_id
    LIMIT %(depth)s
  ) scored
)"""

_VECTOR = """
vector AS MATERIALIZED (
  SELECT chunk_id, distance, row_number() OVER (ORDER BY distance, chunk_id) AS rank
  FROM (
    SELECT c.chunk_id, c.distance
    FROM folio_vector_candidates(%(tenant)s, %(embedding)s::vector, {exact}, %(collections)s::uuid[],
      %(documents)s::uuid[], %(doc_types)s::text[], %(jurisdictions)s::text[], %(depth)s) c
  ) nearest
)"""

_FUSE = {
    "hybrid": """
fused AS (
  SELECT coalesce(l.chunk_id, v.chunk_id) AS chunk_id, l.rank AS lexical_rank, v.rank AS vector_rank,
         coalesce(%(lexical_weight)s / (%(rrf_k)s + l.rank), 0)
           + coalesce(%(vector_weight)s / (%(rrf_k)s + v.rank), 0) AS score
  FROM lexical l FULL OUTER JOIN vector v ON v.chunk_id = l.chunk_id
  ORDER BY score DESC, chunk_id
  LIMIT %(top)s
)""",
    "lexical": """
fused AS (
  SELECT chunk_id, rank AS lexical_rank, NULL::bigint AS vector_rank, score FROM lexical
  ORDER BY rank LIMIT %(top)s
)""",
    "vector": """
fused AS (
  SELECT chunk_id, NULL::bigint AS lexical_rank, rank AS vector_rank, 1 - distance AS score FROM vector
  ORDER BY rank LIMIT %(top)s
)""",
}

_RESULTS = """
SELECT f.chunk_id, f.score, f.lexical_rank, f.vector_rank, c.document_id, c.collection_id, c.heading_path,
       c.page_start, c.page_end, c.char_start, c.char_end, d.filename AS title,
       CASE WHEN %(highlight)s THEN ts_headline('english', c.body,
            (SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery
             FROM unnest(tsvector_to_array(to_tsvector('english', %(query)s))) AS q(lexeme)),
            'StartSel=' || chr(57344) || ', StopSel=' || chr(57345)
              || ', MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=" … "')
       END AS headline,
       left(c.body, 300) AS opening
FROM fused f
JOIN chunks c ON c.tenant_id = %(tenant)s AND c.chunk_id = f.chunk_id
JOIN documents d ON d.tenant_id = c.tenant_id AND d.document_id = c.document_id AND d.status <> 'deleted'
ORDER BY f.score DESC, f.chunk_id"""


def build_sql(mode: str, *, exact_vector: bool, small_workspace: bool = False) -> str:
    """The statement for ``mode``. In a small workspace, candidates are found by scanning its own
    rows (tenant index) instead of the GIN index, whose postings span every workspace."""
    ctes = []
    if mode in ("hybrid", "lexical"):
        # scan: the function matches an expression over tsv, which cannot use the GIN index, so
        # the planner takes the tenant index.
        ctes.append(_LEXICAL.replace("{scan}", "true" if small_workspace else "false"))
    if mode in ("hybrid", "vector"):
        # exact: the function orders by distance + 0, hidden from the HNSW index (an exact scan).
        ctes.append(_VECTOR.replace("{exact}", "true" if exact_vector else "false"))
    ctes.append(_FUSE[mode])
    return "WITH " + ",".join(ctes) + _RESULTS


# --- the service ----------------------------------------------------------------------------


def search(
    db: Database,
    caller: Caller,
    request: SearchRequest,
    *,
    embedder: Embedder,
    highlight: bool = True,
    charge: Callable[[Connection[Any]], object] | None = None,
    max_top: int = MAX_TOP,
) -> dict[str, Any]:
    """Results for ``request`` within the caller's workspace only.

    ``charge`` runs in the search's own transaction before the query (the searches quota: see
    :func:`search_workspace`), so a search that fails is not counted and one over the limit never runs.
    ``max_top`` is the API's limit; only evaluation raises it (to EVALUATION_MAX_TOP).
    """
    request = request.validate(max_top)
    started = time.perf_counter()
    tuning = request.tuning
    params = build_params(caller, request, highlight=highlight)
    if request.mode in ("hybrid", "vector"):
        vector = embedder.embed([request.query])[0]
        params["embedding"] = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
    # enable_seqscan off: the GIN and HNSW indexes are the point; on small workspaces the planner
    # otherwise prefers a sequential scan that detoasts every tsvector. force_custom_plan: psycopg
    # prepares a statement after a few runs, and PostgreSQL's generic plan for it, blind to the
    # query's terms, vector and workspace size, was measured 15x slower at p95.
    settings = {
        "hnsw.ef_search": str(tuning.ef_search),
        "hnsw.iterative_scan": "relaxed_order",
        "enable_seqscan": "off",
        "plan_cache_mode": "force_custom_plan",
    }
    with db.transaction(caller.tenant_id, caller.user_id, local_settings=settings) as conn:
        access.scope(conn, caller)  # an API key reads open collections only (migration 0013)
        if charge is not None:
            charge(conn)
        size = conn.execute(
            "SELECT chunks, folio_hidden_chunks() AS hidden FROM tenant_text_stats WHERE tenant_id = %s",
            (caller.tenant_id,),
        ).fetchone()
        if size is None:  # nothing indexed yet in this workspace
            rows = []
        else:
            # A document filter keeps few rows: HNSW would have to walk far to find them.
            chunks = size["chunks"]
            exact = chunks <= EXACT_SCAN_MAX_CHUNKS or bool(request.document_ids)
            sql = build_sql(request.mode, exact_vector=exact, small_workspace=chunks <= SMALL_WORKSPACE_CHUNKS)
            ef_search = LARGE_EF_SEARCH if chunks > LARGE_WORKSPACE_CHUNKS else tuning.ef_search
            ef_search = max(ef_search, tuning.ef_search)
            # Collections the caller may not read (migration 0013) are filtered inside the HNSW scan: ask
            # for that many more candidates, or pgvector's iterative scan walks a second round for them.
            if 0 < size["hidden"] < chunks:
                ef_search = min(math.ceil(ef_search * chunks / (chunks - size["hidden"]) * 1.05), MAX_EF_SEARCH)
            if ef_search != tuning.ef_search:
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef_search),))
            rows = conn.execute(sql, params).fetchall()
    return {"results": [_shape(row) for row in rows], "tookMs": round((time.perf_counter() - started) * 1000, 1)}


def search_workspace(
    db: Database, caller: Caller, request: SearchRequest, *, embedder: Embedder, settings: Settings
) -> dict[str, Any]:
    """What ``POST /api/search`` runs: a valid request is counted against the plan's monthly searches
    (402 when they are used up), in the same transaction as the search; an invalid one is a 400 and
    is not counted (:func:`search` validates before its transaction, so before ``charge``)."""
    from shared import billing

    def charge(conn: Connection[Any]) -> object:
        return billing.consume(conn, caller, billing.SEARCHES, 1, settings=settings)

    found = search(db, caller, request, embedder=embedder, charge=charge)
    from shared import insights  # owners' insights: one row after the search; logged, never raised

    insights.record_search(db, caller, request.query, found["results"])
    return found


def build_params(caller: Caller, request: SearchRequest, *, highlight: bool = True) -> dict[str, Any]:
    """The statement's bound parameters (everything but the query embedding)."""
    tuning = request.tuning
    return {
        "tenant": caller.tenant_id,
        "top": request.top,
        "depth": max(tuning.depth, request.top),
        "query": synonyms.expand(request.query) if request.expand_synonyms else request.query,
        "collections": list(request.collection_ids),
        "documents": list(request.document_ids),
        "doc_types": list(request.doc_types),
        "jurisdictions": list(request.jurisdictions),
        "k1": tuning.k1,
        "b": tuning.b,
        "heading_boost": tuning.heading_boost,
        "candidate_budget": tuning.candidate_budget,
        "candidate_cap": tuning.candidate_cap,
        "rescore_depth": max(tuning.rescore_depth, tuning.depth),
        "rrf_k": tuning.rrf_k,
        "lexical_weight": tuning.lexical_weight,
        "vector_weight": tuning.vector_weight,
        "highlight": highlight,
    }


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "chunkId": str(row["chunk_id"]),
        "documentId": str(row["document_id"]),
        "collectionId": str(row["collection_id"]),
        "title": row["title"],
        "headingPath": row["heading_path"],
        "pages": None if row["page_start"] is None else {"start": row["page_start"], "end": row["page_end"]},
        "offsets": {"start": row["char_start"], "end": row["char_end"]},
        "snippet": snippet_html(row["headline"], row["opening"]),
        "score": round(float(row["score"]), 6),
        "ranks": {"lexical": row["lexical_rank"], "vector": row["vector_rank"]},
    }


def snippet_html(headline: str | None, opening: str) -> str:
    """HTML-escaped snippet with matched terms in <mark>; the markers are inserted after escaping."""
    text = headline if headline and _MARK_START in headline else opening
    escaped = html.escape(text, quote=True)
    return escaped.replace(_MARK_START, "<mark>").replace(_MARK_END, "</mark>")
