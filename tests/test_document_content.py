"""GET /api/documents/{id}/content: a short-lived read-only SAS URL for exactly the document's blob.

Against Azurite with real SAS tokens: the URL reads the file (served as an attachment, with the type
the SAS fixes), cannot write, delete or read another blob, and stops working when it expires.
"""

from __future__ import annotations

import datetime as dt
import http.client
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.document_content import READ_URL_MINUTES, attachment, document_format
from shared.storage import BlobRef
from tests.helpers import Client
from tests.ingest.fixtures import build_pdf
from tests.pipeline import Pipeline
from tests.test_ingestion import upload

PDF = build_pdf([["Scope", "This agreement covers widgets."], ["Price", "Each widget costs ten euros."]])
HTML = b"<!doctype html><title>Policy</title><h1>Policy</h1><p>Receipts are kept.</p><script>alert(1)</script>"


def _blob(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    """One request to Azurite with the SAS URL; returns (status, lower-cased headers, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        conn.request(method, f"{parts.path}?{parts.query}", body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _user(client: Client) -> Client:
    return client.as_user(f"content-{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def library(host: str, pipeline: Pipeline) -> dict[str, Any]:
    """A workspace with a ready PDF, a ready HTML page, a file that failed, and an upload never made."""
    user = _user(Client(host))
    collection = user.post("/api/collections", {"name": "Originals"}).json()["id"]
    pdf = upload(user, collection, "Supply agreement (v2).pdf", PDF, "application/pdf")["documentId"]
    html = upload(user, collection, "policy.html", HTML, "text/html")["documentId"]
    broken = upload(user, collection, "broken.pdf", b"%PDF-1.7 this is not a PDF", "application/pdf")["documentId"]
    pending = user.post(
        f"/api/collections/{collection}/documents",
        {"filename": "later.pdf", "contentType": "application/pdf", "size": 10},
    ).json()["documentId"]
    pipeline.settle()
    statuses = {d["id"]: d["status"] for d in user.get(f"/api/collections/{collection}/documents").json()["documents"]}
    assert statuses == {pdf: "ready", html: "ready", broken: "failed", pending: "awaiting_upload"}
    return {"user": user, "collection": collection, "pdf": pdf, "html": html, "broken": broken, "pending": pending}


def test_content_url_reads_exactly_the_original_as_an_attachment(library: dict[str, Any]) -> None:
    before = dt.datetime.now(dt.UTC)
    response = library["user"].get(f"/api/documents/{library['pdf']}/content")
    assert response.status == 200, response.body
    assert response.headers["cache-control"] == "no-store"  # the URL is a credential: nothing keeps it
    found = response.json()
    assert found["documentId"] == library["pdf"]
    assert found["filename"] == "Supply agreement (v2).pdf"
    assert found["contentType"] == "application/pdf" and found["format"] == "pdf"
    assert found["size"] == len(PDF) and found["pages"] == 2

    url = urlsplit(found["url"])
    assert url.path.endswith(
        f"/{library['user'].get('/api/me').json()['tenant']['id']}/{library['collection']}/{library['pdf']}"
    )
    sas = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert sas["sp"] == "r"  # read only: no write, create, delete, list or tags
    assert sas["sr"] == "b"  # exactly one blob, not the container
    expires = dt.datetime.fromisoformat(found["expiresAt"])
    assert dt.datetime.fromisoformat(sas["se"].replace("Z", "+00:00")) == expires.replace(microsecond=0)
    assert (
        dt.timedelta(minutes=READ_URL_MINUTES - 1)
        < expires - before
        <= dt.timedelta(minutes=READ_URL_MINUTES, seconds=5)
    )

    status, headers, body = _blob(found["url"])
    assert status == 200 and body == PDF
    assert headers["content-type"] == "application/pdf"
    assert headers["content-disposition"] == (
        "attachment; filename=\"Supply agreement (v2).pdf\"; filename*=UTF-8''Supply%20agreement%20%28v2%29.pdf"
    )


def test_content_url_cannot_write_delete_or_reach_another_blob(library: dict[str, Any]) -> None:
    found = library["user"].get(f"/api/documents/{library['pdf']}/content").json()
    status, _, _ = _blob(found["url"], "PUT", b"replaced", {"x-ms-blob-type": "BlockBlob"})
    assert status == 403
    assert _blob(found["url"], "DELETE")[0] == 403
    assert _blob(found["url"].replace("?", "?comp=metadata&", 1), "PUT", b"", {"x-ms-meta-a": "b"})[0] == 403
    # The signature names the blob: the same token on the HTML document's blob is refused.
    other = found["url"].replace(library["pdf"], library["html"])
    assert _blob(other)[0] == 403
    status, _, body = _blob(found["url"])
    assert status == 200 and body == PDF  # untouched


def test_content_url_stops_working_when_it_expires(library: dict[str, Any]) -> None:
    from shared.bootstrap import services
    from shared.storage import AzureBlobStore

    store = services().blobs
    assert isinstance(store, AzureBlobStore)
    tenant = uuid.UUID(library["user"].get("/api/me").json()["tenant"]["id"])
    ref = BlobRef(tenant, uuid.UUID(library["collection"]), uuid.UUID(library["pdf"]))
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=READ_URL_MINUTES + 1)
    expired = store.read_url(
        ref, minutes=READ_URL_MINUTES, content_type="application/pdf", disposition="attachment", now=past
    )
    assert expired.expires_at < dt.datetime.now(dt.UTC)
    assert _blob(expired.url)[0] == 403
    fresh = store.read_url(ref, minutes=READ_URL_MINUTES, content_type="application/pdf", disposition="attachment")
    assert _blob(fresh.url)[0] == 200  # the same blob, the same key: only the expiry differs


def test_html_is_served_as_plain_text_so_it_never_runs(library: dict[str, Any]) -> None:
    found = library["user"].get(f"/api/documents/{library['html']}/content").json()
    assert found["format"] == "html" and found["contentType"] == "text/html"
    status, headers, body = _blob(found["url"])
    assert status == 200 and body == HTML
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-disposition"].startswith('attachment; filename="policy.html"')


def test_the_web_app_origin_may_read_the_blob_cross_origin(library: dict[str, Any]) -> None:
    """The in-app viewer fetches the original from the web app's origin: Blob Storage's CORS must allow GET."""
    from shared.bootstrap import services
    from shared.storage import AzureBlobStore

    store = services().blobs
    assert isinstance(store, AzureBlobStore)
    origin = "http://127.0.0.1:4280"
    store.allow_browser_uploads((origin,))
    found = library["user"].get(f"/api/documents/{library['pdf']}/content").json()
    status, headers, _ = _blob(found["url"], headers={"Origin": origin})
    assert status == 200 and headers["access-control-allow-origin"] == origin
    status, headers, _ = _blob(
        found["url"], "OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
    )
    assert status == 200 and "GET" in headers["access-control-allow-methods"]
    status, headers, _ = _blob(found["url"], headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers


def test_documents_without_a_readable_original_say_why(library: dict[str, Any], pipeline: Pipeline) -> None:
    user = library["user"]
    failed = user.get(f"/api/documents/{library['broken']}/content")
    assert failed.status == 409 and "could not be indexed" in failed.json()["detail"]
    pending = user.get(f"/api/documents/{library['pending']}/content")
    assert pending.status == 409 and "not been uploaded" in pending.json()["detail"]

    # Ready in the database, but the blob has gone (deleted behind the app's back).
    from shared.bootstrap import services

    gone = upload(user, library["collection"], "gone.md", b"# Gone\n\nSoon not stored.", "text/markdown")
    pipeline.settle()
    tenant = uuid.UUID(user.get("/api/me").json()["tenant"]["id"])
    services().blobs.delete(BlobRef(tenant, uuid.UUID(library["collection"]), uuid.UUID(gone["documentId"])))
    missing = user.get(f"/api/documents/{gone['documentId']}/content")
    assert missing.status == 409 and "no longer stored" in missing.json()["detail"]

    deleted = upload(user, library["collection"], "deleted.md", b"# Deleted\n\nThen removed.", "text/markdown")
    pipeline.settle()
    assert user.delete(f"/api/documents/{deleted['documentId']}").status == 204
    assert user.get(f"/api/documents/{deleted['documentId']}/content").status == 404
    assert user.get(f"/api/documents/{uuid.uuid4()}/content").status == 404
    assert user.get("/api/documents/not-a-uuid/content").status in (400, 404)


def test_another_workspace_gets_the_same_404_as_for_an_unknown_id(library: dict[str, Any], client: Client) -> None:
    other = _user(client)
    not_theirs = other.get(f"/api/documents/{library['pdf']}/content")
    never_existed = other.get(f"/api/documents/{uuid.uuid4()}/content")
    assert not_theirs.status == never_existed.status == 404
    assert not_theirs.json()["detail"] == never_existed.json()["detail"]
    assert "url" not in not_theirs.json()
    # Naming the owner's workspace does not help: the caller is no member of it.
    owner_tenant = library["user"].get("/api/me").json()["tenant"]["id"]
    sneaky = other.with_headers(**{"x-folio-workspace": owner_tenant})
    assert sneaky.get(f"/api/documents/{library['pdf']}/content").status == 404
    assert library["user"].get(f"/api/documents/{library['pdf']}/content").status == 200


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.pdf", "attachment; filename=\"a.pdf\"; filename*=UTF-8''a.pdf"),
        ('q"uote;\\.txt', "attachment; filename=\"q_uote__.txt\"; filename*=UTF-8''q%22uote%3B%5C.txt"),
        ("Überblick.md", "attachment; filename=\"_berblick.md\"; filename*=UTF-8''%C3%9Cberblick.md"),
        ("line\r\nbreak.txt", "attachment; filename=\"line__break.txt\"; filename*=UTF-8''line%0D%0Abreak.txt"),
    ],
)
def test_attachment_names_cannot_break_out_of_the_header(name: str, expected: str) -> None:
    assert attachment(name) == expected


def test_format_comes_from_the_extension() -> None:
    names = ("A.PDF", "b.docx", "c.htm", "d.markdown", "e.txt", "f.csv", "g.pptx", "h.png", "i")
    assert [document_format(n) for n in names] == [
        "pdf",
        "docx",
        "html",
        "markdown",
        "text",
        "text",
        "other",
        "other",
        "other",
    ]


def test_in_azure_the_url_is_a_read_only_https_user_delegation_sas() -> None:
    """The Azure path, offline: Entra (no local form) is replaced by a delegation key the store already holds,
    as it would after its first ``get_user_delegation_key``; the token is then what Blob Storage checks."""
    from azure.storage.blob import UserDelegationKey

    from shared.config import load_settings
    from shared.storage import AzureBlobStore
    from tests.stubs.azure_rest import FakeCredential

    store = AzureBlobStore(
        load_settings({"STORAGE_ACCOUNT_URL": "https://folioacct.blob.core.windows.net"}), credential=FakeCredential()
    )
    key = UserDelegationKey()
    key.signed_oid, key.signed_tid = str(uuid.uuid4()), str(uuid.uuid4())
    key.signed_start, key.signed_expiry = "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"
    key.signed_service, key.signed_version, key.value = "b", "2025-01-05", "a2V5" * 11
    store._delegation_key = key  # what _user_delegation_key keeps after asking Entra-authenticated Storage
    store._delegation_expiry = dt.datetime.max.replace(tzinfo=dt.UTC)
    ref = BlobRef(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)

    read = store.read_url(ref, minutes=5, content_type="application/pdf", disposition=attachment("a b.pdf"), now=now)
    url = urlsplit(read.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"https://folioacct.blob.core.windows.net/uploads/{ref.name}"
    sas = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (sas["sp"], sas["sr"], sas["spr"]) == ("r", "b", "https")
    assert (sas["skoid"], sas["sktid"]) == (key.signed_oid, key.signed_tid)  # signed by the app's identity
    assert "sk" not in sas and "sig" in sas
    assert (sas["st"], sas["se"]) == ("2026-12-02T11:58:00Z", "2026-12-02T12:05:00Z")
    assert read.expires_at == now + dt.timedelta(minutes=5)
    assert sas["rsct"] == "application/pdf" and sas["rscd"] == attachment("a b.pdf")
    # Upload URLs share the helper: same key, create only.
    upload_sas = parse_qs(urlsplit(store.upload_url(ref, now=now).url).query)
    assert upload_sas["sp"] == ["c"] and upload_sas["skoid"] == [key.signed_oid] and "rscd" not in upload_sas
