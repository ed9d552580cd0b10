"""Hostile review, round two (#17 item 7): body-less POSTs are out of reach of cross-site form posts."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.test_ingestion import upload

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def ready_document(client: Client, pipeline: Pipeline) -> tuple[Client, str]:
    user = client.as_user(f"r2h-{uuid.uuid4().hex[:10]}")
    collection = user.post("/api/collections", {"name": "csrf"}).json()["id"]
    document = upload(user, collection, "a.md", b"# Title\n\nSome text worth indexing.\n")["documentId"]
    pipeline.settle()
    assert user.get(f"/api/documents/{document}").json()["status"] == "ready"
    return user, document


@pytest.mark.parametrize(
    "headers",
    [
        FORM,  # <form method=post> with no fields: still a form post, with an empty body
        {"Content-Type": "text/plain"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {"Sec-Fetch-Site": "cross-site"},  # fetch(..., {mode: "no-cors", credentials: "include"})
    ],
)
def test_a_cross_site_post_riding_on_the_sign_in_changes_nothing(
    ready_document: tuple[Client, str], headers: dict[str, str]
) -> None:
    user, document = ready_document
    response = user.request("POST", f"/api/documents/{document}/reindex", body=b"", headers=headers)
    assert response.status in (403, 415), response.body
    assert user.get(f"/api/documents/{document}").json()["status"] == "ready"  # not queued again
    portal = user.request("POST", "/api/billing/portal", body=b"", headers=headers)
    assert portal.status in (403, 415)


def test_the_web_apps_own_post_and_api_key_callers_still_work(
    client: Client, ready_document: tuple[Client, str]
) -> None:
    user, document = ready_document
    same_origin = user.request("POST", f"/api/documents/{document}/reindex", headers={"Sec-Fetch-Site": "same-origin"})
    assert same_origin.status == 202, same_origin.body
    # The frontend's body-less POST: no Content-Type at all.
    key = user.post("/api/apikeys", {"name": "ci", "role": "member"}).json()["key"]
    robot = Client(client.base_url, {"Authorization": f"ApiKey {key}"})
    collection = robot.post("/api/collections", {"name": "by key"})
    assert collection.status == 201
    # curl -d '' sends a form type; with Authorization it cannot have come from another site.
    assert robot.request("POST", f"/api/documents/{document}/reindex", body=b"", headers=FORM).status in (202, 409)
