"""Row-level security holds against SQL run as the app role (issue #17 item 8, migration 0009).

Each test plays the attacker who got one statement of their own into a transaction of the app role
(an injection anywhere): choose another tenant, run a leaky function over tenant_chunks, point
folio_sign_in at another user. Data is made over HTTP first; the key that signs tenant contexts is
installed only for the test (the rest of the suite runs without one) and removed afterwards.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.db import Conn, Database, Row, one
from shared.db.migrate import install_context_key, remove_context_key
from shared.db.pool import enter_tenant, identity_claim
from tests.helpers import Client

SECRET_WORDS = "zanzibar quokka"


def _workspace_with_secret(client: Client, admin_conn: Conn, text: str) -> tuple[str, str, dict[str, Any]]:
    """A new user's workspace holding one collection and one chunk of ``text``: (tenant, collection, user row)."""
    name = f"rls-{uuid.uuid4().hex[:10]}"
    user = client.as_user(name)
    me = user.get("/api/me").json()
    tenant = me["tenant"]["id"]
    collection = user.post("/api/collections", {"name": "secrets"}).json()["id"]
    document = uuid.uuid4()
    admin_conn.execute(
        "INSERT INTO documents (tenant_id, document_id, collection_id, filename, blob_path, status)"
        " VALUES (%s, %s, %s, 'x.md', 'x', 'ready')",
        (tenant, document, collection),
    )
    admin_conn.execute(
        "INSERT INTO chunks (tenant_id, document_id, collection_id, ordinal, body, char_start, char_end, content_hash)"
        " VALUES (%s, %s, %s, 0, %s, 0, %s, 'h')",
        (tenant, document, collection, text, len(text)),
    )
    row = one(admin_conn.execute("SELECT * FROM users WHERE user_id = %s", (me["user"]["id"],)).fetchone())
    return tenant, collection, row


def _saved_key(admin_conn: Conn) -> Row | None:
    """The key installed now (the suite may run with one), to put back after the test."""
    return admin_conn.execute("SELECT ipad, opad FROM folio_context_key").fetchone()


def _restore_key(admin_conn: Conn, saved: Row | None) -> None:
    remove_context_key(admin_conn)
    if saved is not None:
        admin_conn.execute("INSERT INTO folio_context_key (ipad, opad) VALUES (%s, %s)", (saved["ipad"], saved["opad"]))


class Keyed:
    """Installs a context key of the test's own on demand (after the test has made its data over HTTP,
    which the app's own pool signs with the suite's key, if any) and puts back what was there."""

    def __init__(self, admin_conn: Conn, app_url: str) -> None:
        self.admin_conn, self.app_url = admin_conn, app_url
        self.saved = _saved_key(admin_conn)
        self.db: Database | None = None

    def __call__(self) -> Database:
        key = secrets.token_bytes(32)
        install_context_key(self.admin_conn, key)
        self.db = Database(self.app_url, max_size=1, context_key=key)
        return self.db

    def close(self) -> None:
        _restore_key(self.admin_conn, self.saved)
        if self.db is not None:
            self.db.close()


@pytest.fixture
def signed(admin_conn: Conn, database_urls: dict[str, str]) -> Iterator[Keyed]:
    keyed = Keyed(admin_conn, database_urls["app"])
    try:
        yield keyed
    finally:
        keyed.close()


@pytest.fixture
def unkeyed(admin_conn: Conn) -> Iterator[None]:
    """No key installed, as `make test` and `make dev` run unless DATABASE_CONTEXT_KEY is set."""
    saved = _saved_key(admin_conn)
    remove_context_key(admin_conn)
    try:
        yield
    finally:
        _restore_key(admin_conn, saved)


def _count(conn: Conn, sql: str, *args: Any) -> int:
    return int(one(conn.execute(sql, args).fetchone())["n"])


# --- 1. the tenant setting is bound: the app role cannot pick another tenant ----------------


def test_without_a_key_the_setting_alone_chooses_the_tenant(
    client: Client, app_conn: Conn, admin_conn: Conn, request: pytest.FixtureRequest
) -> None:
    """The weakness, as it still is when no key is installed (the default of `make test` and `make dev`)."""
    tenant_b, coll_b, _ = _workspace_with_secret(client, admin_conn, SECRET_WORDS)
    request.getfixturevalue("unkeyed")
    with app_conn.transaction():
        app_conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_b,))
        assert _count(app_conn, "SELECT count(*) AS n FROM collections WHERE collection_id = %s", coll_b) == 1


def test_app_role_cannot_choose_another_tenant_by_setting_it(
    client: Client, admin_conn: Conn, database_urls: dict[str, str], signed: Keyed
) -> None:
    tenant_a, coll_a, _ = _workspace_with_secret(client, admin_conn, "alpha words")
    tenant_b, coll_b, _ = _workspace_with_secret(client, admin_conn, SECRET_WORDS)
    signed_db = signed()  # the data exists: now install the key
    with signed_db.transaction(uuid.UUID(tenant_a)) as conn:
        assert _count(conn, "SELECT count(*) AS n FROM collections WHERE collection_id = %s", coll_a) == 1
        # The injected statement: pick workspace B. Every policy now matches nothing.
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_b,))
        assert _count(conn, "SELECT count(*) AS n FROM collections") == 0
        assert _count(conn, "SELECT count(*) AS n FROM chunks") == 0
        assert _count(conn, "SELECT count(*) AS n FROM tenant_chunks") == 0
        # Even back to A: the signature covered A in this transaction, so A again is fine.
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_a,))
        assert _count(conn, "SELECT count(*) AS n FROM collections WHERE collection_id = %s", coll_a) == 1
    with psycopg.connect(database_urls["app"], row_factory=dict_row) as raw, raw.transaction():
        raw.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_b,))
        assert _count(raw, "SELECT count(*) AS n FROM collections") == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute(
                "INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, 'x')",
                (tenant_b, uuid.uuid4()),
            )
    # The pool's own, signed context for B sees B (the app itself is not hindered).
    with signed_db.transaction(uuid.UUID(tenant_b)) as conn:
        assert _count(conn, "SELECT count(*) AS n FROM collections WHERE collection_id = %s", coll_b) == 1


def test_a_signature_is_good_for_one_transaction_only(client: Client, admin_conn: Conn, signed: Keyed) -> None:
    tenant_b, coll_b, _ = _workspace_with_secret(client, admin_conn, SECRET_WORDS)
    signed_db = signed()
    with signed_db.transaction(uuid.UUID(tenant_b)) as conn:
        seen = one(conn.execute("SELECT current_setting('app.context_sig') AS s").fetchone())["s"]
        assert _count(conn, "SELECT count(*) AS n FROM collections WHERE collection_id = %s", coll_b) == 1
    # Replayed on the same pooled connection (same backend) in a later transaction: refused.
    with signed_db.transaction() as conn:
        conn.execute(
            "SELECT set_config('app.tenant_id', %s, true), set_config('app.context_sig', %s, true)", (tenant_b, seen)
        )
        assert _count(conn, "SELECT count(*) AS n FROM collections") == 0


def test_the_app_role_cannot_read_the_key_or_sign(app_conn: Conn, signed: Keyed) -> None:
    signed()
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.transaction():
        app_conn.execute("SELECT * FROM folio_context_key")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.transaction():
        app_conn.execute("SELECT folio_context_sign('x')")


def test_enter_tenant_signs_a_switch_inside_a_transaction(client: Client, admin_conn: Conn, signed: Keyed) -> None:
    """What the Stripe webhook does: start without a tenant, then enter the one the event names."""
    tenant_b, coll_b, _ = _workspace_with_secret(client, admin_conn, SECRET_WORDS)
    signed_db = signed()
    with signed_db.transaction() as conn:
        assert _count(conn, "SELECT count(*) AS n FROM collections") == 0
        enter_tenant(conn, uuid.UUID(tenant_b))
        assert _count(conn, "SELECT count(*) AS n FROM collections WHERE collection_id = %s", coll_b) == 1


# --- 2. tenant_chunks is a barrier: a function in the query sees only the tenant's rows ---------


def _leaky_function(conn: Conn) -> list[str]:
    """pg_temp.leak(text): a cheap 'filter' that prints what it is given (any role may create it)."""
    conn.execute(
        "CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001"
        " AS $$ BEGIN RAISE NOTICE 'leak: %', t; RETURN true; END $$"
    )
    seen: list[str] = []
    conn.add_notice_handler(lambda diag: seen.append(diag.message_primary or ""))
    return seen


def test_a_leaky_function_over_tenant_chunks_sees_only_the_current_tenant(
    client: Client, app_conn: Conn, admin_conn: Conn, request: pytest.FixtureRequest
) -> None:
    tenant_a, _, _ = _workspace_with_secret(client, admin_conn, "alpha words")
    _workspace_with_secret(client, admin_conn, SECRET_WORDS)
    request.getfixturevalue("unkeyed")  # the barrier holds with or without a key; this sets the tenant plainly
    with app_conn.transaction():
        seen = _leaky_function(app_conn)
        app_conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_a,))
        app_conn.execute("SET LOCAL enable_seqscan = on")  # the attacker's choice: a scan of every row
        app_conn.execute("SET LOCAL enable_indexscan = off")
        app_conn.execute("SET LOCAL enable_bitmapscan = off")
        app_conn.execute("SELECT count(*) FROM tenant_chunks c WHERE pg_temp.leak(c.body)").fetchall()
        app_conn.execute(
            "SELECT count(*) FROM tenant_chunks c WHERE pg_temp.leak(c.body) AND c.tsv @@ 'quokka'::tsquery"
        ).fetchall()
    assert seen and not [m for m in seen if "quokka" in m]


def test_an_erroring_cast_over_tenant_chunks_shows_no_other_tenants_text(
    client: Client, app_conn: Conn, admin_conn: Conn, request: pytest.FixtureRequest
) -> None:
    tenant_a, _, _ = _workspace_with_secret(client, admin_conn, "17")
    _workspace_with_secret(client, admin_conn, SECRET_WORDS)
    request.getfixturevalue("unkeyed")
    with app_conn.transaction():
        app_conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_a,))
        # Only tenant A's "17" (and other A rows) may reach the cast; B's text must never be in an error.
        try:
            app_conn.execute("SELECT count(*) FROM tenant_chunks c WHERE c.body::integer = 17").fetchall()
        except psycopg.errors.InvalidTextRepresentation as exc:
            assert "quokka" not in str(exc)


def test_search_candidates_refuse_a_tenant_other_than_the_signed_one(
    client: Client, admin_conn: Conn, signed: Keyed
) -> None:
    tenant_a, _, _ = _workspace_with_secret(client, admin_conn, "alpha words")
    tenant_b, _, _ = _workspace_with_secret(client, admin_conn, SECRET_WORDS)
    args = "%s, 'quokka'::tsquery, NULL, {}, '{{}}', '{{}}', '{{}}', '{{}}', 100"
    signed_db = signed()
    with signed_db.transaction(uuid.UUID(tenant_a)) as conn:
        for scan in ("true", "false"):
            rows = conn.execute(f"SELECT * FROM folio_lexical_candidates({args.format(scan)})", (tenant_b,)).fetchall()
            assert rows == []
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_b,))  # unsigned switch
        rows = conn.execute(f"SELECT * FROM folio_lexical_candidates({args.format('true')})", (tenant_b,)).fetchall()
        assert rows == []
    with signed_db.transaction(uuid.UUID(tenant_b)) as conn:
        rows = conn.execute(f"SELECT * FROM folio_lexical_candidates({args.format('true')})", (tenant_b,)).fetchall()
        assert len(rows) == 1


# --- 3. folio_sign_in writes only the identity the signed context names ----------------------


def test_without_a_key_sign_in_can_rewrite_another_users_email(
    client: Client, app_conn: Conn, admin_conn: Conn, request: pytest.FixtureRequest
) -> None:
    """The weakness, as it still is when no key is installed."""
    _, _, victim = _workspace_with_secret(client, admin_conn, "victim words")
    request.getfixturevalue("unkeyed")
    with app_conn.transaction():
        app_conn.execute(
            "SELECT folio_sign_in(%s, %s, 'mallory@evil.test', 'Mallory', true)", (victim["idp"], victim["idp_subject"])
        )
    row = one(admin_conn.execute("SELECT email FROM users WHERE user_id = %s", (victim["user_id"],)).fetchone())
    assert row["email"] == "mallory@evil.test"


def test_sign_in_cannot_rewrite_another_users_email(client: Client, admin_conn: Conn, signed: Keyed) -> None:
    _, _, victim = _workspace_with_secret(client, admin_conn, "victim words")
    attack = "SELECT folio_sign_in(%s, %s, 'mallory@evil.test', 'Mallory', true)"
    signed_db = signed()
    # In an ordinary request's transaction (no identity), and in a sign-in for the attacker's own identity.
    for identity in (None, identity_claim("swa:aad", "dev:mallory", "mallory@evil.test", True)):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), signed_db.transaction(identity=identity) as conn:
            conn.execute(attack, (victim["idp"], victim["idp_subject"]))
    # Nor may a sign-in claim a verified address its token did not carry.
    claim = identity_claim("swa:aad", "dev:mallory", "mallory@evil.test", False)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), signed_db.transaction(identity=claim) as conn:
        conn.execute("SELECT folio_sign_in('swa:aad', 'dev:mallory', %s, 'M', true)", (victim["email"],))
    row = one(
        admin_conn.execute(
            "SELECT email, email_verified FROM users WHERE user_id = %s", (victim["user_id"],)
        ).fetchone()
    )
    assert row["email"] == victim["email"] and row["email_verified"] == victim["email_verified"]


def test_sign_in_still_works_for_the_identity_of_the_context(admin_conn: Conn, signed: Keyed) -> None:
    subject = f"dev:new-{uuid.uuid4().hex[:8]}"
    email = f"{subject[4:]}@example.com"
    claim = identity_claim("swa:aad", subject, email, True)
    signed_db = signed()
    with signed_db.transaction(identity=claim) as conn:
        user_id = one(
            conn.execute("SELECT folio_sign_in('swa:aad', %s, %s, 'New', true) AS u", (subject, email)).fetchone()
        )["u"]
    row = one(admin_conn.execute("SELECT * FROM users WHERE user_id = %s", (user_id,)).fetchone())
    assert row["email"] == email and row["email_verified"] and row["personal_tenant_id"] is not None
    with signed_db.transaction(row["personal_tenant_id"], user_id) as conn:
        assert _count(conn, "SELECT count(*) AS n FROM memberships WHERE user_id = %s", user_id) == 1
