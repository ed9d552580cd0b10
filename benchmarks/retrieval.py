"""Retrieval quality on a BEIR dataset through Folio's real ingestion and search code.

    python -m benchmarks.retrieval --dataset ../shared/data/scifact --split test --json

Ingests the corpus (parse → chunk → embed with the local model → COPY into chunks), then runs
every judged query through ``shared.search.search`` in each mode. Judgements are per document:
a document is ranked by its best chunk. Prints {"dataset", "queries", "ndcg@10": {lexical,
vector, hybrid}, "recall@100": {...}, ...}. Embeddings are cached in .local/cache, so a re-run
only re-embeds changed text.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import beir
from benchmarks.common import ROOT, app_database, bench_database, create_tenant, scratch_database

MODES = ("lexical", "vector", "hybrid")


def ingest(dataset: beir.Dataset, urls: dict[str, str], embedder: Any) -> dict[str, Any]:
    """Every corpus entry as a Markdown document (title as heading), through the real pipeline code."""
    import psycopg

    from shared.indexer import copy_chunks, embedding_text
    from shared.ingest.chunker import chunk_document
    from shared.ingest.parsers import parse_document
    from shared.jobs import IndexJob

    tenant, collection = create_tenant(urls["admin"], "retrieval")
    db = app_database(urls["app"])
    started = time.perf_counter()
    chunk_total = 0
    items = list(dataset.corpus.items())
    with psycopg.connect(urls["admin"], autocommit=True) as admin:
        admin.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        for batch_start in range(0, len(items), 64):
            batch = items[batch_start : batch_start + 64]
            parsed = []
            for doc_id, (title, text) in batch:
                document = parse_document(f"# {title}\n\n{text}\n".encode() if title else text.encode())
                parsed.append((doc_id, chunk_document(document), document))
            texts = [embedding_text(c.heading_path, c.text) for _, chunks, _ in parsed for c in chunks]
            vectors = iter(embedder.embed(texts))
            for doc_id, chunks, _document in parsed:
                document_id = uuid.uuid5(uuid.NAMESPACE_URL, f"beir:{dataset.name}:{doc_id}")
                admin.execute(
                    "INSERT INTO documents (tenant_id, document_id, collection_id, filename, blob_path, status,"
                    " chunk_count) VALUES (%s, %s, %s, %s, %s, 'ready', %s)",
                    (tenant, document_id, collection, doc_id, f"beir/{doc_id}", len(chunks)),
                )
                job = IndexJob("index", tenant, collection, document_id, "beir", "1")
                vecs = ["[" + ",".join(f"{x:.7g}" for x in next(vectors)) + "]" for _ in chunks]
                with db.transaction(tenant_id=tenant) as conn:
                    copy_chunks(conn, job, chunks, vecs)
                chunk_total += len(chunks)
            print(f"\ringested {min(batch_start + 64, len(items))}/{len(items)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    db.close()
    return {
        "tenant": tenant,
        "collection": collection,
        "chunks": chunk_total,
        "ingest_s": round(time.perf_counter() - started, 1),
    }


def evaluate(
    dataset: beir.Dataset,
    urls: dict[str, str],
    tenant: uuid.UUID,
    embedder: Any,
    modes: tuple[str, ...] = MODES,
    **options: Any,
) -> dict[str, Any]:
    from shared.search import EVALUATION_MAX_TOP, SearchRequest, search
    from shared.tenancy import Caller, Role

    db = app_database(urls["app"])
    caller = Caller(tenant, Role.VIEWER, "user", "benchmark")
    doc_ids = document_ids(urls, tenant)
    ndcg: dict[str, float] = {}
    recall: dict[str, float] = {}
    latency: dict[str, float] = {}
    for mode in modes:
        scores_n, scores_r, times = [], [], []
        for query_id, text in dataset.queries.items():
            started = time.perf_counter()
            result = search(
                db,
                caller,
                SearchRequest(query=text, mode=mode, top=100, **options),
                embedder=embedder,
                max_top=EVALUATION_MAX_TOP,
            )
            times.append(time.perf_counter() - started)
            ranked: list[str] = []
            for hit in result["results"]:  # documents by their best chunk
                doc = doc_ids[hit["documentId"]]
                if doc not in ranked:
                    ranked.append(doc)
            scores_n.append(beir.ndcg_at(ranked, dataset.qrels[query_id], 10))
            scores_r.append(beir.recall_at(ranked, dataset.qrels[query_id], 100))
        ndcg[mode] = round(sum(scores_n) / len(scores_n), 4)
        recall[mode] = round(sum(scores_r) / len(scores_r), 4)
        latency[mode] = round(sorted(times)[len(times) // 2] * 1000, 1)
    db.close()
    return {"ndcg@10": ndcg, "recall@100": recall, "median_ms": latency}


def document_ids(urls: dict[str, str], tenant: uuid.UUID) -> dict[str, str]:
    """Each of the tenant's documents' id (as text) and its filename (the dataset's document id)."""
    import psycopg

    with psycopg.connect(urls["admin"]) as conn:
        return {
            str(r[0]): r[1]
            for r in conn.execute("SELECT document_id, filename FROM documents WHERE tenant_id = %s", (tenant,))
        }


def prepared_database(dataset: beir.Dataset, embedder: Any, *, reuse: bool) -> tuple[dict[str, str], uuid.UUID, dict]:
    """Ingest into a scratch database named after the dataset; with ``reuse``, keep a complete one."""
    import psycopg

    from shared.indexer import COPY_THRESHOLD  # noqa: F401  (imported to fail fast on a broken tree)

    fingerprint = hashlib.sha256(f"{dataset.name}:{len(dataset.corpus)}:{embedder.model_id}".encode()).hexdigest()[:8]
    name = f"folio_bench_beir_{dataset.name.lower()}_{fingerprint}"[:60]
    if reuse:
        urls = bench_database(name)  # the server stops when this run ends
        try:
            with psycopg.connect(urls["admin"]) as conn:
                row = conn.execute("SELECT tenant_id, count(*) FROM documents GROUP BY tenant_id").fetchone()
            if row and row[1] == len(dataset.corpus):
                from shared.db.migrate import migrate

                # Migrations added since it was built (new search functions...) apply to it too.
                migrate(urls["admin"], app_role="folio_app", embedding_model="all-MiniLM-L6-v2", embedding_dim=384)
                return urls, row[0], {"reused": True}
        except psycopg.OperationalError:
            pass
    urls = scratch_database(name)
    info = ingest(dataset, urls, embedder)
    return urls, info.pop("tenant"), info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--reuse", action="store_true", help="reuse an already ingested scratch database")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output anyway)")
    args = parser.parse_args()

    from benchmarks.embedding_cache import CachedEmbedder
    from shared.config import load_settings
    from shared.ingest.embedders import embedder_from_settings

    dataset = beir.load(args.dataset, args.split)
    embedder = CachedEmbedder(
        embedder_from_settings(load_settings({})), ROOT / ".local" / "cache" / "embeddings.sqlite"
    )
    urls, tenant, info = prepared_database(dataset, embedder, reuse=args.reuse)
    result = {
        "dataset": dataset.name,
        "split": args.split,
        "queries": len(dataset.queries),
        "documents": len(dataset.corpus),
        **info,
    }
    result.update(evaluate(dataset, urls, tenant, embedder))
    result["embedder"] = embedder.model_id
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
