"""A failed document says whether re-indexing could succeed; only then do the API and the web app offer it.

A refused file (corrupt, unsupported, too big, over a plan limit) or a file no longer stored fails the
same way every time: ``retryable`` is false, re-index is a 409 and the web app shows no Retry. A
temporary problem that outlasted every delivery is ``retryable``: re-index runs and can succeed.
Everything runs against the real stack with the indexing pipeline running in the background, as
`make dev` runs it (one pipeline for the module, shared with the browser test).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import psycopg
import pytest

from devhost import postgres as local_pg
from shared.db import Conn
from shared.db.migrate import MIGRATIONS_DIR, migrate
from tests import test_web_app
from tests.helpers import Client, using
from tests.pipeline import Pipeline
from tests.test_ingestion import MARKDOWN, upload

# The browser tests' fixtures, shared by name (one Chromium and one web app server per module).
chromium, built_app, web, browser, page = (
    test_web_app.chromium,
    test_web_app.built_app,
    test_web_app.web,
    test_web_app.browser,
    test_web_app.page,
)

CORRUPT_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a pdf at all"
WAIT_S = 60.0


class _EmbeddingsDown:
    """An embedding service that is down: every delivery of an index job fails on it."""

    model_id, dimensions = "down", 384

    def embed(self, texts: Any) -> Any:
        from shared.errors import Unavailable

        raise Unavailable("embedding service is down")


def _user(host: str) -> Client:
    tag = uuid.uuid4().hex[:8]
    return Client(host).as_user(f"retry-{tag}", email=f"retry-{tag}@example.com")


def _collection(user: Client) -> str:
    return str(user.post("/api/collections", {"name": f"c-{uuid.uuid4().hex[:6]}"}).json()["id"])


def _settled(user: Client, document_id: str) -> dict[str, Any]:
    """The document once indexing is over (ready or failed), polling the API as the web app does."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        doc: dict[str, Any] = user.get(f"/api/documents/{document_id}").json()
        if doc["status"] in ("ready", "failed"):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"document {document_id} is still {doc['status']}")


def _failed_for_good(user: Client, running_pipeline: Pipeline) -> tuple[str, dict[str, Any]]:
    collection = _collection(user)
    created = upload(user, collection, "broken.pdf", CORRUPT_PDF)
    return collection, _settled(user, created["documentId"])


def _failed_for_now(user: Client, collection: str) -> dict[str, Any]:
    with using(embedder=_EmbeddingsDown()):
        created = upload(user, collection, "notes.md", MARKDOWN)
        return _settled(user, created["documentId"])


def test_a_corrupt_upload_fails_not_retryable_and_reindex_is_refused(
    host: str, running_pipeline: Pipeline, admin_conn: Conn
) -> None:
    user = _user(host)
    collection, doc = _failed_for_good(user, running_pipeline)
    assert doc["status"] == "failed" and "pdf" in doc["error"].lower(), doc
    assert doc["retryable"] is False
    (listed,) = user.get(f"/api/collections/{collection}/documents").json()["documents"]
    assert listed["retryable"] is False

    refused = user.post(f"/api/documents/{doc['id']}/reindex")
    assert refused.status == 409, refused.body
    assert "upload the file again" in refused.json()["detail"]
    row = admin_conn.execute("SELECT status, error FROM documents WHERE document_id = %s", (doc["id"],)).fetchone()
    assert row == {"status": "failed", "error": doc["error"]}  # nothing was queued, the reason stays


def test_a_transient_failure_after_the_last_delivery_is_retryable_and_reindex_indexes_it(
    host: str, running_pipeline: Pipeline
) -> None:
    user = _user(host)
    doc = _failed_for_now(user, _collection(user))
    assert doc["status"] == "failed" and "temporary problem" in doc["error"], doc
    assert doc["retryable"] is True

    queued = user.post(f"/api/documents/{doc['id']}/reindex")  # the embedding service is back
    assert queued.status == 202 and queued.json()["status"] == "queued", queued.body
    again = _settled(user, doc["id"])
    assert again["status"] == "ready" and again["chunks"] >= 2, again
    assert again["retryable"] is None and again["error"] is None  # only a failed document has a say


def test_a_file_gone_before_indexing_fails_not_retryable(host: str, admin_conn: Conn) -> None:
    """The job names a blob that no longer exists at all (not replaced by a newer version): permanent."""
    from shared.bootstrap import services
    from shared.config import get_settings
    from shared.indexer import run_job
    from shared.jobs import IndexJob
    from tests.fakes_embedding import HashingEmbedder

    user = _user(host)
    created = user.post(
        f"/api/collections/{_collection(user)}/documents", {"filename": "gone.md", "size": len(MARKDOWN)}
    ).json()
    # As if its upload had been recorded and queued, then the blob deleted before the job ran.
    row = admin_conn.execute(
        "UPDATE documents SET status = 'queued', blob_etag = '0x8DEADBEEF', blob_sequencer = '1'"
        " WHERE document_id = %s RETURNING tenant_id, collection_id, document_id",
        (created["documentId"],),
    ).fetchone()
    assert row is not None
    job = IndexJob("index", row["tenant_id"], row["collection_id"], row["document_id"], "0x8DEADBEEF", "1")
    parts = services()

    outcome = run_job(parts.database, parts.blobs, HashingEmbedder(384), job, settings=get_settings())

    assert outcome.status == "failed"
    doc = user.get(f"/api/documents/{created['documentId']}").json()
    assert doc["status"] == "failed" and doc["retryable"] is False and "upload it again" in doc["error"], doc
    assert user.post(f"/api/documents/{created['documentId']}/reindex").status == 409


_SCRATCH = f"folio_retryable_test_{os.getpid()}"


def test_documents_that_failed_before_the_migration_stay_retryable(
    postgres: local_pg.LocalPostgres | None, tmp_path: Any
) -> None:
    if postgres is None:
        pytest.skip("needs the embedded server to create a scratch database")
    local_pg.ensure_database(postgres, _SCRATCH, app_role="folio_app", recreate=True)
    url = postgres.url(database=_SCRATCH)
    args: dict[str, Any] = {"app_role": "folio_app", "embedding_model": "all-MiniLM-L6-v2", "embedding_dim": 384}
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "0010":
            (tmp_path / path.name).write_bytes(path.read_bytes())
    migrate(url, directory=tmp_path, **args)
    tenant, collection = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (tenant_id, name) VALUES (%s, 't')", (tenant,))
        conn.execute(
            "INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, 'c')", (tenant, collection)
        )
        conn.execute(
            "INSERT INTO documents (tenant_id, document_id, collection_id, filename, blob_path, status, error)"
            " VALUES (%s, %s, %s, 'old.pdf', 'p', 'failed', 'Indexing kept failing')",
            (tenant, uuid.uuid4(), collection),
        )

    assert migrate(url, **args)[:1] == ["0010_failure_retryable"]  # and any later migration

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT retryable FROM documents").fetchall() == [(True,)]


def test_the_web_app_offers_retry_only_for_a_failure_that_retrying_can_fix(
    page: Any, web: str, host: str, running_pipeline: Pipeline
) -> None:
    from playwright.sync_api import expect

    user = _user(host)
    collection, corrupt = _failed_for_good(user, running_pipeline)
    transient = _failed_for_now(user, collection)
    assert (corrupt["retryable"], transient["retryable"]) == (False, True)

    test_web_app._sign_in_as(page, web, user)
    page.goto(f"{web}/collections/{collection}")
    corrupt_row = page.locator("tr", has_text="broken.pdf")
    transient_row = page.locator("tr", has_text="notes.md")
    expect(corrupt_row).to_have_attribute("data-status", "failed")
    expect(transient_row).to_have_attribute("data-status", "failed")
    expect(corrupt_row).to_contain_text(corrupt["error"])
    expect(corrupt_row.get_by_role("button", name="Delete broken.pdf")).to_be_visible()
    expect(corrupt_row.get_by_role("button", name="Retry indexing broken.pdf")).to_have_count(0)

    transient_row.get_by_role("button", name="Retry indexing notes.md").click()
    expect(transient_row).to_have_attribute("data-status", "ready")
    expect(page.locator("[data-announcer]")).to_contain_text("is ready")
