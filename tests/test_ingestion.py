"""Ingestion end to end: upload by SAS to a real Azurite, events, the queue, the indexer, PostgreSQL."""

from __future__ import annotations

import http.client
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.config import get_settings
from shared.db import Conn
from tests.fakes_embedding import HashingEmbedder
from tests.helpers import Client, using
from tests.ingest.fixtures import build_pdf, zip_bomb
from tests.pipeline import Pipeline

MARKDOWN = b"""# Master Services Agreement

## Article 1 Definitions

Section 1.1 "Services" means the consulting services described in each Statement of Work.

Section 1.2 "Deliverables" means the work product the Supplier hands over.

## Article 2 Fees

The Customer pays the fees within thirty days of each invoice. Late payments accrue interest.
"""


def _user(client: Client) -> Client:
    return client.as_user(f"ingest-{uuid.uuid4().hex[:10]}")


def _collection(user: Client) -> str:
    return user.post("/api/collections", {"name": f"c-{uuid.uuid4().hex[:6]}"}).json()["id"]


def put_blob(upload: dict[str, Any], data: bytes) -> int:
    """What the browser does: PUT the bytes straight to Blob Storage with the SAS URL."""
    url = urlsplit(upload["uploadUrl"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("PUT", f"{url.path}?{url.query}", body=data, headers=upload["headers"])
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def overwrite(created: dict[str, Any], data: bytes) -> None:
    """A new version of an uploaded blob. Upload URLs create only (#17), so only the app can do this."""
    from shared.bootstrap import services

    name = "/".join(urlsplit(created["uploadUrl"]).path.split("/")[-3:])
    services().blobs.container.upload_blob(name, data, overwrite=True)  # type: ignore[attr-defined]


def upload(user: Client, collection: str, filename: str, data: bytes, content_type: str = "") -> dict[str, Any]:
    response = user.post(
        f"/api/collections/{collection}/documents",
        {"filename": filename, "contentType": content_type, "size": len(data)},
    )
    assert response.status == 201, response.body
    created = response.json()
    assert put_blob(created, data) == 201
    return created


def chunks_of(admin_conn: Conn, document_id: str) -> list[dict[str, Any]]:
    return admin_conn.execute(
        "SELECT ordinal, heading_path, body, page_start, page_end, char_start, char_end, content_hash,"
        " embedding IS NOT NULL AS embedded, tsv <> ''::tsvector AS searchable"
        " FROM chunks WHERE document_id = %s ORDER BY ordinal",
        (document_id,),
    ).fetchall()


def test_upload_by_sas_reaches_ready_with_structured_chunks(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    user = _user(client)
    collection = _collection(user)
    created = upload(user, collection, "msa.md", MARKDOWN, "text/markdown")
    assert created["expiresAt"] and "sig=" in created["uploadUrl"]
    assert user.get(f"/api/documents/{created['documentId']}").json()["status"] == "awaiting_upload"

    pipeline.settle()
    doc = user.get(f"/api/documents/{created['documentId']}").json()
    assert doc["status"] == "ready", doc
    assert doc["chunks"] >= 2 and doc["error"] is None and doc["indexedAt"]
    chunks = chunks_of(admin_conn, created["documentId"])
    assert len(chunks) == doc["chunks"]
    paths = [c["heading_path"] for c in chunks]
    assert any("Article 2 Fees" in p for p in paths)
    assert all(c["embedded"] and c["searchable"] for c in chunks)
    listed = user.get(f"/api/collections/{collection}/documents").json()["documents"]
    assert [d["id"] for d in listed] == [created["documentId"]]


def test_pdf_chunks_keep_page_ranges(client: Client, pipeline: Pipeline, admin_conn: Conn) -> None:
    user = _user(client)
    pdf = build_pdf(
        [
            ["Section 1 Scope", "This agreement covers the supply of widgets."],
            ["Section 2 Price", "Each widget costs ten euros."],
            ["Section 3 Term", "The agreement lasts two years."],
        ]
    )
    created = upload(user, _collection(user), "contract.pdf", pdf, "application/pdf")
    pipeline.settle()
    doc = user.get(f"/api/documents/{created['documentId']}").json()
    assert doc["status"] == "ready" and doc["pages"] == 3, doc
    chunks = chunks_of(admin_conn, created["documentId"])
    price = next(c for c in chunks if "ten euros" in c["body"])
    assert price["page_start"] == price["page_end"] == 2


def test_duplicate_event_and_duplicate_message_index_once(client: Client, pipeline: Pipeline, admin_conn: Conn) -> None:
    user = _user(client)
    created = upload(user, _collection(user), "dup.md", MARKDOWN)
    pipeline.settle()
    event = pipeline.events.delivered[-1]
    assert event.subject.endswith(created["documentId"])
    before = chunks_of(admin_conn, created["documentId"])
    indexed_at = user.get(f"/api/documents/{created['documentId']}").json()["indexedAt"]

    pipeline.events.deliver(event)  # Event Grid redelivers the same event
    pipeline.events.deliver(event)
    pipeline.worker.drain()
    # The same job delivered again (Service Bus at-least-once): a no-op.
    body = {
        "v": 1,
        "kind": "index",
        "tenantId": event.subject.split("/")[-3],
        "collectionId": event.subject.split("/")[-2],
        "documentId": created["documentId"],
        "etag": event.get_json()["eTag"],
        "sequencer": event.get_json()["sequencer"],
    }
    import datetime as dt

    from devhost.http_server import invoke
    from devhost.local_queue import ReceivedMessage
    from devhost.servicebus import to_function_message

    message = ReceivedMessage("again", body, 2, str(uuid.uuid4()), dt.datetime.now(dt.UTC), 1)
    invoke(pipeline.worker._registration, to_function_message(message, 60))

    after = chunks_of(admin_conn, created["documentId"])
    assert after == before
    assert user.get(f"/api/documents/{created['documentId']}").json()["indexedAt"] == indexed_at


def test_overwriting_twice_quickly_keeps_only_the_latest_version(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    user = _user(client)
    created = upload(user, _collection(user), "v.md", b"# Version one\n\nThe first text about apples.\n")
    pipeline.events.poll_once()  # v1's event queued, not yet indexed
    overwrite(created, b"# Version two\n\nThe second text about pears.\n")
    overwrite(created, b"# Version three\n\nThe third text about plums.\n")
    pipeline.settle()
    bodies = " ".join(c["body"] for c in chunks_of(admin_conn, created["documentId"]))
    assert "plums" in bodies and "apples" not in bodies and "pears" not in bodies
    assert user.get(f"/api/documents/{created['documentId']}").json()["status"] == "ready"


def test_out_of_order_events_never_roll_back_a_newer_version(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    user = _user(client)
    created = upload(user, _collection(user), "order.md", b"# Old\n\nOld text about bananas.\n")
    pipeline.settle()
    old_event = pipeline.events.delivered[-1]
    overwrite(created, b"# New\n\nNew text about cherries.\n")
    pipeline.settle()
    pipeline.events.deliver(old_event)  # a late, older event arrives
    pipeline.worker.drain()
    bodies = " ".join(c["body"] for c in chunks_of(admin_conn, created["documentId"]))
    assert "cherries" in bodies and "bananas" not in bodies


def test_delete_removes_document_chunks_and_blob(client: Client, pipeline: Pipeline, admin_conn: Conn) -> None:
    user = _user(client)
    collection = _collection(user)
    created = upload(user, collection, "gone.md", MARKDOWN)
    pipeline.settle()
    assert chunks_of(admin_conn, created["documentId"])
    assert user.delete(f"/api/documents/{created['documentId']}").status == 204
    assert chunks_of(admin_conn, created["documentId"]) == []
    pipeline.settle()  # the BlobDeleted event and its removal job
    assert user.get(f"/api/documents/{created['documentId']}").status == 404
    row = admin_conn.execute(
        "SELECT status, chunk_count FROM documents WHERE document_id = %s", (created["documentId"],)
    ).fetchone()
    assert row == {"status": "deleted", "chunk_count": 0}
    assert user.get(f"/api/collections/{collection}/documents").json()["documents"] == []
    assert user.delete(f"/api/documents/{created['documentId']}").status == 404


def test_crash_mid_write_leaves_no_partial_document_and_retry_succeeds(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    from shared.bootstrap import services
    from shared.indexer import run_job
    from shared.jobs import IndexJob

    user = _user(client)
    created = upload(user, _collection(user), "crash.md", MARKDOWN)
    pipeline.events.poll_once()
    queued = pipeline.worker.queue.receive(1, 60)[0]
    job = IndexJob.from_body(queued.body)

    def crash(written: int) -> None:
        assert chunks_of(admin_conn, created["documentId"]) == []  # not visible outside the transaction
        raise RuntimeError(f"worker died after writing {written} chunks")

    with pytest.raises(RuntimeError):
        run_job(
            services().database,
            services().blobs,
            services().embedder,
            job,
            after_chunks_written=crash,
            settings=get_settings(),
        )
    assert chunks_of(admin_conn, created["documentId"]) == []
    assert user.get(f"/api/documents/{created['documentId']}").json()["status"] == "processing"
    pipeline.worker.queue.abandon(queued, "crash")  # what the host does when the function raises
    pipeline.settle()
    doc = user.get(f"/api/documents/{created['documentId']}").json()
    assert doc["status"] == "ready" and len(chunks_of(admin_conn, created["documentId"])) == doc["chunks"]


@pytest.mark.parametrize(
    "filename, data, reason",
    [
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a pdf at all", "PDF"),
        ("bomb.docx", zip_bomb(64 * 1024 * 1024), "decompression bomb"),
        ("empty.txt", b"   \n\n  ", "no text"),
        ("binary.txt", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "cannot index"),
    ],
    ids=["corrupt-pdf", "docx-zip-bomb", "empty", "binary"],
)
def test_bad_files_fail_with_a_clear_reason_and_nothing_else_is_affected(
    client: Client, pipeline: Pipeline, admin_conn: Conn, filename: str, data: bytes, reason: str
) -> None:
    user = _user(client)
    collection = _collection(user)
    good = upload(user, collection, "good.md", MARKDOWN)
    bad = upload(user, collection, filename, data)
    pipeline.settle()
    failed = user.get(f"/api/documents/{bad['documentId']}").json()
    assert failed["status"] == "failed", failed
    assert reason.lower() in failed["error"].lower(), failed["error"]
    assert chunks_of(admin_conn, bad["documentId"]) == []
    assert user.get(f"/api/documents/{good['documentId']}").json()["status"] == "ready"
    assert pipeline.worker.queue.dead_letters() == [] or all(
        d.body.get("documentId") != bad["documentId"] for d in pipeline.worker.queue.dead_letters()
    )


def test_blob_larger_than_declared_limit_fails_at_indexing(
    client: Client, pipeline: Pipeline, settings_override: Any
) -> None:
    user = _user(client)
    created = user.post(
        f"/api/collections/{_collection(user)}/documents", {"filename": "small.txt", "contentType": "", "size": 4}
    ).json()
    assert put_blob(created, b"word " * 5000) == 201  # the SAS cannot cap size; the indexer must
    settings_override(MAX_UPLOAD_BYTES="10000")
    pipeline.settle()
    doc = user.get(f"/api/documents/{created['documentId']}").json()
    assert doc["status"] == "failed" and "limit" in doc["error"]
    # Refused when its upload event arrived: indexing it again would fail the same way.
    assert doc["retryable"] is False
    assert user.post(f"/api/documents/{created['documentId']}/reindex").status == 409


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"filename": "x.exe", "size": 10}, "not supported"),
        ({"filename": "x.pdf", "size": 0}, "at least 1"),
        ({"filename": "x.pdf", "size": 10**12}, "limit"),
        ({"filename": "x.pdf", "contentType": "text/html", "size": 10}, "does not match"),
        ({"filename": "../../etc/passwd.txt", "size": 10}, "not a path"),
        ({"filename": "x.pdf", "size": "10"}, "integer"),
        ({"filename": "x.pdf", "size": 10, "path": "/tmp"}, "Unknown field"),
    ],
)
def test_upload_requests_are_validated(client: Client, body: dict[str, Any], detail: str) -> None:
    user = _user(client)
    response = user.post(f"/api/collections/{_collection(user)}/documents", body)
    assert response.status == 400
    assert detail in response.json()["detail"]


def test_sas_url_is_scoped_to_one_blob_and_write_only(client: Client) -> None:
    user = _user(client)
    created = user.post(f"/api/collections/{_collection(user)}/documents", {"filename": "a.txt", "size": 5}).json()
    url = urlsplit(created["uploadUrl"])
    other_path = url.path.rsplit("/", 1)[0] + "/" + str(uuid.uuid4())
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("PUT", f"{other_path}?{url.query}", body=b"hello", headers=created["headers"])
    assert conn.getresponse().status == 403
    conn.close()
    assert put_blob(created, b"hello") == 201
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", f"{url.path}?{url.query}")
    assert conn.getresponse().status == 403  # create/write only: no reading back
    conn.close()


def test_another_tenant_cannot_see_upload_or_delete_a_document(client: Client, pipeline: Pipeline) -> None:
    a, b = _user(client), _user(client)
    collection = _collection(a)
    created = upload(a, collection, "private.md", MARKDOWN)
    pipeline.settle()
    doc_path = f"/api/documents/{created['documentId']}"
    assert b.get(doc_path).status == 404
    assert b.delete(doc_path).status == 404
    assert b.post(f"{doc_path}/reindex").status == 404
    assert b.get(f"/api/collections/{collection}/documents").status == 404
    assert b.post(f"/api/collections/{collection}/documents", {"filename": "x.txt", "size": 3}).status == 404
    assert a.get(doc_path).json()["status"] == "ready"


def test_reindex_requeues_and_rebuilds(client: Client, pipeline: Pipeline, admin_conn: Conn) -> None:
    user = _user(client)
    created = upload(user, _collection(user), "re.md", MARKDOWN)
    pipeline.settle()
    first = user.get(f"/api/documents/{created['documentId']}").json()
    response = user.post(f"/api/documents/{created['documentId']}/reindex")
    assert response.status == 202 and response.json()["status"] == "queued"
    pipeline.settle()
    again = user.get(f"/api/documents/{created['documentId']}").json()
    assert again["status"] == "ready" and again["indexedAt"] > first["indexedAt"]
    assert again["chunks"] == first["chunks"]


def test_transient_failures_retry_then_fail_visibly_and_dead_letter(client: Client, pipeline: Pipeline) -> None:
    from shared.errors import Unavailable

    class Down:
        model_id, dimensions = "down", 384

        def embed(self, texts: Any) -> Any:
            raise Unavailable("embedding service is down")

    user = _user(client)
    created = upload(user, _collection(user), "retry.md", MARKDOWN)
    with using(embedder=Down()):
        pipeline.settle()
    doc = user.get(f"/api/documents/{created['documentId']}").json()
    assert doc["status"] == "failed" and "temporary problem" in doc["error"]
    dead = [d for d in pipeline.worker.queue.dead_letters() if d.body.get("documentId") == created["documentId"]]
    assert len(dead) == 1 and dead[0].delivery_count == 3 and "Unavailable" in (dead[0].description or "")

    assert pipeline.worker.queue.replay(dead[0].message_id)  # the operator's replay, once it is back up
    pipeline.settle()
    assert user.get(f"/api/documents/{created['documentId']}").json()["status"] == "ready"


def test_events_for_other_containers_paths_and_types_are_ignored(pipeline: Pipeline) -> None:
    import datetime as dt

    import azure.functions as func

    from devhost.http_server import invoke

    def event(subject: str, event_type: str = "Microsoft.Storage.BlobCreated") -> func.EventGridEvent:
        return func.EventGridEvent(
            id=str(uuid.uuid4()),
            data={"eTag": "0x1", "sequencer": "01"},
            topic="t",
            subject=subject,
            event_type=event_type,
            event_time=dt.datetime.now(dt.UTC),
            data_version="",
        )

    registration = pipeline.events._registration
    before = pipeline.worker.queue.active_count()
    invoke(registration, event("/blobServices/default/containers/other/blobs/a/b/c"))
    invoke(registration, event("/blobServices/default/containers/uploads/blobs/not/a/document"))
    invoke(registration, event("/somewhere/else"))
    invoke(registration, event("/blobServices/default/containers/uploads/blobs/x", "Microsoft.Storage.BlobTierChanged"))
    assert pipeline.worker.queue.active_count() == before


def test_long_document_is_bulk_loaded_with_every_chunk_in_order(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    from shared.indexer import COPY_THRESHOLD

    sections = "\n\n".join(
        f"## Section {i} Topic {i}\n\n"
        + " ".join(f"Clause {i}.{k} obliges the supplier to report item {k} of topic {i} monthly." for k in range(25))
        for i in range(12)
    )
    user = _user(client)
    created = upload(user, _collection(user), "long.md", f"# Handbook\n\n{sections}\n".encode())
    pipeline.settle()
    doc = user.get(f"/api/documents/{created['documentId']}").json()
    chunks = chunks_of(admin_conn, created["documentId"])
    assert doc["status"] == "ready" and len(chunks) == doc["chunks"] >= COPY_THRESHOLD
    assert [c["ordinal"] for c in chunks] == list(range(len(chunks)))
    assert chunks[-1]["heading_path"][-1].startswith("Section 11")
    assert all(c["embedded"] for c in chunks)


def _sentence_count(admin_conn: Conn, document_id: str) -> int:
    row = admin_conn.execute(
        "SELECT count(*) AS n FROM chunk_sentences s JOIN chunks c USING (tenant_id, chunk_id) WHERE c.document_id = %s",
        (document_id,),
    ).fetchone()
    return int(row["n"]) if row else 0


def test_sentence_vectors_are_stored_only_for_the_extractive_answerer(
    client: Client, pipeline: Pipeline, admin_conn: Conn, settings_override: Any
) -> None:
    """They double the embedding work; a deployment answering with a model never reads them."""
    user = _user(client)
    collection = _collection(user)
    extractive = upload(user, collection, "quoted.md", MARKDOWN)
    pipeline.settle()
    assert _sentence_count(admin_conn, extractive["documentId"]) > 0
    settings_override(CHAT_PROVIDER="openai", OPENAI_API_KEY="sk-test")
    modelled = upload(user, collection, "modelled.md", MARKDOWN)
    pipeline.settle()
    assert len(chunks_of(admin_conn, modelled["documentId"])) > 0
    assert _sentence_count(admin_conn, modelled["documentId"]) == 0


def test_reindex_reuses_embeddings_of_unchanged_chunks(client: Client, pipeline: Pipeline, admin_conn: Conn) -> None:
    class Counting(HashingEmbedder):
        """The same vectors as the fixture's fake, under the index's model id, counting texts."""

        def __init__(self) -> None:
            super().__init__(384, model_id="all-MiniLM-L6-v2")
            self.texts = 0

        def embed(self, texts: Any) -> Any:
            self.texts += len(texts)
            return super().embed(texts)

    counting = Counting()
    with using(embedder=counting):
        user = _user(client)
        created = upload(user, _collection(user), "reuse.md", MARKDOWN)
        pipeline.settle()
        first = counting.texts
        sentences = _sentence_count(admin_conn, created["documentId"])
        assert first == len(chunks_of(admin_conn, created["documentId"])) + sentences > sentences > 0
        user.post(f"/api/documents/{created['documentId']}/reindex")
        pipeline.settle()
        assert counting.texts == first  # nothing changed, nothing re-embedded
        overwrite(created, MARKDOWN + b"\n## Article 3 Notices\n\nNotices go to the registered address.\n")
        pipeline.settle()
        assert 0 < counting.texts - first < len(chunks_of(admin_conn, created["documentId"]))
