"""Restricted collections are a boundary inside a workspace: a member without access gets nothing from any endpoint.

In the style of the tenant isolation suite (tests/test_tenant_isolation.py): real HTTP, real PostgreSQL
with every transaction's context signed, the real indexing pipeline, and the database's own rule
(migration 0013) checked directly with the app's role.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from typing import Any

import psycopg
import pytest

from shared.db import Conn, one
from shared.identity.entra import token_groups
from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.test_ingestion import upload
from tests.test_invitations import invite_and_accept

OPEN_TEXT = b"""# Travel policy

## Trains

Staff travel by train for trips under four hundred kilometres; the alpaca rule covers exceptions.
"""
SECRET_TEXT = b"""# Merger memo

## Project quokka

The quokka zeppelin acquisition closes in March at a price of ninety million euros.
"""
SECRET_WORDS = "quokka zeppelin acquisition"


def _principal(user: str, email: str, groups: list[str] | None = None, *, overage: bool = False) -> str:
    claims = [{"typ": "groups", "val": g} for g in groups or []]
    if overage:  # Entra leaves the groups out and names a Microsoft Graph source instead
        claims = [{"typ": "_claim_names", "val": json.dumps({"groups": "src1"})}]
    payload = {
        "identityProvider": "aad",
        "userId": f"id-{user}",
        "userDetails": email,
        "userRoles": ["anonymous", "authenticated"],
        "claims": claims,
    }
    return base64.b64encode(json.dumps(payload).encode()).decode()


def _person(base: Client, name: str, groups: list[str] | None = None, *, overage: bool = False) -> tuple[Client, str]:
    email = f"{name}@example.com"
    return base.with_headers(**{"x-ms-client-principal": _principal(name, email, groups, overage=overage)}), email


@pytest.fixture(scope="module")
def world(host: str, pipeline: Pipeline) -> dict[str, Any]:
    """Workspace of ann (owner): an open and a restricted collection, each with one indexed document.

    The restricted one names mia and the group `finance`; carl (member) and vic (viewer) are in neither,
    gus is in `finance`, otto is in `finance` too but his token had too many groups to list them.
    """
    base = Client(host)
    tag = uuid.uuid4().hex[:8]
    finance = str(uuid.uuid4())
    ann, _ = _person(base, f"ann-{tag}")
    workspace = ann.get("/api/me").json()["tenant"]["id"]
    people: dict[str, Client] = {}
    ids: dict[str, str] = {}
    for name, role, groups, overage in (
        ("carl", "member", [], False),
        ("vic", "viewer", [], False),
        ("mia", "member", [], False),
        ("gus", "member", [finance], False),
        ("otto", "member", [finance], True),
    ):
        person, email = _person(base, f"{name}-{tag}", groups, overage=overage)
        ids[name] = person.get("/api/me").json()["user"]["id"]
        invite_and_accept(ann, person, email, role)
        people[name] = person.with_headers(**{"x-folio-workspace": workspace})
    key = ann.post("/api/apikeys", {"name": "robot", "role": "member"}).json()["key"]
    people["robot"] = base.with_headers(authorization=f"ApiKey {key}")
    open_id = ann.post("/api/collections", {"name": "Policies"}).json()["id"]
    secret_id = ann.post("/api/collections", {"name": "Mergers"}).json()["id"]
    open_doc = upload(ann, open_id, "travel.md", OPEN_TEXT)["documentId"]
    secret_doc = upload(ann, secret_id, "memo.md", SECRET_TEXT)["documentId"]
    pipeline.settle()
    assert ann.get(f"/api/documents/{secret_doc}").json()["status"] == "ready"
    restricted = ann.request(
        "PUT",
        f"/api/collections/{secret_id}/access",
        json_body={"mode": "restricted", "members": [ids["mia"]], "groups": [finance], "groupLabels": ["Finance"]},
    )
    assert restricted.status == 200, restricted.body
    return {
        "ann": ann,
        **people,
        "ids": ids,
        "workspace": workspace,
        "finance": finance,
        "open": open_id,
        "secret": secret_id,
        "open_doc": open_doc,
        "secret_doc": secret_doc,
        "pipeline": pipeline,
    }


def _chunk(admin_conn: Conn, document_id: str) -> int:
    return int(
        one(
            admin_conn.execute(
                "SELECT min(chunk_id) AS c FROM chunks WHERE document_id = %s", (document_id,)
            ).fetchone()
        )["c"]
    )


def _found_documents(user: Client, query: str, mode: str = "hybrid", **body: Any) -> set[str]:
    response = user.post("/api/search", {"query": query, "mode": mode, **body})
    assert response.status == 200, response.body
    return {r["documentId"] for r in response.json()["results"]}


def _sees(world: dict[str, Any], who: str) -> bool:
    """Whether ``who`` reads the restricted collection (its listing, its document, search)."""
    user = world[who]
    listed = {c["id"] for c in user.get("/api/collections").json()["collections"]}
    status = user.get(f"/api/documents/{world['secret_doc']}").status
    found = world["secret_doc"] in _found_documents(user, SECRET_WORDS)
    assert (world["secret"] in listed) == (status == 200) == found, (who, listed, status, found)
    return found


# --- a caller without access gets nothing ---------------------------------------------------------


@pytest.mark.parametrize("who", ["carl", "vic", "otto", "robot"])
def test_a_caller_without_access_gets_nothing_from_any_endpoint(
    world: dict[str, Any], admin_conn: Conn, who: str
) -> None:
    user, secret, doc = world[who], world["secret"], world["secret_doc"]
    never = str(uuid.uuid4())
    # Collections: not listed, and the same 404 as a collection that never existed.
    listed = {c["id"] for c in user.get("/api/collections").json()["collections"]}
    assert world["open"] in listed and secret not in listed
    hidden, missing = user.get(f"/api/collections/{secret}"), user.get(f"/api/collections/{never}")
    assert hidden.status == missing.status == 404 and hidden.json()["detail"] == missing.json()["detail"]
    assert user.get(f"/api/collections/{secret}/documents").status == 404
    # Document status, passages (search hits and citations open these).
    hidden, missing = user.get(f"/api/documents/{doc}"), user.get(f"/api/documents/{never}")
    assert hidden.status == missing.status == 404 and hidden.json()["detail"] == missing.json()["detail"]
    chunk = _chunk(admin_conn, doc)
    assert user.get(f"/api/documents/{doc}/chunks/{chunk}").status == 404
    assert user.get(f"/api/documents/{doc}/content").status == 404  # the original file's read URL
    # Search, every leg, also when asking for the collection by id.
    for mode in ("hybrid", "lexical", "vector"):
        assert doc not in _found_documents(user, SECRET_WORDS, mode)
        assert _found_documents(user, SECRET_WORDS, mode, collectionIds=[secret]) == set()
        assert _found_documents(user, SECRET_WORDS, mode, filters={"documentIds": [doc]}) == set()
    assert world["open_doc"] in _found_documents(user, "alpaca rule train travel")
    if who != "vic":  # a viewer may not write anywhere; the others get the 404 of a missing collection
        upload_status = user.post(
            f"/api/collections/{secret}/documents", {"filename": "x.md", "contentType": "text/markdown", "size": 5}
        ).status
        assert upload_status == 404
        assert user.post(f"/api/documents/{doc}/reindex").status == 404
        assert user.delete(f"/api/documents/{doc}").status == 404
        assert user.delete(f"/api/collections/{secret}").status == 404
    # Only owners see or change who may read it.
    assert user.get(f"/api/collections/{secret}/access").status == 403
    opened = user.request("PUT", f"/api/collections/{secret}/access", json_body={"mode": "open"})
    assert opened.status == 403
    # Nothing of it changed.
    ann = world["ann"]
    assert ann.get(f"/api/documents/{doc}").json()["status"] == "ready"
    assert ann.get(f"/api/collections/{secret}").json()["access"] == "restricted"


def test_chat_retrieves_and_cites_nothing_from_a_collection_the_caller_may_not_read(
    world: dict[str, Any], cosmos: str
) -> None:
    from tests.test_chat import chat

    question = "What does the merger memo say about the quokka zeppelin acquisition price?"
    for who, may in (("carl", False), ("robot", False), ("mia", True), ("ann", True)):
        response, lines = chat(world[who], question)
        assert response.status == 200, response.body
        cited = {c["documentId"] for e in lines if e["type"] == "citations" for c in e["citations"]}
        text = "".join(e["text"] for e in lines if e["type"] == "delta")
        assert (world["secret_doc"] in cited) == may, (who, cited)
        assert ("ninety million" in text) == may, (who, text)


def test_owners_named_members_and_group_members_read_it(world: dict[str, Any]) -> None:
    assert _sees(world, "ann") and _sees(world, "mia") and _sees(world, "gus")
    assert not _sees(world, "carl") and not _sees(world, "vic") and not _sees(world, "otto")
    chunk_doc = world["secret_doc"]
    assert world["mia"].get(f"/api/documents/{chunk_doc}").json()["status"] == "ready"
    access = world["ann"].get(f"/api/collections/{world['secret']}/access").json()
    assert access["mode"] == "restricted"
    assert [m["userId"] for m in access["members"]] == [world["ids"]["mia"]]
    assert access["groups"] == [{"id": world["finance"], "label": "Finance"}]


def test_changing_access_takes_effect_at_once(world: dict[str, Any]) -> None:
    ann, secret, ids = world["ann"], world["secret"], world["ids"]

    def put(body: dict[str, Any]) -> None:
        response = ann.request("PUT", f"/api/collections/{secret}/access", json_body=body)
        assert response.status == 200, response.body

    grants = {"members": [ids["mia"]], "groups": [world["finance"]], "groupLabels": ["Finance"]}
    try:
        put({"mode": "open", **grants})
        assert _sees(world, "carl") and _sees(world, "robot") and _sees(world, "vic")
        put({"mode": "restricted", **grants})
        assert not _sees(world, "carl") and not _sees(world, "robot")
        put({**grants, "mode": "restricted", "members": [ids["mia"], ids["carl"]]})
        assert _sees(world, "carl") and not _sees(world, "vic")
        put({"mode": "restricted", "members": [], "groups": []})
        assert not _sees(world, "carl") and not _sees(world, "mia") and not _sees(world, "gus")
        assert _sees(world, "ann")
    finally:
        put({"mode": "restricted", **grants})
    assert _sees(world, "mia") and not _sees(world, "carl")
    entry = ann.get("/api/audit").json()["entries"][0]
    assert entry["action"] == "collection.access" and entry["details"]["access"] == "restricted"


def test_a_member_who_leaves_the_group_loses_access_with_their_next_token(world: dict[str, Any]) -> None:
    # The same user as gus (same subject) with a token that no longer lists the group.
    payload = json.loads(base64.b64decode(world["gus"].headers["x-ms-client-principal"]))
    payload["claims"] = []
    without = world["gus"].with_headers(
        **{"x-ms-client-principal": base64.b64encode(json.dumps(payload).encode()).decode()}
    )
    assert not _sees({**world, "gus_without": without}, "gus_without")
    assert _sees(world, "gus")  # a token with the group again


def test_access_settings_are_validated(world: dict[str, Any]) -> None:
    ann, secret = world["ann"], world["secret"]
    path = f"/api/collections/{secret}/access"
    stranger = str(uuid.uuid4())
    bad_member = ann.request("PUT", path, json_body={"mode": "restricted", "members": [stranger]})
    assert bad_member.status == 409 and stranger in bad_member.json()["detail"]
    assert ann.request("PUT", path, json_body={"mode": "secret"}).status == 400
    assert ann.request("PUT", path, json_body={"mode": "restricted", "groups": ["finance"]}).status == 400
    mismatched = {"mode": "restricted", "groups": [world["finance"]], "groupLabels": ["a", "b"]}
    assert ann.request("PUT", path, json_body=mismatched).status == 409
    assert ann.request("PUT", f"/api/collections/{uuid.uuid4()}/access", json_body={"mode": "open"}).status == 404
    assert ann.get(f"/api/collections/{secret}/access").json()["members"][0]["userId"] == world["ids"]["mia"]


def test_isolation_holds_under_concurrency(world: dict[str, Any]) -> None:
    """Callers with and without access, on pooled connections at once: nobody gets the other's view."""
    expected = {"ann": True, "mia": True, "gus": True, "carl": False, "robot": False, "otto": False}
    failures: list[Any] = []

    def hammer(who: str) -> None:
        user = world[who]
        for _ in range(8):
            try:
                found = world["secret_doc"] in _found_documents(user, SECRET_WORDS, "lexical")
                status = user.get(f"/api/documents/{world['secret_doc']}").status
                if found != expected[who] or (status == 200) != expected[who]:
                    failures.append((who, found, status))
            except Exception as exc:  # pragma: no cover - reported below
                failures.append((who, repr(exc)))

    threads = [threading.Thread(target=hammer, args=(who,)) for who in expected for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_group_claims_from_entra_tokens_fail_closed_on_overage() -> None:
    group = str(uuid.uuid4())
    assert token_groups({"groups": [group.upper(), "Finance"]}) == (frozenset({group}), False)
    overage = {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph"}}}
    assert token_groups(overage) == (frozenset(), True)
    assert token_groups({"hasgroups": True}) == (frozenset(), True)
    assert token_groups({"groups": [str(uuid.uuid4()) for _ in range(201)]}) == (frozenset(), True)
    assert token_groups({}) == (frozenset(), False)


# --- the database backstop: the rule holds for any SQL the app role runs ----------------------


def _sign(conn: Conn, tenant: str, user: str | None, access: str = "") -> None:
    """The context as the pool sets it, signed for this transaction (with the suite's context key)."""
    from shared.db.pool import _BINDING, _signature

    conn.execute(
        "SELECT set_config('app.tenant_id', %s, true), set_config('app.user_id', %s, true),"
        " set_config('app.access', %s, true)",
        (tenant, user or "", access),
    )
    key = os.environ["DATABASE_CONTEXT_KEY"]
    binding = one(conn.execute(_BINDING).fetchone())["b"]
    signature = _signature(key.encode(), tenant, user or "", access, binding)
    conn.execute("SELECT set_config('app.context_sig', %s, true)", (signature,))


def _visible(conn: Conn, table: str, collection: str) -> int:
    return int(
        one(conn.execute(f"SELECT count(*) AS n FROM {table} WHERE collection_id = %s", (collection,)).fetchone())["n"]
    )


@pytest.mark.parametrize("table", ["documents", "chunks"])
def test_row_level_security_hides_the_rows_from_sql_without_a_filter(
    world: dict[str, Any], app_conn: Conn, table: str
) -> None:
    tenant, secret, ids = world["workspace"], world["secret"], world["ids"]
    owner = world["ann"].get("/api/me").json()["user"]["id"]
    for user, access, sees in (
        (ids["carl"], "", False),
        (ids["mia"], "", True),
        (ids["gus"], "", True),
        (owner, "", True),
        (None, "api_key", False),
        (owner, "api_key", False),  # an access mark narrows even an owner
        (ids["mia"], "something-else", False),  # unknown marks fail closed
        (None, "", True),  # the system's own work (indexer, blob events)
    ):
        with app_conn.transaction():
            _sign(app_conn, tenant, user, access)
            assert (_visible(app_conn, table, secret) > 0) == sees, (user, access)
            assert _visible(app_conn, table, world["open"]) > 0
    # Dropping the API-key mark without a new signature leaves no context at all.
    with app_conn.transaction():
        _sign(app_conn, tenant, None, "api_key")
        app_conn.execute("SELECT set_config('app.access', '', true)")
        assert _visible(app_conn, table, secret) == 0 and _visible(app_conn, table, world["open"]) == 0


def test_a_member_cannot_grant_themselves_access_or_open_the_collection_in_sql(
    world: dict[str, Any], app_conn: Conn
) -> None:
    tenant, secret, carl = world["workspace"], world["secret"], world["ids"]["carl"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.transaction():
        _sign(app_conn, tenant, carl)
        app_conn.execute(
            "INSERT INTO collection_members (tenant_id, collection_id, user_id) VALUES (%s, %s, %s)",
            (tenant, secret, carl),
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.transaction():
        _sign(app_conn, tenant, carl)
        app_conn.execute("UPDATE collections SET access = 'open' WHERE collection_id = %s", (secret,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.transaction():
        _sign(app_conn, tenant, carl)  # groups only with their own signature
        app_conn.execute("SELECT folio_record_groups(%s::uuid[], false)", ([world["finance"]],))
    with app_conn.transaction():
        _sign(app_conn, tenant, carl)
        assert app_conn.execute("SELECT * FROM member_groups").fetchall() == []
        assert app_conn.execute("DELETE FROM collection_groups WHERE collection_id = %s", (secret,)).rowcount == 0
    assert not _sees(world, "carl") and _sees(world, "gus")


def test_search_candidate_functions_apply_the_rule_in_both_legs(
    world: dict[str, Any], app_conn: Conn, admin_conn: Conn
) -> None:
    """The candidate functions read chunks as the schema owner (so GIN and HNSW stay usable): the rule
    must be in their own statement, not only in the policy that filters the final join."""
    tenant, secret, ids = world["workspace"], world["secret"], world["ids"]
    embedding = one(
        admin_conn.execute(
            "SELECT embedding::text AS e FROM chunks WHERE document_id = %s ORDER BY ordinal LIMIT 1",
            (world["secret_doc"],),
        ).fetchone()
    )["e"]
    secret_chunks = {
        r["chunk_id"]
        for r in admin_conn.execute("SELECT chunk_id FROM chunks WHERE collection_id = %s", (secret,)).fetchall()
    }
    owner = world["ann"].get("/api/me").json()["user"]["id"]
    for user, access, sees in ((ids["carl"], "", False), (None, "api_key", False), (owner, "", True)):
        with app_conn.transaction():
            _sign(app_conn, tenant, user, access)
            for exact in (True, False):
                nearest = app_conn.execute(
                    "SELECT chunk_id FROM folio_vector_candidates(%s, %s::vector, %s, '{}', '{}', '{}', '{}', 50)",
                    (tenant, embedding, exact),
                ).fetchall()
                assert bool({r["chunk_id"] for r in nearest} & secret_chunks) == sees, (user, access, exact)
            hidden = one(app_conn.execute("SELECT folio_hidden_chunks() AS n").fetchone())["n"]
            assert hidden == (0 if sees else len(secret_chunks))  # search widens HNSW's candidates by this share
            for scan in (True, False):
                matched = app_conn.execute(
                    "SELECT chunk_id FROM folio_lexical_candidates(%s, 'quokka'::tsquery, NULL, %s,"
                    " '{}', '{}', '{}', '{}', 50)",
                    (tenant, scan),
                ).fetchall()
                assert bool({r["chunk_id"] for r in matched} & secret_chunks) == sees, (user, access, scan)


def test_the_plan_counts_documents_the_uploader_may_not_read(client: Client, billing: Any) -> None:
    """The documents quota is the workspace's: a member who cannot see a restricted collection's
    documents must not get their slots for free (the free plan of the billing fixture allows 3)."""
    tag = uuid.uuid4().hex[:8]
    owner, _ = _person(client, f"quota-owner-{tag}")
    member, email = _person(client, f"quota-member-{tag}")
    member.get("/api/me")
    workspace = invite_and_accept(owner, member, email, "member")
    member = member.with_headers(**{"x-folio-workspace": workspace})
    hidden = owner.post("/api/collections", {"name": "Board"}).json()["id"]
    shown = owner.post("/api/collections", {"name": "Team"}).json()["id"]
    request = {"filename": "a.md", "size": 10}
    assert [owner.post(f"/api/collections/{hidden}/documents", request).status for _ in range(2)] == [201, 201]
    restricted = owner.request("PUT", f"/api/collections/{hidden}/access", json_body={"mode": "restricted"})
    assert restricted.status == 200
    assert member.post(f"/api/collections/{shown}/documents", request).status == 201
    refused = member.post(f"/api/collections/{shown}/documents", request)
    assert refused.status == 402 and refused.json()["used"] == 3
    assert member.get(f"/api/collections/{shown}/documents").json()["documents"][0]["filename"] == "a.md"
    # The billing page shows the member the same count the quota enforces, not just what they may read.
    assert member.get("/api/billing").json()["usage"]["documents"]["used"] == 3


def test_leaving_the_workspace_ends_a_grant_and_joining_again_does_not_bring_it_back(world: dict[str, Any]) -> None:
    ann, secret = world["ann"], world["secret"]
    base = Client(ann.base_url)
    rita, email = _person(base, f"rita-{uuid.uuid4().hex[:8]}")
    rita_id = rita.get("/api/me").json()["user"]["id"]
    invite_and_accept(ann, rita, email, "member")
    rita = rita.with_headers(**{"x-folio-workspace": world["workspace"]})
    current = ann.get(f"/api/collections/{secret}/access").json()
    grants = {
        "mode": "restricted",
        "groups": [g["id"] for g in current["groups"]],
        "groupLabels": [g["label"] for g in current["groups"]],
    }
    named = [m["userId"] for m in current["members"]]
    path = f"/api/collections/{secret}/access"
    assert ann.request("PUT", path, json_body={**grants, "members": [*named, rita_id]}).status == 200
    assert _sees({**world, "rita": rita}, "rita")
    assert ann.delete(f"/api/members/{rita_id}").status == 204
    invite_and_accept(
        ann,
        Client(ann.base_url).with_headers(**{"x-ms-client-principal": rita.headers["x-ms-client-principal"]}),
        email,
        "member",
    )
    assert not _sees({**world, "rita": rita}, "rita")
    assert [m["userId"] for m in ann.get(path).json()["members"]] == named
