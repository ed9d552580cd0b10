"""Search latency with a restricted collection vs without, on the 100k-chunk search benchmark's data.

    python -m benchmarks.restricted [--queries 200] [--build | --reuse] [--interleave]

Copies benchmarks.search's database (folio_bench_search_100000, built by `python -m benchmarks.search`)
into a scratch one (CREATE DATABASE ... TEMPLATE, nothing of the original is touched), applies the
working tree's migrations to the copy with a context key, moves 10% of the large workspace's
documents into a second collection, and adds a member. Then, query by query in the same run, the
member searches with that collection open (baseline) and restricted (the member may not read it),
every transaction signed. Prints one JSON object: p50/p95 per mode and case, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import time
import uuid
from typing import Any

from benchmarks import beir
from benchmarks.common import ROOT, bench_database
from benchmarks.search import SCIFACT, FixedQueryEmbedder

SOURCE = "folio_bench_search_100000"
COPY = "folio_bench_restricted_100000"
_LARGE = "SELECT s.tenant_id, s.chunks FROM tenant_text_stats s JOIN tenants t USING (tenant_id) WHERE t.name = 'large'"


def _embedder() -> Any:
    from benchmarks.embedding_cache import CachedEmbedder
    from shared.config import load_settings
    from shared.ingest.embedders import embedder_from_settings

    return CachedEmbedder(embedder_from_settings(load_settings({})), ROOT / ".local" / "cache" / "embeddings.sqlite")


def _row(cursor: Any) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None, "the benchmark's data is not there: build it first (--build)"
    return tuple(row)


def _summary(times: dict[str, list[float]]) -> dict[str, Any]:
    """p50/p95 per case and the restricted/open ratios."""
    stats: dict[str, Any] = {}
    for case, values in times.items():
        values.sort()
        stats[case] = {
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(values[int(len(values) * 0.95) - 1], 2),
        }
    stats["p50_ratio"] = round(stats["restricted"]["p50_ms"] / stats["open"]["p50_ms"], 3)
    stats["p95_ratio"] = round(stats["restricted"]["p95_ms"] / stats["open"]["p95_ms"], 3)
    return stats


def prepare(queries: int, reuse: bool = False, build: bool = False) -> dict[str, Any]:
    import psycopg

    from shared.db.migrate import install_context_key, migrate

    key = secrets.token_bytes(32)
    if reuse:
        urls = bench_database(COPY)
        with psycopg.connect(urls["admin"], autocommit=True) as conn:
            install_context_key(conn, key)
            tenant, chunks = _row(conn.execute(_LARGE))
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
            conn.execute(
                "UPDATE documents d SET chunk_count = n FROM (SELECT document_id, count(*) AS n FROM chunks"
                " WHERE tenant_id = %s GROUP BY 1) c WHERE d.tenant_id = %s AND d.document_id = c.document_id"
                " AND d.chunk_count <> n",
                (tenant, tenant),
            )
            restricted, moved = _row(
                conn.execute(
                    "SELECT collection_id, (SELECT count(*) FROM chunks h WHERE h.tenant_id = c.tenant_id"
                    " AND h.collection_id = c.collection_id) FROM collections c WHERE tenant_id = %s AND name = 'restricted'",
                    (tenant,),
                )
            )
            member = _row(
                conn.execute("SELECT user_id FROM memberships WHERE tenant_id = %s AND role = 'member'", (tenant,))
            )[0]
        return {
            "urls": urls,
            "key": key,
            "tenant": tenant,
            "chunks": chunks,
            "moved_chunks": moved,
            "member": member,
            "restricted": restricted,
        }
    if build:  # the same data benchmarks.search loads (same seed), in a database of our own
        from benchmarks.common import scratch_database
        from benchmarks.search import load

        urls = scratch_database(COPY)
        load(urls, 100_000, beir.load(SCIFACT, "test"), _embedder())
    else:  # a copy of benchmarks.search's database (needs it idle)
        source = bench_database(SOURCE)
        admin_base = source["admin"].rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {COPY}")
            conn.execute(f"CREATE DATABASE {COPY} TEMPLATE {SOURCE}")
        urls = bench_database(COPY)
        migrate(urls["admin"], app_role="folio_app", embedding_model="all-MiniLM-L6-v2", embedding_dim=384)
    with psycopg.connect(urls["admin"], autocommit=True) as conn:
        install_context_key(conn, key)
        tenant, chunks = _row(conn.execute(_LARGE))
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        restricted = uuid.uuid4()
        conn.execute(
            "INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, 'restricted')",
            (tenant, restricted),
        )
        with conn.transaction():
            conn.execute(
                "CREATE TEMP TABLE moved AS SELECT document_id FROM documents WHERE tenant_id = %s"
                " ORDER BY document_id LIMIT (SELECT count(*) / 10 FROM documents WHERE tenant_id = %s)",
                (tenant, tenant),
            )
            conn.execute(
                "UPDATE documents SET collection_id = %s WHERE tenant_id = %s AND document_id IN (SELECT document_id FROM moved)",
                (restricted, tenant),
            )
            moved = conn.execute(
                "UPDATE chunks SET collection_id = %s WHERE tenant_id = %s AND document_id IN (SELECT document_id FROM moved)",
                (restricted, tenant),
            ).rowcount
        # The loader leaves documents.chunk_count at 0; the indexer keeps it (search reads it for the hidden share).
        conn.execute(
            "UPDATE documents d SET chunk_count = n FROM (SELECT document_id, count(*) AS n FROM chunks"
            " WHERE tenant_id = %s GROUP BY 1) c WHERE d.tenant_id = %s AND d.document_id = c.document_id",
            (tenant, tenant),
        )
        member = uuid.uuid4()
        conn.execute(
            "INSERT INTO users (user_id, idp, idp_subject, email) VALUES (%s, 'bench', %s, 'member@example.com')",
            (member, str(member)),
        )
        conn.execute("INSERT INTO memberships (tenant_id, user_id, role) VALUES (%s, %s, 'member')", (tenant, member))
        conn.execute("VACUUM ANALYZE chunks")
        conn.execute("VACUUM ANALYZE documents")
    return {
        "urls": urls,
        "key": key,
        "tenant": tenant,
        "chunks": chunks,
        "moved_chunks": moved,
        "member": member,
        "restricted": restricted,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="measure again on the copy made before")
    parser.add_argument("--build", action="store_true", help="load the data anew instead of copying it")
    parser.add_argument("--interleave", action="store_true", help="A/B per query: a member with access vs one without")
    args = parser.parse_args()

    import psycopg

    from benchmarks.embedding_cache import CachedEmbedder
    from shared.config import load_settings
    from shared.db import Database
    from shared.ingest.embedders import embedder_from_settings
    from shared.search import SearchRequest, search
    from shared.tenancy import Caller, Role

    dataset = beir.load(SCIFACT, "test")
    embedder = CachedEmbedder(
        embedder_from_settings(load_settings({})), ROOT / ".local" / "cache" / "embeddings.sqlite"
    )
    built = prepare(args.queries, args.reuse, args.build)
    queries = list(dataset.queries.values())[: args.queries]
    vectors = embedder.embed(queries)
    fixed = FixedQueryEmbedder(embedder)
    db = Database(built["urls"]["app"], max_size=2, context_key=built["key"])
    caller = Caller(built["tenant"], Role.MEMBER, "user", str(built["member"]), built["member"])

    def set_mode(mode: str) -> None:
        with psycopg.connect(built["urls"]["admin"], autocommit=True) as conn:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(built["tenant"]),))
            conn.execute("UPDATE collections SET access = %s WHERE collection_id = %s", (mode, built["restricted"]))

    def run(mode: str, query: str, vector: list[float]) -> tuple[float, set[str]]:
        fixed.next = vector
        started = time.perf_counter()
        result = search(db, caller, SearchRequest(query=query, mode=mode, top=10), embedder=fixed, highlight=False)
        return (time.perf_counter() - started) * 1000, {r["collectionId"] for r in result["results"]}

    out: dict[str, Any] = {
        "chunks": built["chunks"],
        "restricted_chunks": built["moved_chunks"],
        "queries": len(queries),
        "caller": "member without access (signed context)",
    }
    # Warm up both cases once, then alternate open and restricted in blocks of 20 queries (the access
    # flip is a committed UPDATE, read by the next statement), so drift on the shared machine hits both.
    for access in ("open", "restricted"):
        set_mode(access)
        for q, v in zip(queries[:20], vectors[:20], strict=True):
            run("hybrid", q, v)
    if args.interleave:
        with psycopg.connect(built["urls"]["admin"], autocommit=True) as conn:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(built["tenant"]),))
            granted = conn.execute(
                "SELECT m.user_id FROM collection_members m WHERE m.collection_id = %s", (built["restricted"],)
            ).fetchone()
            if granted is None:
                uid = uuid.uuid4()
                conn.execute(
                    "INSERT INTO users (user_id, idp, idp_subject, email) VALUES (%s, 'bench', %s, 'granted@example.com')",
                    (uid, str(uid)),
                )
                conn.execute(
                    "INSERT INTO memberships (tenant_id, user_id, role) VALUES (%s, %s, 'member')",
                    (built["tenant"], uid),
                )
                conn.execute(
                    "INSERT INTO collection_members (tenant_id, collection_id, user_id) VALUES (%s, %s, %s)",
                    (built["tenant"], built["restricted"], uid),
                )
                granted = (uid,)
        set_mode("restricted")
        callers = {
            "open": Caller(built["tenant"], Role.MEMBER, "user", str(granted[0]), granted[0]),
            "restricted": caller,
        }
        out["caller"] = (
            "open: a member named on the restricted collection (reads everything); restricted: a member who is not"
        )
        for mode in ("hybrid", "lexical", "vector"):
            times: dict[str, list[float]] = {"open": [], "restricted": []}
            for i, (q, v) in enumerate(zip(queries, vectors, strict=True)):
                for who in ("open", "restricted") if i % 2 == 0 else ("restricted", "open"):
                    fixed.next = v
                    started = time.perf_counter()
                    search(db, callers[who], SearchRequest(query=q, mode=mode, top=10), embedder=fixed, highlight=False)
                    times[who].append((time.perf_counter() - started) * 1000)
            out[mode] = _summary(times)
        db.close()
        print(json.dumps(out))
        return
    for mode in ("hybrid", "lexical", "vector"):
        blocks: dict[str, list[float]] = {"open": [], "restricted": []}
        leaked = 0
        for start in range(0, len(queries), 20):
            block = list(zip(queries[start : start + 20], vectors[start : start + 20], strict=True))
            for access in ("open", "restricted") if (start // 20) % 2 == 0 else ("restricted", "open"):
                set_mode(access)
                for q, v in block:
                    took, collections = run(mode, q, v)
                    blocks[access].append(took)
                    if access == "restricted" and str(built["restricted"]) in collections:
                        leaked += 1
        stats = _summary(blocks)
        stats["results_from_restricted_collection"] = leaked
        out[mode] = stats
    db.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
