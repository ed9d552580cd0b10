"""Hostile review of GET /api/documents/{id}/content (#19 item 3): a read URL must not outlive the document."""

from __future__ import annotations

import uuid

from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.test_document_content import PDF, _blob
from tests.test_ingestion import upload


def test_a_read_url_handed_out_before_a_delete_reads_nothing_after_it(host: str, pipeline: Pipeline) -> None:
    """The URL is valid for 5 minutes; deleting the document deletes its blob at once, so a URL copied
    out of the app before the delete reads nothing after it, and no new URL is handed out."""
    user = Client(host).as_user(f"content-{uuid.uuid4().hex[:10]}")
    collection = user.post("/api/collections", {"name": "Gone"}).json()["id"]
    document = upload(user, collection, "secret.pdf", PDF, "application/pdf")["documentId"]
    pipeline.settle()
    found = user.get(f"/api/documents/{document}/content")
    assert found.status == 200, found.body
    url = found.json()["url"]
    assert _blob(url)[0] == 200
    assert user.request("DELETE", f"/api/documents/{document}").status == 204
    status, _, body = _blob(url)
    assert status == 404 and PDF not in body
    assert user.get(f"/api/documents/{document}/content").status == 404
