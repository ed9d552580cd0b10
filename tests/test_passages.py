"""GET /api/documents/{id}/chunks/{chunkId}: a passage in context, scoped to the caller's workspace."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.db import Conn
from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.test_ingestion import upload

HANDBOOK = "\n\n".join(
    ["# Staff Handbook"]
    + [
        f"## Part {n} {topic}\n\nThis part is about {topic.lower()}: rule {n} applies to every employee."
        for n, topic in enumerate(["Hours", "Leave", "Travel", "Expenses", "Equipment", "Security", "Exit"], 1)
    ]
).encode()


@pytest.fixture(scope="module")
def handbook(host: str, pipeline: Pipeline) -> dict[str, Any]:
    user = Client(host).as_user(f"passages-{uuid.uuid4().hex[:8]}")
    collection = user.post("/api/collections", {"name": "Handbooks"}).json()["id"]
    created = upload(user, collection, "handbook.md", HANDBOOK, "text/markdown")
    pipeline.settle()
    assert user.get(f"/api/documents/{created['documentId']}").json()["status"] == "ready"
    return {"user": user, "collection": collection, "document": created["documentId"]}


def _chunk_ids(admin_conn: Conn, document_id: str) -> list[int]:
    rows = admin_conn.execute(
        "SELECT chunk_id FROM chunks WHERE document_id = %s ORDER BY ordinal", (document_id,)
    ).fetchall()
    return [r["chunk_id"] for r in rows]


def test_passage_comes_with_its_neighbours_in_document_order(handbook: dict[str, Any], admin_conn: Conn) -> None:
    ids = _chunk_ids(admin_conn, handbook["document"])
    assert len(ids) >= 6
    middle = ids[3]
    response = handbook["user"].get(f"/api/documents/{handbook['document']}/chunks/{middle}")
    assert response.status == 200, response.body
    body = response.json()
    assert body["document"] == {
        "id": handbook["document"],
        "collectionId": handbook["collection"],
        "title": "handbook.md",
        "pages": body["document"]["pages"],
    }
    assert body["passage"]["chunkId"] == str(middle)
    assert [p["chunkId"] for p in body["before"]] == [str(i) for i in ids[1:3]]
    assert [p["chunkId"] for p in body["after"]] == [str(i) for i in ids[4:6]]
    ordinals = [p["ordinal"] for p in body["before"] + [body["passage"]] + body["after"]]
    assert ordinals == sorted(ordinals)
    passage = body["passage"]
    assert passage["text"] and passage["headingPath"] and set(passage["offsets"]) == {"start", "end"}


def test_context_is_limited_by_the_query_and_by_the_document_edges(handbook: dict[str, Any], admin_conn: Conn) -> None:
    ids = _chunk_ids(admin_conn, handbook["document"])
    user, doc = handbook["user"], handbook["document"]
    first = user.get(f"/api/documents/{doc}/chunks/{ids[0]}?context=1").json()
    assert first["before"] == [] and [p["chunkId"] for p in first["after"]] == [str(ids[1])]
    alone = user.get(f"/api/documents/{doc}/chunks/{ids[-1]}?context=0").json()
    assert alone["before"] == alone["after"] == []
    assert user.get(f"/api/documents/{doc}/chunks/{ids[0]}?context=6").status == 400
    assert user.get(f"/api/documents/{doc}/chunks/{ids[0]}?context=x").status == 400


def test_another_workspace_gets_the_same_404_as_a_missing_passage(
    host: str, handbook: dict[str, Any], admin_conn: Conn
) -> None:
    ids = _chunk_ids(admin_conn, handbook["document"])
    path = f"/api/documents/{handbook['document']}/chunks/{ids[0]}"
    stranger = Client(host).as_user(f"stranger-{uuid.uuid4().hex[:8]}")
    denied = stranger.get(path)
    missing = handbook["user"].get(f"/api/documents/{handbook['document']}/chunks/{ids[-1] + 10_000}")
    assert denied.status == missing.status == 404
    assert denied.json()["detail"] == missing.json()["detail"]
    assert Client(host).get(path).status == 401


def test_chunk_of_another_document_and_malformed_ids_are_not_found(handbook: dict[str, Any], admin_conn: Conn) -> None:
    user, doc = handbook["user"], handbook["document"]
    other = upload(user, handbook["collection"], "other.md", b"# Other\n\nAnother document entirely.\n")
    chunk = _chunk_ids(admin_conn, doc)[0]
    assert user.get(f"/api/documents/{other['documentId']}/chunks/{chunk}").status == 404
    for bad in ("abc", "-1", "0", "99999999999999999999", "1e3"):
        assert user.get(f"/api/documents/{doc}/chunks/{bad}").status == 404, bad
    assert user.get(f"/api/documents/not-a-uuid/chunks/{chunk}").status == 404


def test_deleted_document_has_no_passages(host: str, pipeline: Pipeline, admin_conn: Conn) -> None:
    user = Client(host).as_user(f"passages-del-{uuid.uuid4().hex[:8]}")
    collection = user.post("/api/collections", {"name": "Gone"}).json()["id"]
    created = upload(user, collection, "gone.md", HANDBOOK)
    pipeline.settle()
    chunk = _chunk_ids(admin_conn, created["documentId"])[0]
    path = f"/api/documents/{created['documentId']}/chunks/{chunk}"
    assert user.get(path).status == 200
    assert user.delete(f"/api/documents/{created['documentId']}").status == 204
    assert user.get(path).status == 404
