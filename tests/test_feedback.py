"""Answer feedback over real HTTP, the Cosmos DB emulator and PostgreSQL: stored on the message and as a row,
changeable and removable by its author only, shown after a reload, gone with its conversation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.db import Conn
from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.test_chat import CONTRACT, chat
from tests.test_ingestion import upload
from tests.test_invitations import invite_and_accept
from tests.test_web_app import (  # noqa: F401 - the browser fixtures
    Shots,
    _accessibility_problems,
    _sign_in_as,
    _wait_ready,
    browser,
    built_app,
    chromium,
    page,
    web,
)


@pytest.fixture(scope="module", autouse=True)
def _chat_store(cosmos: str) -> None:
    """Every test here needs the Cosmos DB emulator running."""


@pytest.fixture(scope="module")
def world(host: str, running_pipeline: Pipeline) -> dict[str, Any]:
    """Workspace A (owner ann, member carl) with a contract; workspace B (bea)."""
    base = Client(host)
    tag = uuid.uuid4().hex[:8]
    ann = base.as_user(f"ann-{tag}", email=f"ann-{tag}@example.com")
    carl = base.as_user(f"carl-{tag}", email=f"carl-{tag}@example.com")
    bea = base.as_user(f"bea-{tag}", email=f"bea-{tag}@example.com")
    tenant_a = ann.get("/api/me").json()["tenant"]["id"]
    bea.get("/api/me")
    carl.get("/api/me")
    invite_and_accept(ann, carl, f"carl-{tag}@example.com", "member")
    legal = ann.post("/api/collections", {"name": "legal"}).json()["id"]
    contract = upload(ann, legal, "supply.md", CONTRACT)["documentId"]
    _wait_ready(ann, contract)
    return {
        "ann": ann,
        "carl": carl.with_headers(**{"x-folio-workspace": tenant_a}),
        "bea": bea,
        "tenant_a": tenant_a,
        "contract": contract,
    }


def answered(user: Client, question: str = "How many days does the buyer have to pay an invoice?") -> tuple[str, str]:
    """A new conversation with one answer: (session id, the answer's message id)."""
    response, lines = chat(user, question)
    assert response.status == 200, response.body
    return lines[0]["sessionId"], lines[-1]["messageId"]


def feedback_url(session: str, message: str) -> str:
    return f"/api/chat/sessions/{session}/messages/{message}/feedback"


def put(user: Client, session: str, message: str, body: dict[str, Any]) -> Any:
    return user.request("PUT", feedback_url(session, message), json_body=body)


def shown_feedback(user: Client, session: str, message: str) -> Any:
    reloaded = user.get(f"/api/chat/sessions/{session}")
    assert reloaded.status == 200, reloaded.body
    [found] = [m for m in reloaded.json()["messages"] if m["id"] == message]
    return found["feedback"]


def feedback_row(admin_conn: Conn, tenant: str, message: str) -> dict[str, Any] | None:
    return admin_conn.execute(
        "SELECT rating, reason, comment, question, answer, citations, author FROM answer_feedback"
        " WHERE tenant_id = %s AND message_id = %s",
        (tenant, message),
    ).fetchone()


def test_thumbs_up_then_down_with_a_reason_is_kept_on_the_message_and_as_a_row(
    world: dict[str, Any], admin_conn: Conn
) -> None:
    ann = world["ann"]
    session, message = answered(ann)
    assert shown_feedback(ann, session, message) is None

    up = put(ann, session, message, {"rating": "up"})
    assert up.status == 200, up.body
    assert up.json()["rating"] == "up" and up.json()["reason"] is None
    assert shown_feedback(ann, session, message)["rating"] == "up"
    row = feedback_row(admin_conn, world["tenant_a"], message)
    assert row is not None and row["rating"] == "up"
    assert row["question"] is None and row["answer"] is None  # only a thumbs down keeps texts for review

    down = put(ann, session, message, {"rating": "down", "reason": "incomplete", "comment": "  Misses the interest.  "})
    assert down.status == 200, down.body
    after_reload = shown_feedback(ann, session, message)
    assert after_reload["rating"] == "down"
    assert after_reload["reason"] == "incomplete" and after_reload["comment"] == "Misses the interest."
    row = feedback_row(admin_conn, world["tenant_a"], message)
    assert row is not None and (row["rating"], row["reason"]) == ("down", "incomplete")
    assert row["question"] == "How many days does the buyer have to pay an invoice?"
    assert "thirty days" in row["answer"]
    assert row["citations"] and {c["documentId"] for c in row["citations"]} == {world["contract"]}
    assert admin_conn.execute(
        "SELECT count(*) AS n FROM answer_feedback WHERE tenant_id = %s AND message_id = %s",
        (world["tenant_a"], message),
    ).fetchone() == {"n": 1}


def test_the_author_removes_feedback_and_removing_twice_is_fine(world: dict[str, Any], admin_conn: Conn) -> None:
    ann = world["ann"]
    session, message = answered(ann)
    assert put(ann, session, message, {"rating": "down", "reason": "wrong"}).status == 200
    assert ann.delete(feedback_url(session, message)).status == 204
    assert shown_feedback(ann, session, message) is None
    assert feedback_row(admin_conn, world["tenant_a"], message) is None
    assert ann.delete(feedback_url(session, message)).status == 204


def test_only_the_author_can_rate_change_or_remove_an_answer(world: dict[str, Any], admin_conn: Conn) -> None:
    ann, carl, bea = world["ann"], world["carl"], world["bea"]
    session, message = answered(carl)  # a member's answer; ann owns the workspace, bea another one
    assert put(carl, session, message, {"rating": "up"}).status == 200
    for other in (ann, bea, bea.with_headers(**{"x-folio-workspace": world["tenant_a"]})):
        tried = put(other, session, message, {"rating": "down", "reason": "wrong", "comment": "not mine"})
        assert tried.status in (404, 403), tried.body  # 403: bea is not in workspace A at all
        assert other.delete(feedback_url(session, message)).status in (404, 403)
    assert shown_feedback(carl, session, message)["rating"] == "up"
    row = feedback_row(admin_conn, world["tenant_a"], message)
    assert row is not None and row["rating"] == "up" and row["comment"] is None


def test_an_api_key_rates_its_own_answers_only(world: dict[str, Any], host: str) -> None:
    created = world["ann"].post("/api/apikeys", {"name": "bot", "role": "member"})
    assert created.status == 201, created.body
    robot = Client(host).with_headers(authorization=f"ApiKey {created.json()['key']}")
    session, message = answered(robot)
    assert put(robot, session, message, {"rating": "down", "reason": "not_grounded"}).status == 200
    assert put(world["ann"], session, message, {"rating": "up"}).status == 404
    mine_session, mine = answered(world["ann"])
    assert put(robot, mine_session, mine, {"rating": "up"}).status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"rating": "sideways"},
        {"rating": "down", "reason": "boring"},
        {"rating": "up", "reason": "wrong"},
        {"rating": "up", "comment": "great"},
        {"rating": "up", "comment": "   "},
        {"rating": "down", "reason": "other", "comment": "x" * 501},
        {"rating": "down", "extra": 1},
        {},
    ],
)
def test_malformed_feedback_is_a_400(world: dict[str, Any], body: dict[str, Any]) -> None:
    session, message = world.setdefault("rated", answered(world["ann"]))
    response = put(world["ann"], session, message, body)
    assert response.status == 400, response.body
    assert shown_feedback(world["ann"], session, message) is None


def test_questions_unknown_and_foreign_message_ids_take_no_feedback(world: dict[str, Any]) -> None:
    ann = world["ann"]
    session, message = answered(ann)
    other_session, _ = answered(ann, "What is the cure period for termination?")
    question = message[:-5] + f"{int(message[-5:]) - 1:05d}"
    assert put(ann, session, question, {"rating": "up"}).status == 400  # the user's own question
    assert put(ann, session, message[:-5] + "00099", {"rating": "up"}).status == 404
    assert put(ann, other_session, message, {"rating": "up"}).status == 404  # id of another session
    assert put(ann, session, "not-a-message", {"rating": "up"}).status == 404
    assert put(ann, str(uuid.uuid4()), message, {"rating": "up"}).status == 404


def test_deleting_a_conversation_drops_its_feedback_rows(world: dict[str, Any], admin_conn: Conn) -> None:
    ann = world["ann"]
    session, message = answered(ann)
    assert put(ann, session, message, {"rating": "down", "reason": "other", "comment": "private remark"}).status == 200
    assert feedback_row(admin_conn, world["tenant_a"], message) is not None
    assert ann.delete(f"/api/chat/sessions/{session}").status == 204
    assert feedback_row(admin_conn, world["tenant_a"], message) is None


# --- in the browser ------------------------------------------------------------------------------


def test_the_chat_view_rates_an_answer_and_shows_the_rating_after_a_reload(
    page: Any,  # noqa: F811 - the browser fixtures imported above
    web: str,  # noqa: F811
    world: dict[str, Any],
) -> None:
    from playwright.sync_api import expect

    shot = Shots("feedback")
    ann = world["ann"]
    session, message = answered(ann)
    _sign_in_as(page, web, ann)
    page.goto(f"{web}/chat/{session}")
    answer = page.locator(".message-assistant").last
    good, bad = answer.get_by_role("button", name="Good answer"), answer.get_by_role("button", name="Bad answer")
    expect(bad).to_have_attribute("aria-pressed", "false")
    expect(good).to_have_attribute("aria-pressed", "false")

    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    answer.get_by_label("It is incomplete").check()
    answer.get_by_label("Anything to add? (optional)").fill("It leaves out the late payment interest.")
    shot(page, "reason")
    assert _accessibility_problems(page) == []
    answer.get_by_role("button", name="Send feedback").click()
    expect(answer.get_by_role("status")).to_have_text("You rated this answer unhelpful: it is incomplete.")
    assert shown_feedback(ann, session, message) | {"updatedAt": None} == {
        "rating": "down",
        "reason": "incomplete",
        "comment": "It leaves out the late payment interest.",
        "updatedAt": None,
    }

    page.reload()
    answer = page.locator(".message-assistant").last
    good, bad = answer.get_by_role("button", name="Good answer"), answer.get_by_role("button", name="Bad answer")
    expect(bad).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_role("status")).to_have_text("You rated this answer unhelpful: it is incomplete.")
    shot(page, "after-reload")

    good.click()  # changes it
    expect(good).to_have_attribute("aria-pressed", "true")
    expect(bad).to_have_attribute("aria-pressed", "false")
    assert shown_feedback(ann, session, message)["rating"] == "up"
    good.click()  # pressing it again takes it off
    expect(good).to_have_attribute("aria-pressed", "false")
    expect(answer.get_by_role("status")).to_have_text("")
    assert shown_feedback(ann, session, message) is None


def test_a_streamed_answer_takes_feedback_as_soon_as_it_is_done(
    page: Any,  # noqa: F811 - the browser fixtures imported above
    web: str,  # noqa: F811
    world: dict[str, Any],
) -> None:
    from playwright.sync_api import expect

    ann = world["ann"]
    _sign_in_as(page, web, ann)
    page.goto(f"{web}/chat")
    box = page.get_by_label("Ask a question about your documents")
    box.fill("What is the cure period for termination?")
    box.press("Enter")
    answer = page.locator(".message-assistant").last
    good = answer.get_by_role("button", name="Good answer")
    good.click()
    expect(good).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_role("status")).to_have_text("You rated this answer helpful.")
    session = page.url.rsplit("/", 1)[-1]
    messages = ann.get(f"/api/chat/sessions/{session}").json()["messages"]
    assert [m["feedback"]["rating"] for m in messages if m["role"] == "assistant"] == ["up"]


def test_deleting_a_conversation_again_drops_ratings_a_failed_delete_left_behind(
    world: dict[str, Any], admin_conn: Conn
) -> None:
    """The session went, then the database failed before its ratings did: the retried DELETE (a 404) drops them."""
    ann = world["ann"]
    user_id = ann.get("/api/me").json()["user"]["id"]
    gone = str(uuid.uuid4())
    admin_conn.execute(
        "INSERT INTO answer_feedback (tenant_id, message_id, session_id, author, rating, asked_at)"
        " VALUES (%s, %s, %s, %s, 'down', now())",
        (world["tenant_a"], f"{gone}-00002", gone, user_id),
    )
    assert world["carl"].delete(f"/api/chat/sessions/{gone}").status == 404  # not carl's: his delete drops nothing
    assert feedback_row(admin_conn, world["tenant_a"], f"{gone}-00002") is not None
    assert ann.delete(f"/api/chat/sessions/{gone}").status == 404
    assert feedback_row(admin_conn, world["tenant_a"], f"{gone}-00002") is None
