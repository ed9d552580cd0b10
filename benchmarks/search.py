"""Search latency and vector recall at scale, through the real search function.

    python -m benchmarks.search --chunks 100000 --json     (and --chunks 1000000: long)

Builds a scratch database with ``--chunks`` chunks in two workspaces: a large one (99% of rows)
and a small one (1%, the "tenant filter" case). Text is real sentences of the SciFact abstracts
recombined; vectors are real MiniLM embeddings of SciFact chunks, mixed and perturbed, so they
are clustered like real data (uniform random vectors would be an unrealistically hard case).
Queries are the SciFact test claims with their real embeddings.

Prints p50/p95 latency per mode for both workspaces, vector recall@10 of the HNSW leg against an
exact scan of the same rows in the same run, and the rows returned under the filter.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import beir
from benchmarks.common import ROOT, bench_database, scratch_database

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def _sentences(dataset: beir.Dataset) -> list[str]:
    out: list[str] = []
    for _, text in dataset.corpus.values():
        out.extend(s.strip() + "." for s in text.split(". ") if len(s.split()) >= 5)
    return out


def _unit(v: list[float]) -> list[float]:
    norm = sum(x * x for x in v) ** 0.5 or 1.0
    return [x / norm for x in v]


def load(urls: dict[str, str], total: int, dataset: beir.Dataset, embedder: Any, seed: int = 7) -> dict[str, Any]:
    """COPY synthetic chunks for two tenants; indexes are built after the load, as a bulk import would."""
    import numpy as np
    import psycopg

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    sentences = _sentences(dataset)
    titles = [t for t, _ in dataset.corpus.values() if t]
    base_texts = [f"{t}\n\n{x}" for t, x in list(dataset.corpus.values())[:2000]]
    base = np.array(embedder.embed(base_texts), dtype=np.float32)
    tenants = {"large": (uuid.uuid4(), total - total // 100), "small": (uuid.uuid4(), total // 100)}
    started = time.perf_counter()
    with psycopg.connect(urls["admin"], autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS chunks_embedding")
        conn.execute("DROP INDEX IF EXISTS chunks_tsv")
        for name, (tenant, count) in tenants.items():
            collection = uuid.uuid4()
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
            conn.execute("INSERT INTO tenants (tenant_id, name) VALUES (%s, %s)", (tenant, name))
            conn.execute(
                "INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, 'bench')",
                (tenant, collection),
            )
            docs = [uuid.uuid4() for _ in range(max(1, count // 10))]
            with conn.cursor().copy(
                "COPY documents (tenant_id, document_id, collection_id, filename, blob_path, status) FROM STDIN"
            ) as copy:
                for doc in docs:
                    copy.write_row((tenant, doc, collection, f"{doc}.md", str(doc), "ready"))
            with (
                conn.transaction(),
                conn.cursor().copy(
                    "COPY chunks (tenant_id, document_id, collection_id, ordinal, heading, heading_path, body,"
                    " char_start, char_end, content_hash, embedding) FROM STDIN"
                ) as copy,
            ):
                for i in range(count):
                    heading = rng.choice(titles)
                    body = " ".join(rng.sample(sentences, rng.randint(3, 8)))
                    a, b = nrng.integers(0, len(base), 2)
                    vec = 0.8 * base[a] + 0.35 * base[b] + nrng.normal(0, 0.02, base.shape[1])
                    vec /= np.linalg.norm(vec)
                    copy.write_row(
                        (
                            tenant,
                            docs[i // 10],
                            collection,
                            i % 10,
                            heading,
                            [heading],
                            body,
                            0,
                            len(body),
                            f"{i}",
                            "[" + ",".join(f"{x:.6f}" for x in vec) + "]",
                        )
                    )
                    if i % 20000 == 0:
                        print(f"\r{name}: {i}/{count}", end="", file=sys.stderr)
            print(file=sys.stderr)
        load_s = time.perf_counter() - started
        t = time.perf_counter()
        # The HNSW graph of 1M chunks needs ~2 GB; with less, pgvector builds part of it on disk (2x slower).
        conn.execute("SET maintenance_work_mem = '4GB'")
        conn.execute("CREATE INDEX chunks_tsv ON chunks USING gin (tsv)")
        gin_s = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute(hnsw_index_sql())
        hnsw_s = time.perf_counter() - t
        conn.execute("VACUUM ANALYZE chunks")
    return {
        "tenants": tenants,
        "load_s": round(load_s, 1),
        "gin_build_s": round(gin_s, 1),
        "hnsw_build_s": round(hnsw_s, 1),
    }


def hnsw_index_sql() -> str:
    """The vector index exactly as the newest migration that builds it defines it."""
    migrations = sorted((ROOT / "shared" / "db" / "migrations").glob("*.sql"))
    statements = [
        m
        for path in migrations
        for m in re.findall(r"CREATE INDEX chunks_embedding ON chunks USING hnsw[^;]*", path.read_text())
    ]
    return statements[-1]


class FixedQueryEmbedder:
    """Stands in for ``embedder`` and answers with the vector set in ``next``, so the query vectors
    are embedded once, outside the timed region."""

    def __init__(self, embedder: Any) -> None:
        self.model_id, self.dimensions = embedder.model_id, embedder.dimensions
        self.next: list[float] = []

    def embed(self, texts: Any) -> list[list[float]]:
        return [self.next]


def measure(
    urls: dict[str, str],
    tenants: dict[str, Any],
    queries: list[str],
    embedder: Any,
    top: int = 10,
    context_key: bytes | None = None,
) -> dict[str, Any]:
    from shared.db import Database
    from shared.search import SearchRequest, search
    from shared.tenancy import Caller, Role

    db = Database(urls["app"], max_size=2, context_key=context_key)
    vectors = embedder.embed(queries)

    fixed = FixedQueryEmbedder(embedder)
    out: dict[str, Any] = {}
    for name, (tenant, count) in tenants.items():
        caller = Caller(tenant, Role.VIEWER, "user", "bench")
        stats: dict[str, Any] = {"rows": count}
        for mode in ("hybrid", "lexical", "vector"):
            times, returned = [], []
            for query, vector in zip(queries, vectors, strict=True):
                fixed.next = vector
                started = time.perf_counter()
                result = search(
                    db, caller, SearchRequest(query=query, mode=mode, top=top), embedder=fixed, highlight=False
                )
                times.append((time.perf_counter() - started) * 1000)
                returned.append(len(result["results"]))
            times.sort()
            stats[mode] = {
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                "min_rows_returned": min(returned),
            }
        stats["vector_recall@10"] = _recall(db, caller, fixed, vectors, top)
        out[name] = stats
    db.close()
    return out


def _recall(db: Any, caller: Any, fixed: Any, vectors: list[list[float]], k: int) -> float:
    """The vector leg as search() runs it (HNSW or exact, same settings) against an exact scan."""
    from shared.search import SearchRequest, search

    hits = total = 0
    for vector in vectors:
        fixed.next = vector
        got = {
            int(r["chunkId"])
            for r in search(
                db, caller, SearchRequest(query="recall", mode="vector", top=k), embedder=fixed, highlight=False
            )["results"]
        }
        literal = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
        with db.transaction(caller.tenant_id) as conn:
            exact = [
                r["chunk_id"]
                for r in conn.execute(
                    "SELECT chunk_id FROM chunks WHERE tenant_id = %(t)s ORDER BY (embedding <=> %(v)s::vector) + 0"
                    " LIMIT %(k)s",
                    {"v": literal, "t": caller.tenant_id, "k": k},
                )
            ]
        hits += len(got & set(exact))
        total += len(exact)
    return round(hits / total, 4) if total else 0.0


def _reusable(name: str, total: int) -> dict[str, Any] | None:
    import psycopg

    urls = bench_database(name)  # the server stops when the run ends
    try:
        with psycopg.connect(urls["admin"]) as conn:
            rows = conn.execute(
                "SELECT t.name, s.tenant_id, s.chunks FROM tenant_text_stats s JOIN tenants t USING (tenant_id)"
            ).fetchall()
    except psycopg.OperationalError:
        return None
    tenants = {name_: (tenant, chunks) for name_, tenant, chunks in rows}
    if set(tenants) != {"large", "small"} or sum(c for _, c in tenants.values()) != total:
        return None
    return {"urls": urls, "tenants": tenants, "reused": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--reuse", action="store_true", help="measure again on an already loaded database")
    parser.add_argument(
        "--signed", action="store_true", help="install a context key (migration 0009) and sign every transaction"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output anyway)")
    args = parser.parse_args()

    from benchmarks.embedding_cache import CachedEmbedder
    from shared.config import load_settings
    from shared.ingest.embedders import embedder_from_settings

    dataset = beir.load(args.dataset, "test")
    embedder = CachedEmbedder(
        embedder_from_settings(load_settings({})), ROOT / ".local" / "cache" / "embeddings.sqlite"
    )
    name = f"folio_bench_search_{args.chunks}"
    built = _reusable(name, args.chunks) if args.reuse else None
    if built is None:
        urls = scratch_database(name)
        built = load(urls, args.chunks, dataset, embedder)
    else:
        urls = built.pop("urls")
    queries = list(dataset.queries.values())[: args.queries]
    result = {"chunks": args.chunks, "queries": len(queries), **{k: v for k, v in built.items() if k != "tenants"}}
    context_key = None
    if args.signed:
        import secrets

        import psycopg

        from shared.db.migrate import install_context_key

        context_key = secrets.token_bytes(32)
        with psycopg.connect(urls["admin"], autocommit=True) as conn:
            install_context_key(conn, context_key)
        result["signed"] = True
    result.update(measure(urls, built["tenants"], queries, embedder, context_key=context_key))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
