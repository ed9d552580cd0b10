"""Tenant isolation is a security boundary: user B never sees or touches user A's data."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg
import pytest

from shared.db import Conn, one
from tests.helpers import Client


def _new_user(client: Client) -> Client:
    return client.as_user(f"user-{uuid.uuid4().hex[:10]}")


def test_two_new_principals_get_two_workspaces(client: Client) -> None:
    a, b = _new_user(client), _new_user(client)
    me_a, me_b = a.get("/api/me").json(), b.get("/api/me").json()
    assert me_a["tenant"]["id"] != me_b["tenant"]["id"]
    assert me_a["role"] == me_b["role"] == "owner"
    assert [w["id"] for w in me_a["workspaces"]] == [me_a["tenant"]["id"]]


def test_user_b_cannot_list_read_or_delete_user_a_collections(client: Client) -> None:
    a, b = _new_user(client), _new_user(client)
    secret = a.post("/api/collections", {"name": "A's secrets"}).json()

    assert b.get("/api/collections").json()["collections"] == []
    not_theirs = b.get(f"/api/collections/{secret['id']}")
    never_existed = b.get(f"/api/collections/{uuid.uuid4()}")
    # Same status and same detail: the answer does not reveal that the id exists elsewhere.
    assert not_theirs.status == never_existed.status == 404
    assert not_theirs.json()["detail"] == never_existed.json()["detail"]
    assert b.delete(f"/api/collections/{secret['id']}").status == 404
    assert a.get(f"/api/collections/{secret['id']}").status == 200


def test_same_collection_name_in_two_workspaces_does_not_conflict(client: Client) -> None:
    a, b = _new_user(client), _new_user(client)
    assert a.post("/api/collections", {"name": "Shared name"}).status == 201
    assert b.post("/api/collections", {"name": "Shared name"}).status == 201


def test_workspace_header_cannot_select_a_foreign_workspace(client: Client) -> None:
    a, b = _new_user(client), _new_user(client)
    a_tenant = a.get("/api/me").json()["tenant"]["id"]
    a.post("/api/collections", {"name": "A only"})
    sneaky = b.with_headers(**{"x-folio-workspace": a_tenant})
    assert sneaky.get("/api/collections").status == 404
    assert sneaky.post("/api/collections", {"name": "planted"}).status == 404
    assert [c["name"] for c in a.get("/api/collections").json()["collections"]] == ["A only"]


def test_audit_and_members_are_per_workspace(client: Client) -> None:
    a, b = _new_user(client), _new_user(client)
    a.post("/api/collections", {"name": "audited"})
    assert b.get("/api/audit").json()["entries"] == []
    members_b = b.get("/api/members").json()["members"]
    assert len(members_b) == 1 and members_b[0]["email"] != a.get("/api/me").json()["user"]["email"]


def test_concurrent_requests_on_pooled_connections_never_cross_tenants(client: Client) -> None:
    users = [_new_user(client) for _ in range(4)]
    names = {}
    for i, user in enumerate(users):
        names[i] = {f"u{i}-c{j}" for j in range(3)}
        for name in names[i]:
            assert user.post("/api/collections", {"name": name}).status == 201
    failures: list[Any] = []

    def hammer(i: int) -> None:
        for _ in range(25):
            got = {c["name"] for c in users[i].get("/api/collections").json()["collections"]}
            if got != names[i]:
                failures.append((i, got))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(users)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# --- the database backstop: row-level security with the app's own role ----------------------


def _tenant_with_collection(client: Client) -> tuple[str, str]:
    user = _new_user(client)
    tenant = user.get("/api/me").json()["tenant"]["id"]
    collection = user.post("/api/collections", {"name": "rls"}).json()["id"]
    return tenant, collection


def _set_tenant(conn: Conn, tenant: str | None) -> None:
    """The tenant as the pool sets it: signed for this transaction when a context key is in use."""
    import os

    from shared.db.pool import _BINDING, _signature

    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant or "",))
    key = os.environ.get("DATABASE_CONTEXT_KEY")
    if key:
        binding = one(conn.execute(_BINDING).fetchone())["b"]
        signature = _signature(key.encode(), tenant or "", "", "", binding)
        conn.execute("SELECT set_config('app.context_sig', %s, true)", (signature,))


@pytest.mark.parametrize(
    "table", ["tenants", "memberships", "collections", "documents", "chunks", "audit_log", "api_keys", "invitations"]
)
def test_without_tenant_context_the_app_role_sees_no_rows(client: Client, app_conn: Conn, table: str) -> None:
    _tenant_with_collection(client)
    with app_conn.transaction():
        _set_tenant(app_conn, None)
        assert one(app_conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone())["n"] == 0


def test_a_query_without_tenant_filter_still_sees_only_the_current_tenant(client: Client, app_conn: Conn) -> None:
    tenant_a, coll_a = _tenant_with_collection(client)
    _tenant_b, coll_b = _tenant_with_collection(client)
    with app_conn.transaction():
        _set_tenant(app_conn, tenant_a)
        ids = {str(r["collection_id"]) for r in app_conn.execute("SELECT collection_id FROM collections")}
    assert coll_a in ids and coll_b not in ids


def test_rls_rejects_writes_into_another_tenant(client: Client, app_conn: Conn) -> None:
    tenant_a, _ = _tenant_with_collection(client)
    tenant_b, coll_b = _tenant_with_collection(client)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.transaction():
        _set_tenant(app_conn, tenant_a)
        app_conn.execute(
            "INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, 'planted')",
            (tenant_b, uuid.uuid4()),
        )
    with app_conn.transaction():
        _set_tenant(app_conn, tenant_a)
        deleted = app_conn.execute("DELETE FROM collections WHERE collection_id = %s", (coll_b,)).rowcount
    assert deleted == 0


def test_tenant_context_does_not_survive_the_transaction(client: Client, app_conn: Conn) -> None:
    tenant_a, _ = _tenant_with_collection(client)
    with app_conn.transaction():
        _set_tenant(app_conn, tenant_a)
        assert one(app_conn.execute("SELECT count(*) AS n FROM collections").fetchone())["n"] == 1
    with app_conn.transaction():
        assert one(app_conn.execute("SELECT count(*) AS n FROM collections").fetchone())["n"] == 0


def test_app_role_cannot_read_users_directly(app_conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute("SELECT * FROM users")
    app_conn.rollback()


def test_app_role_does_not_bypass_row_level_security(app_conn: Conn) -> None:
    row = app_conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row == {"rolsuper": False, "rolbypassrls": False}
    app_conn.rollback()


def test_every_tenant_table_forces_row_level_security(admin_conn: Conn) -> None:
    rows = admin_conn.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'"
        " WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
    ).fetchall()
    assert len(rows) >= 8
    assert [r["relname"] for r in rows if not (r["relrowsecurity"] and r["relforcerowsecurity"])] == []


def test_tenant_id_leads_every_tenant_key(admin_conn: Conn) -> None:
    """The scale path: primary keys, unique constraints and foreign keys all start with tenant_id.

    The one exception is a foreign key to `users`, which is global identity data (a reference
    table when distributed), and references from distributed tables to reference tables are fine.
    """
    rows = admin_conn.execute(
        "SELECT con.conname, rel.relname, att.attname AS first_column, con.confrelid::regclass::text AS refers_to"
        " FROM pg_constraint con"
        " JOIN pg_class rel ON rel.oid = con.conrelid"
        " JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = con.conkey[1]"
        " WHERE con.contype IN ('p', 'u', 'f') AND rel.relnamespace = 'public'::regnamespace"
        " AND rel.relname NOT IN ('users', 'folio_schema_migrations', 'folio_index_settings', 'local_queue',"
        " 'stripe_events',"  # keyed by Stripe's event id; holds no tenant data (0004_billing.sql)
        " 'folio_context_key')"  # one global row: the key that signs tenant contexts (0009)
    ).fetchall()
    offenders = [
        (r["relname"], r["conname"]) for r in rows if r["first_column"] != "tenant_id" and r["refers_to"] != "users"
    ]
    assert offenders == []


def test_search_view_shows_only_the_current_tenants_chunks(client: Client, app_conn: Conn, admin_conn: Conn) -> None:
    """tenant_chunks runs with the owner's rights (so GIN is usable): its own filter must hold."""
    tenant_a, coll_a = _tenant_with_collection(client)
    tenant_b, coll_b = _tenant_with_collection(client)
    for tenant, collection in ((tenant_a, coll_a), (tenant_b, coll_b)):
        admin_conn.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant,))
        document = uuid.uuid4()
        admin_conn.execute(
            "INSERT INTO documents (tenant_id, document_id, collection_id, filename, blob_path)"
            " VALUES (%s, %s, %s, 'x.md', 'x')",
            (tenant, document, collection),
        )
        admin_conn.execute(
            "INSERT INTO chunks (tenant_id, document_id, collection_id, ordinal, body, char_start,"
            " char_end, content_hash) VALUES (%s, %s, %s, 0, 'shared secret words', 0, 19, 'h')",
            (tenant, document, collection),
        )
    with app_conn.transaction():
        _set_tenant(app_conn, None)
        assert one(app_conn.execute("SELECT count(*) AS n FROM tenant_chunks").fetchone())["n"] == 0
    with app_conn.transaction():
        _set_tenant(app_conn, tenant_a)
        rows = app_conn.execute("SELECT tenant_id FROM tenant_chunks WHERE tsv @@ 'secret'::tsquery").fetchall()
        assert {str(r["tenant_id"]) for r in rows} == {tenant_a}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.transaction():
        _set_tenant(app_conn, tenant_a)
        app_conn.execute("DELETE FROM tenant_chunks")
