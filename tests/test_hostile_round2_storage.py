"""Hostile review, round two (#17 items 1-3, 9): upload URLs cannot pin or orphan storage.

Each test replays an attack from the review against real Azurite, the local Event Grid stand-in,
the queue and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.bootstrap import services
from shared.db import Conn
from shared.storage import BlobRef
from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.test_ingestion import put_blob


def _user(client: Client) -> Client:
    return client.as_user(f"r2s-{uuid.uuid4().hex[:10]}")


def _collection(user: Client) -> str:
    response = user.post("/api/collections", {"name": f"c-{uuid.uuid4().hex[:6]}"})
    assert response.status == 201, response.body
    return str(response.json()["id"])


def _request_upload(user: Client, collection: str, size: int, filename: str = "note.txt") -> dict[str, Any]:
    response = user.post(
        f"/api/collections/{collection}/documents", {"filename": filename, "contentType": "text/plain", "size": size}
    )
    assert response.status == 201, response.body
    return dict(response.json())


def _blob_name(admin_conn: Conn, document_id: str) -> str:
    row = admin_conn.execute("SELECT blob_path FROM documents WHERE document_id = %s", (document_id,)).fetchone()
    assert row is not None
    return str(row["blob_path"])


def _blob_exists(name: str) -> bool:
    return bool(services().blobs.container.get_blob_client(name).exists())  # type: ignore[attr-defined]


def _lease_with_upload_url(upload: dict[str, Any]) -> str:
    """What the attacker did: take an infinite lease with nothing but the upload URL."""
    from azure.storage.blob import BlobClient

    blob = BlobClient.from_blob_url(upload["uploadUrl"])
    return str(blob.acquire_lease(lease_duration=-1).id)


def test_upload_url_grants_create_only_so_it_cannot_lease_snapshot_or_set_metadata(
    client: Client, admin_conn: Conn
) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobClient

    user = _user(client)
    upload = _request_upload(user, _collection(user), 5)
    assert parse_qs(urlsplit(upload["uploadUrl"]).query)["sp"] == ["c"]
    assert put_blob(upload, b"hello") == 201
    blob = BlobClient.from_blob_url(upload["uploadUrl"])
    with pytest.raises(HttpResponseError) as leased:
        blob.acquire_lease(lease_duration=-1)
    assert leased.value.status_code == 403
    with pytest.raises(HttpResponseError) as tagged:
        blob.set_blob_metadata({"pinned": "yes"})
    assert tagged.value.status_code == 403


def test_delete_breaks_a_lease_then_removes_the_blob_and_the_document_is_404(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    user = _user(client)
    upload = _request_upload(user, _collection(user), 5)
    assert put_blob(upload, b"hello") == 201
    pipeline.settle()
    name = _blob_name(admin_conn, upload["documentId"])
    # A lease as an old upload URL (with write) or anyone else with write access could take.
    services().blobs.container.get_blob_client(name).acquire_lease(lease_duration=-1)  # type: ignore[attr-defined]

    response = user.delete(f"/api/documents/{upload['documentId']}")
    assert response.status == 204, response.body
    assert not _blob_exists(name)
    gone = user.get(f"/api/documents/{upload['documentId']}")
    assert gone.status == 404 and gone.json()["detail"] == "No such document."
    assert user.delete(f"/api/documents/{upload['documentId']}").status == 404


def test_an_upload_url_used_after_its_document_was_deleted_keeps_nothing(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    user = _user(client)
    upload = _request_upload(user, _collection(user), 5)
    assert user.delete(f"/api/documents/{upload['documentId']}").status == 204
    name = _blob_name(admin_conn, upload["documentId"])

    assert put_blob(upload, b"hello") == 201  # the URL is still within its lifetime
    pipeline.settle()
    assert not _blob_exists(name)


def test_oversize_upload_is_refused_and_its_blob_removed_even_after_a_lease_attempt(
    client: Client, pipeline: Pipeline, admin_conn: Conn, settings_override: Any
) -> None:
    settings_override(MAX_UPLOAD_BYTES="50000")
    user = _user(client)
    upload = _request_upload(user, _collection(user), 10)
    assert put_blob(upload, b"x" * 300_000) == 201
    try:
        _lease_with_upload_url(upload)
    except Exception:  # refused since the fix; before it, the lease pinned the blob
        pass
    pipeline.settle()
    document = user.get(f"/api/documents/{upload['documentId']}").json()
    assert document["status"] == "failed" and "limit is 50,000 bytes" in document["error"]
    assert not _blob_exists(_blob_name(admin_conn, upload["documentId"]))


def test_deleting_a_collection_removes_every_blob_in_it(client: Client, pipeline: Pipeline, admin_conn: Conn) -> None:
    user = _user(client)
    collection = _collection(user)
    uploads = [_request_upload(user, collection, 5, f"n{i}.txt") for i in range(3)]
    for upload in uploads:
        assert put_blob(upload, b"hello") == 201
    pipeline.settle()
    names = [_blob_name(admin_conn, u["documentId"]) for u in uploads]
    assert all(_blob_exists(n) for n in names)

    assert user.delete(f"/api/collections/{collection}").status == 204
    assert [n for n in names if _blob_exists(n)] == []
    pipeline.settle()  # the BlobDeleted events find no documents and change nothing
    for upload in uploads:
        assert user.get(f"/api/documents/{upload['documentId']}").status == 404


def test_a_blob_written_for_a_vanished_collection_is_removed_by_its_event(client: Client, pipeline: Pipeline) -> None:
    user = _user(client)
    collection = _collection(user)
    upload = _request_upload(user, collection, 5)
    ref = BlobRef.parse("/".join(urlsplit(upload["uploadUrl"]).path.split("/")[-3:]))
    assert user.delete(f"/api/collections/{collection}").status == 204

    assert put_blob(upload, b"hello") == 201  # the row is gone; the URL still works for minutes
    pipeline.settle()
    assert not _blob_exists(ref.name)


def test_an_upload_url_for_azure_is_https_only_and_create_only() -> None:
    import base64

    from shared.config import load_settings
    from shared.storage import AzureBlobStore

    key = base64.b64encode(b"k" * 32).decode()
    settings = load_settings(
        {
            "STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=folioprod;"
            f"AccountKey={key};EndpointSuffix=core.windows.net"
        }
    )
    url = AzureBlobStore(settings).upload_url(BlobRef(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())).url
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://") and query["spr"] == ["https"] and query["sp"] == ["c"]


class _StorageDownOnDelete:
    """The real store, except that deleting fails as if Blob Storage were unreachable."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def delete(self, ref: BlobRef) -> bool:
        from shared.errors import Unavailable

        raise Unavailable("Blob storage is unavailable.")


def test_a_storage_failure_on_delete_still_deletes_the_document_and_leaves_the_blob_to_the_sweep(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    import datetime as dt

    from shared.blob_sweep import sweep
    from tests.helpers import using

    user = _user(client)
    upload = _request_upload(user, _collection(user), 5)
    assert put_blob(upload, b"hello") == 201
    pipeline.settle()
    name = _blob_name(admin_conn, upload["documentId"])
    with using(blobs=_StorageDownOnDelete(services().blobs)):
        response = user.delete(f"/api/documents/{upload['documentId']}")
    assert response.status == 204, response.body  # was a 503 after the row was already marked deleted
    assert user.get(f"/api/documents/{upload['documentId']}").status == 404
    assert _blob_exists(name)
    report = sweep(
        services().database,
        services().blobs,  # type: ignore[arg-type]
        grace=dt.timedelta(0),
        now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
    )
    assert {"name": name, "size": 5, "reason": "deleted"} in report.removed and not _blob_exists(name)


def test_a_refused_upload_offers_no_reindex_that_can_only_fail_again(
    client: Client, pipeline: Pipeline, settings_override: Any
) -> None:
    settings_override(MAX_UPLOAD_BYTES="50000")
    user = _user(client)
    upload = _request_upload(user, _collection(user), 10)
    assert put_blob(upload, b"x" * 60_000) == 201
    pipeline.settle()
    assert user.get(f"/api/documents/{upload['documentId']}").json()["status"] == "failed"
    again = user.post(f"/api/documents/{upload['documentId']}/reindex")
    assert again.status == 409 and "upload the file again" in again.json()["detail"]
    assert user.get(f"/api/documents/{upload['documentId']}").json()["status"] == "failed"  # nothing queued
