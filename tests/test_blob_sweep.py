"""The orphan sweep (#17): blobs with no live document are deleted and reported; live ones stay."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from shared.blob_sweep import SweepableBlobs, grace_period, sweep
from shared.bootstrap import services
from shared.db import Conn
from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.test_ingestion import put_blob


def _container() -> Any:
    return services().blobs.container  # type: ignore[attr-defined]


def _exists(name: str) -> bool:
    return bool(_container().get_blob_client(name).exists())


def _upload(user: Client, collection: str, data: bytes, declared: int | None = None) -> dict[str, Any]:
    created = user.post(
        f"/api/collections/{collection}/documents",
        {"filename": "a.txt", "contentType": "text/plain", "size": declared or len(data)},
    ).json()
    assert put_blob(created, data) == 201
    return dict(created)


def test_sweep_removes_orphaned_deleted_and_unbilled_blobs_and_keeps_live_and_young_ones(
    client: Client, pipeline: Pipeline, admin_conn: Conn
) -> None:
    user = client.as_user(f"sweep-{uuid.uuid4().hex[:8]}")
    collection = user.post("/api/collections", {"name": "swept"}).json()["id"]
    live = _upload(user, collection, b"live text")
    deleted = _upload(user, collection, b"deleted text")
    unbilled = _upload(user, collection, b"u" * 300, declared=10)
    pipeline.settle()
    names = {
        key: admin_conn.execute(
            "SELECT blob_path FROM documents WHERE document_id = %s", (doc["documentId"],)
        ).fetchone()["blob_path"]  # type: ignore[index]
        for key, doc in {"live": live, "deleted": deleted, "unbilled": unbilled}.items()
    }
    # What the request-time deletions can miss: a deleted row whose blob stayed, a refused upload (billed
    # as declared, 10 bytes) whose blob stayed, and blobs no row knows (a lost event, a collection deleted mid-outage).
    admin_conn.execute("UPDATE documents SET status = 'deleted' WHERE document_id = %s", (deleted["documentId"],))
    admin_conn.execute(
        "UPDATE documents SET status = 'failed', error = 'too big', size_bytes = 10 WHERE document_id = %s",
        (unbilled["documentId"],),
    )
    _container().upload_blob(names["deleted"], b"deleted text", overwrite=True)
    _container().upload_blob(names["unbilled"], b"u" * 300, overwrite=True)
    tenant, collection_id, _ = names["live"].split("/")
    orphan = f"{tenant}/{collection_id}/{uuid.uuid4()}"
    stranger = f"{uuid.uuid4()}/{uuid.uuid4()}/{uuid.uuid4()}"
    foreign = f"not-folio/{uuid.uuid4().hex}.bin"
    for name in (orphan, stranger, foreign):
        _container().upload_blob(name, b"orphan bytes", overwrite=True)

    blobs = services().blobs
    assert isinstance(blobs, SweepableBlobs)
    young = sweep(services().database, blobs, grace=dt.timedelta(hours=1))
    assert all(_exists(n) for n in (*names.values(), orphan, stranger, foreign)) and young.too_new >= 6

    report = sweep(services().database, blobs, grace=dt.timedelta(0), now=dt.datetime.now(dt.UTC) + dt.timedelta(1))
    removed = {r["name"]: r for r in report.removed}
    assert removed[names["deleted"]]["reason"] == "deleted"
    assert removed[names["unbilled"]] == {"name": names["unbilled"], "size": 300, "reason": "unbilled"}
    assert removed[orphan]["reason"] == "no-document" and removed[stranger]["reason"] == "no-document"
    assert names["live"] not in removed and _exists(names["live"])
    assert foreign in report.foreign and _exists(foreign)
    assert not any(_exists(n) for n in (names["deleted"], names["unbilled"], orphan, stranger))
    summary = report.as_dict()
    assert summary["removed"] == len(report.removed) and summary["removedBytes"] >= 300 + 12 + 12 + 12
    _container().delete_blob(foreign)


def test_grace_outlives_an_upload_url() -> None:
    assert grace_period(10) == dt.timedelta(minutes=70)


def test_the_sweep_runs_hourly_as_a_timer_function() -> None:
    import function_app
    from devhost.functions import registrations

    timers = {r.name: r for r in registrations(function_app.app) if r.trigger_type == "timerTrigger"}
    assert timers["blob_sweep"].trigger["schedule"] == "0 17 * * * *"
