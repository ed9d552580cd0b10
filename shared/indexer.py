"""The indexer: one job in, one document's chunk set replaced (or removed), exactly once in effect.

Steps: check the job is still current → fetch the blob version it names (capped) → detect type
by content and parse under limits → chunk along the document's structure → embed (reusing
vectors of unchanged chunks) → replace the chunk set in one transaction, guarded so an older
version never overwrites a newer one.

Errors are classified. A problem with the file itself (corrupt, unsupported, too big, empty)
is permanent: the document is marked ``failed`` with a readable reason and the message is
completed. Anything else (database, storage or embedding service down, timeouts) is raised so
Service Bus redelivers; on the last allowed delivery the document is marked ``failed`` too, so
its status never stays ``processing`` forever. A failure records whether re-indexing could succeed
(``retryable``): a refused file or a file no longer stored cannot; a temporary problem can.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared import billing
from shared.config import Settings
from shared.db import Conn, Database
from shared.errors import FolioError, QuotaExceeded
from shared.ingest.limits import Limits
from shared.jobs import IndexJob
from shared.ports import BlobStore, DocumentAnalyzer, Embedder
from shared.storage import BlobMissing, BlobRef, BlobTooLarge

_log = logging.getLogger(__name__)

_CHUNK_COLUMNS = (
    "tenant_id",
    "document_id",
    "collection_id",
    "ordinal",
    "heading",
    "heading_path",
    "body",
    "page_start",
    "page_end",
    "char_start",
    "char_end",
    "content_hash",
    "embedding",
)


@dataclass(frozen=True)
class Outcome:
    status: str  # ready | failed | stale | duplicate | removed | gone
    chunks: int = 0
    reused_embeddings: int = 0
    detail: str | None = None


def ingest_limits(settings: Settings) -> Limits:
    """Parse limits, with the upload size limit enforced again here: a SAS cannot cap size."""
    return Limits(max_bytes=settings.max_upload_bytes)


def embedding_text(heading_path: Sequence[str], body: str) -> str:
    """What gets embedded: the heading path gives a chunk its context ("Article 4 > Section 4.2")."""
    return (" > ".join(heading_path) + "\n\n" + body) if heading_path else body


_TEMPORARY = "Indexing kept failing on a temporary problem; use re-index to try again."
_FILE_GONE = "The uploaded file is no longer stored, so it cannot be indexed; upload it again."


def run_job(
    db: Database,
    blobs: BlobStore,
    embedder: Embedder,
    job: IndexJob,
    *,
    settings: Settings,
    last_attempt: bool = False,
    after_chunks_written: Callable[[int], None] | None = None,
    analyzer: DocumentAnalyzer | None = None,
) -> Outcome:
    """Process one job. ``analyzer`` reads scans and images (OCR; ``None``: they are refused).
    ``after_chunks_written`` is a test hook to simulate a crash mid-write."""
    if job.kind == "remove":
        return _remove(db, job)
    try:
        return _index(db, blobs, embedder, job, settings, after_chunks_written, analyzer)
    except FolioError as exc:
        from shared.ingest.errors import DocumentRejected

        if isinstance(exc, (DocumentRejected, QuotaExceeded)):  # over the plan's pages: permanent too
            _mark_failed(db, job, exc.detail, retryable=False)
            return Outcome("failed", detail=exc.detail)
        if last_attempt:
            _mark_failed(db, job, _TEMPORARY, retryable=True)
        raise
    except Exception:
        if last_attempt:
            _mark_failed(db, job, _TEMPORARY, retryable=True)
        raise


def _remove(db: Database, job: IndexJob) -> Outcome:
    with db.transaction(tenant_id=job.tenant_id) as conn:
        status = conn.execute(
            "SELECT status FROM documents WHERE tenant_id = %s AND document_id = %s", (job.tenant_id, job.document_id)
        ).fetchone()
        if status is None or status["status"] != "deleted":
            return Outcome("stale")  # re-created since the delete, or never known
        removed = conn.execute(
            "DELETE FROM chunks WHERE tenant_id = %s AND document_id = %s", (job.tenant_id, job.document_id)
        ).rowcount
        conn.execute(
            "UPDATE documents SET chunk_count = 0 WHERE tenant_id = %s AND document_id = %s",
            (job.tenant_id, job.document_id),
        )
    return Outcome("removed", chunks=removed)


def _claim(db: Database, job: IndexJob) -> str | None:
    """Move the document to ``processing`` if this job is still the current version; else why not."""
    with db.transaction(tenant_id=job.tenant_id) as conn:
        row = conn.execute(
            "SELECT status, blob_etag, indexed_etag FROM documents WHERE tenant_id = %s AND document_id = %s"
            " FOR UPDATE",
            (job.tenant_id, job.document_id),
        ).fetchone()
        if row is None or row["status"] == "deleted":
            return "gone"
        if row["blob_etag"] != job.etag:
            return "stale"  # a newer version was recorded; its own job will index it
        if row["indexed_etag"] == job.etag and row["status"] == "ready":
            return "duplicate"
        conn.execute(
            "UPDATE documents SET status = 'processing', updated_at = now() WHERE tenant_id = %s AND document_id = %s",
            (job.tenant_id, job.document_id),
        )
    return None


def _index(
    db: Database,
    blobs: BlobStore,
    embedder: Embedder,
    job: IndexJob,
    settings: Settings,
    after_chunks_written: Callable[[int], None] | None,
    analyzer: DocumentAnalyzer | None = None,
) -> Outcome:
    from shared.ingest.chunker import chunk_document
    from shared.ingest.errors import EmptyDocument, TooLarge
    from shared.ingest.parsers import parse_document

    limits = ingest_limits(settings)
    skipped = _claim(db, job)
    if skipped:
        return Outcome(skipped)
    ref = BlobRef(job.tenant_id, job.collection_id, job.document_id)
    started = time.perf_counter()
    try:
        data = blobs.download(ref, f'"{job.etag}"', limits.max_bytes)
    except BlobMissing:
        if _blob_exists(blobs, ref):
            return Outcome("stale", detail="blob version gone")  # replaced: the newer version's job indexes it
        # Gone altogether: no delivery or re-index can bring it back. (A no-op if the row moved on.)
        _mark_failed(db, job, _FILE_GONE, retryable=False)
        return Outcome("failed", detail=_FILE_GONE)
    except BlobTooLarge as exc:
        raise TooLarge(
            f"The file is {exc.size:,} bytes; the limit is {exc.limit:,} bytes.", limit="max_bytes", value=exc.limit
        ) from None
    document = parse_document(data, limits, ocr=_ocr_route(db, job, settings, analyzer))
    chunks = chunk_document(document)
    if not chunks:
        raise EmptyDocument("The document contains no text to index.")
    pages_billed = billing.billable_pages(document.pages, len(document.text))
    billing.check(
        db, job.tenant_id, billing.PAGES_INDEXED, pages_billed, settings=settings
    )  # before paying for embeddings
    vectors, reused = _embeddings(db, embedder, job, chunks)
    # Only the extractive answerer reads sentence vectors; a deployment answering with a model would
    # pay for twice the embeddings and never use them (its turns fall back to embedding a few sentences).
    sentence_rows = _sentence_embeddings(db, embedder, job, chunks) if settings.chat_provider == "extractive" else []
    outcome = _write(
        db,
        job,
        chunks,
        vectors,
        document.pages,
        document.doc_type,
        after_chunks_written,
        settings=settings,
        pages_billed=pages_billed,
        sentence_rows=sentence_rows,
    )
    _log.info(
        "indexed document", extra={"event": "indexed", "durationMs": round((time.perf_counter() - started) * 1000)}
    )
    return Outcome(outcome, chunks=len(chunks), reused_embeddings=reused)


def _ocr_route(db: Database, job: IndexJob, settings: Settings, analyzer: DocumentAnalyzer | None) -> Any:
    """How scans and images reach OCR: the page cap, and the plan's pages quota checked before the
    service is paid (the pages are then counted with the chunks, as for any document)."""
    if analyzer is None:
        return None
    from shared.ingest.parsers.docintel import OcrRoute

    def admit(pages: int) -> None:
        billing.check(db, job.tenant_id, billing.PAGES_INDEXED, pages, settings=settings)

    return OcrRoute(analyzer, settings.document_intelligence_max_pages, admit)


def _embeddings(db: Database, embedder: Any, job: IndexJob, chunks: Sequence[Any]) -> tuple[list[str], int]:
    """Vectors for every chunk, as pgvector text; unchanged chunks keep their stored vector."""
    with db.transaction(tenant_id=job.tenant_id) as conn:
        known = {
            r["content_hash"]: r["embedding"]
            for r in conn.execute(
                "SELECT DISTINCT ON (content_hash) content_hash, embedding::text AS embedding FROM chunks"
                " WHERE tenant_id = %s AND document_id = %s AND embedding IS NOT NULL",
                (job.tenant_id, job.document_id),
            )
        }
        model = conn.execute("SELECT value FROM folio_index_settings WHERE key = 'embedding_model'").fetchone()
    if model is None or model["value"] != embedder.model_id:
        known = {}  # vectors from another model are not comparable
    missing = [c for c in chunks if c.content_hash not in known]
    if missing:
        fresh = embedder.embed([embedding_text(c.heading_path, c.text) for c in missing])
        for chunk, vector in zip(missing, fresh, strict=True):
            known[chunk.content_hash] = _vector_text(vector)
    return [known[c.content_hash] for c in chunks], len(chunks) - len(missing)


def _vector_text(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


# (chunk ordinal or id, sentence position, sentence_key, vector as pgvector text)
SentenceRow = tuple[int, int, str, str]


def sentence_embeddings(
    embedder: Embedder, chunks: Sequence[tuple[int, Sequence[str], str]], known: dict[str, str] | None = None
) -> list[SentenceRow]:
    """A vector for every quotable sentence of ``chunks`` (each ``(ordinal or id, heading path, body)``),
    split and embedded exactly as the extractive answerer would (shared.chat.providers.extractive);
    ``known`` (key -> vector text) is reused instead of embedded again, and gets the new ones."""
    from shared.chat.providers.extractive import sentence_key, sentence_text, sentences

    known = {} if known is None else known
    wanted = [
        (ref, position, sentence_key(path, sentence), sentence_text(path, sentence))
        for ref, path, body in chunks
        for position, sentence in enumerate(sentences(body, path))
    ]
    todo = list({key: text for _, _, key, text in wanted if key not in known}.items())
    if todo:
        for (key, _), vector in zip(todo, embedder.embed([text for _, text in todo]), strict=True):
            known[key] = _vector_text(vector)
    return [(ref, position, key, known[key]) for ref, position, key, _ in wanted]


def _sentence_embeddings(db: Database, embedder: Embedder, job: IndexJob, chunks: Sequence[Any]) -> list[SentenceRow]:
    """The chunks' sentence vectors by ordinal; sentences the document already had keep theirs."""
    with db.transaction(tenant_id=job.tenant_id) as conn:
        model = conn.execute("SELECT value FROM folio_index_settings WHERE key = 'embedding_model'").fetchone()
        known = {
            r["text_hash"]: r["embedding"]
            for r in conn.execute(
                "SELECT DISTINCT ON (s.text_hash) s.text_hash, s.embedding::vector::text AS embedding"
                " FROM chunk_sentences s JOIN chunks c USING (tenant_id, chunk_id)"
                " WHERE c.tenant_id = %s AND c.document_id = %s",
                (job.tenant_id, job.document_id),
            )
        }
    if model is None or model["value"] != embedder.model_id:
        known = {}
    return sentence_embeddings(embedder, [(c.ordinal, c.heading_path, c.text) for c in chunks], known)


def store_sentences(conn: Conn, tenant_id: Any, rows: Sequence[SentenceRow]) -> None:
    """Insert sentence vectors given by chunk id (one statement)."""
    if rows:
        conn.execute(
            "INSERT INTO chunk_sentences (tenant_id, chunk_id, position, text_hash, embedding)"
            " SELECT %s, s.chunk_id, s.position, s.text_hash, s.embedding::halfvec"
            " FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[]) AS s(chunk_id, position, text_hash, embedding)",
            (tenant_id, *(list(column) for column in zip(*rows, strict=True))),
        )


def _write(
    db: Database,
    job: IndexJob,
    chunks: Sequence[Any],
    vectors: Sequence[str],
    pages: int | None,
    doc_type: str | None,
    after_chunks_written: Callable[[int], None] | None,
    *,
    settings: Settings,
    pages_billed: int = 0,
    sentence_rows: Sequence[SentenceRow] = (),
) -> str:
    """Replace the chunk set (and its sentence vectors) and mark the document ready, all in one transaction."""
    with db.transaction(tenant_id=job.tenant_id) as conn:
        row = conn.execute(
            "SELECT status, blob_etag FROM documents WHERE tenant_id = %s AND document_id = %s FOR UPDATE",
            (job.tenant_id, job.document_id),
        ).fetchone()
        if row is None or row["status"] == "deleted":
            return "gone"
        if row["blob_etag"] != job.etag:
            return "stale"  # a newer version arrived while this one was parsed: never overwrite it
        conn.execute("DELETE FROM chunks WHERE tenant_id = %s AND document_id = %s", (job.tenant_id, job.document_id))
        copy_chunks(conn, job, chunks, vectors)
        if sentence_rows:
            ids = {
                r["ordinal"]: r["chunk_id"]
                for r in conn.execute(
                    "SELECT ordinal, chunk_id FROM chunks WHERE tenant_id = %s AND document_id = %s",
                    (job.tenant_id, job.document_id),
                )
            }
            store_sentences(conn, job.tenant_id, [(ids[o], pos, key, vec) for o, pos, key, vec in sentence_rows])
        if after_chunks_written:
            after_chunks_written(len(chunks))
        if pages_billed:  # exact under concurrency; rolls back with the chunks (metering outbox too)
            billing.consume(
                conn,
                job.tenant_id,
                billing.PAGES_INDEXED,
                pages_billed,
                source=f"document:{job.document_id}",
                settings=settings,
            )
        conn.execute(
            "UPDATE documents SET status = 'ready', error = NULL, indexed_etag = %s, chunk_count = %s, pages = %s,"
            " doc_type = %s, indexed_at = now(), updated_at = now() WHERE tenant_id = %s AND document_id = %s",
            (job.etag, len(chunks), pages, doc_type, job.tenant_id, job.document_id),
        )
    return "ready"


# Below this many chunks one multi-row INSERT (one round trip) beats the staging COPY (four).
COPY_THRESHOLD = 8


def copy_chunks(conn: Conn, job: IndexJob, chunks: Sequence[Any], vectors: Sequence[str]) -> None:
    """Bulk-load a document's chunks: COPY through a staging table, or one INSERT for a handful.

    COPY FROM is refused on tables with row-level security, so a temp table (no RLS) takes the
    COPY and one set-based ``INSERT ... SELECT`` moves the rows, applying the tenant policy to
    each. The staging table is created once per backend and emptied by the same statement that
    moves its rows, so it never holds rows after the transaction (a rollback empties it too) and
    it also works behind PgBouncer in transaction mode. (ON COMMIT DELETE ROWS/DROP would be
    simpler but cost ~8 ms of file truncation per transaction.)
    """
    rows = [
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
            vector,
        )
        for chunk, vector in zip(chunks, vectors, strict=True)
    ]
    columns = ", ".join(_CHUNK_COLUMNS)
    if len(rows) < COPY_THRESHOLD:
        one_row = "(" + ", ".join(["%s"] * (len(_CHUNK_COLUMNS) - 1)) + ", %s::vector)"
        conn.execute(
            f"INSERT INTO chunks ({columns}) VALUES " + ", ".join([one_row] * len(rows)),
            [value for row in rows for value in row],
        )
        return
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS chunk_load (tenant_id uuid, document_id uuid, collection_id uuid,"
        " ordinal int, heading text, heading_path text[], body text, page_start int, page_end int,"
        " char_start int, char_end int, content_hash text, embedding text)"
    )
    with conn.cursor().copy(f"COPY chunk_load ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    selected = columns.replace("embedding", "embedding::vector")
    conn.execute(
        f"WITH moved AS (DELETE FROM chunk_load RETURNING *) INSERT INTO chunks ({columns})"
        f" SELECT {selected} FROM moved"
    )


def _blob_exists(blobs: BlobStore, ref: BlobRef) -> bool:
    try:
        blobs.properties(ref)
    except BlobMissing:
        return False
    return True


def _mark_failed(db: Database, job: IndexJob, reason: str, *, retryable: bool) -> None:
    """Mark the job's version failed; ``retryable`` says whether re-indexing it could succeed."""
    with db.transaction(tenant_id=job.tenant_id) as conn:
        conn.execute(
            "UPDATE documents SET status = 'failed', error = %s, retryable = %s, updated_at = now()"
            " WHERE tenant_id = %s AND document_id = %s AND blob_etag IS NOT DISTINCT FROM %s"
            " AND status <> 'deleted'",
            (reason[:1000], retryable, job.tenant_id, job.document_id, job.etag),
        )
