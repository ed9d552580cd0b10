"""Ingestion throughput through the real code: parse → chunk → embed (local model) → COPY into chunks.

    python -m benchmarks.ingest --json [--dataset ../shared/data/scifact] [--docs 300]

Prints {"documents", "chunks", "chunks_per_s", "parse_chunk_s", "embed_s", "db_write_s",
"db_write_chunks_per_s", "baseline_db_write_chunks_per_s", "copy_speedup"}. The baseline writes
the same chunks with one INSERT per row, in the same run, on the same database.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import create_tenant, scratch_database


def load_documents(dataset: Path | None, count: int, sections: int = 6) -> list[bytes]:
    """Markdown documents: BEIR corpus entries (title as heading) if available, else generated text."""
    docs: list[bytes] = []
    corpus = dataset / "corpus.jsonl" if dataset else None
    if corpus and corpus.exists():
        with corpus.open() as handle:
            for line in handle:
                row = json.loads(line)
                docs.append(f"# {row.get('title') or row['_id']}\n\n{row['text']}\n".encode())
                if len(docs) >= count:
                    break
        return docs
    for i in range(count):
        body = "\n\n".join(
            f"## Section {i}.{j} Obligations\n\n"
            + " ".join(f"The party {k} shall deliver the goods within {k + j} days of the order." for k in range(12))
            for j in range(sections)
        )
        docs.append(f"# Agreement {i}\n\n{body}\n".encode())
    return docs


def run(dataset: Path | None, count: int, sections: int = 6, rtt_ms: float = 0.0) -> dict[str, Any]:
    from shared.config import load_settings
    from shared.db import Database
    from shared.indexer import copy_chunks, embedding_text
    from shared.ingest.chunker import chunk_document
    from shared.ingest.embedders import embedder_from_settings
    from shared.ingest.parsers import parse_document

    urls = scratch_database("folio_bench_ingest")
    tenant, collection = create_tenant(urls["admin"])
    docs = load_documents(dataset, count, sections)
    embedder = embedder_from_settings(load_settings({}))
    embedder.embed(["warm up the model"])

    started = time.perf_counter()
    parsed = [chunk_document(parse_document(d)) for d in docs]
    parse_s = time.perf_counter() - started
    t = time.perf_counter()
    vectors = [
        [
            "[" + ",".join(f"{x:.7g}" for x in v) + "]"
            for v in embedder.embed([embedding_text(c.heading_path, c.text) for c in chunks])
        ]
        for chunks in parsed
    ]
    embed_s = time.perf_counter() - t

    app_url = urls["app"]
    if rtt_ms:
        from benchmarks.latency_proxy import LatencyProxy

        port = int(app_url.split(":")[-1].split("/")[0])
        proxy = LatencyProxy(port, rtt_ms / 2)
        app_url = app_url.replace(f":{port}/", f":{proxy.port}/")
    db = Database(app_url, max_size=2)
    copy_jobs = _documents(urls["admin"], tenant, collection, len(docs))
    row_jobs = _documents(urls["admin"], tenant, collection, len(docs))
    copy_s = insert_s = 0.0
    # Interleaved per document, alternating which path goes first, so both see the same index
    # size and cache state.
    for i, (copy_job, row_job, chunks, vecs) in enumerate(zip(copy_jobs, row_jobs, parsed, vectors, strict=True)):
        for path in ("copy", "rows") if i % 2 == 0 else ("rows", "copy"):
            t = time.perf_counter()
            with db.transaction(tenant_id=tenant) as conn:  # one transaction per document, as the indexer
                if path == "copy":
                    copy_chunks(conn, copy_job, chunks, vecs)
                else:
                    _insert_rows(conn, row_job, chunks, vecs)
            if path == "copy":
                copy_s += time.perf_counter() - t
            else:
                insert_s += time.perf_counter() - t
    total_chunks = sum(len(c) for c in parsed)
    db.close()
    end_to_end = parse_s + embed_s + copy_s
    return {
        "documents": len(docs),
        "chunks": total_chunks,
        "chunks_per_s": round(total_chunks / end_to_end, 1),
        "parse_chunk_s": round(parse_s, 2),
        "embed_s": round(embed_s, 2),
        "db_write_s": round(copy_s, 2),
        "db_write_chunks_per_s": round(total_chunks / copy_s, 1),
        "baseline_db_write_chunks_per_s": round(total_chunks / insert_s, 1),
        "copy_speedup": round(insert_s / copy_s, 2),
        "embedder": embedder.model_id,
        "db_rtt_ms_added": rtt_ms,
    }


def _documents(admin_url: str, tenant: uuid.UUID, collection: uuid.UUID, count: int) -> list[Any]:
    import psycopg

    from shared.jobs import IndexJob

    jobs = [IndexJob("index", tenant, collection, uuid.uuid4(), "bench", "1") for _ in range(count)]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
        for job in jobs:
            admin.execute(
                "INSERT INTO documents (tenant_id, document_id, collection_id, filename, blob_path)"
                " VALUES (%s, %s, %s, 'bench.md', 'bench')",
                (tenant, job.document_id, collection),
            )
    return jobs


def _insert_rows(conn: Any, job: Any, chunks: Any, vecs: Any) -> None:
    """The baseline: one INSERT statement per chunk."""
    for chunk, vec in zip(chunks, vecs, strict=True):
        conn.execute(
            "INSERT INTO chunks (tenant_id, document_id, collection_id, ordinal, heading, heading_path, body,"
            " page_start, page_end, char_start, char_end, content_hash, embedding)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::vector)",
            (
                job.tenant_id,
                job.document_id,
                job.collection_id,
                chunk.ordinal,
                " > ".join(chunk.heading_path),
                chunk.heading_path,
                chunk.text,
                chunk.page_start,
                chunk.page_end,
                chunk.char_start,
                chunk.char_end,
                chunk.content_hash,
                vec,
            ),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/scifact")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--sections", type=int, default=6, help="sections per generated document")
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="add this database round-trip time (Azure is ~0.5-2 ms; loopback ~0.05)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default output anyway)")
    args = parser.parse_args()
    print(json.dumps(run(args.dataset, args.docs, args.sections, args.rtt_ms)))


if __name__ == "__main__":
    main()
