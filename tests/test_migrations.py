"""Migrations: applied once, in order, safely under concurrency, and loud about drift."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devhost import postgres as local_pg
from devhost.local_queue import PostgresQueue, create_local_queue_table
from shared.db import Database
from shared.db.migrate import MIGRATIONS_DIR, discover, migrate
from shared.errors import ConfigError

_SCRATCH = f"folio_migrations_test_{os.getpid()}"


@pytest.fixture
def scratch_db(postgres: local_pg.LocalPostgres | None) -> str:
    if postgres is None:
        pytest.skip("needs the embedded server to create scratch databases")
    local_pg.ensure_database(postgres, _SCRATCH, app_role="folio_app", recreate=True)
    return postgres.url(database=_SCRATCH)


def _value(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the one row ``query`` returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _migrate(url: str, **overrides: object) -> list[str]:
    args = {"app_role": "folio_app", "embedding_model": "all-MiniLM-L6-v2", "embedding_dim": 384, **overrides}
    return migrate(url, **args)  # type: ignore[arg-type]


def test_migrations_apply_once_and_rerun_is_a_no_op(scratch_db: str) -> None:
    assert _migrate(scratch_db) == [m.version for m in discover()]
    assert _migrate(scratch_db) == []


def test_concurrent_migrators_apply_each_migration_once(scratch_db: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(_migrate(scratch_db))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = [v for r in results for v in r]
    assert sorted(applied) == [m.version for m in discover()]


def test_edited_migration_is_refused(scratch_db: str, tmp_path: Path) -> None:
    for migration in discover():
        (tmp_path / migration.path.name).write_text(migration.text)
    _migrate(scratch_db, directory=tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- sneaky edit\n")
    with pytest.raises(ConfigError, match="edited after it was applied"):
        _migrate(scratch_db, directory=tmp_path)


def test_changing_embedding_dimension_requires_reembedding(scratch_db: str) -> None:
    _migrate(scratch_db)
    with pytest.raises(ConfigError, match="Re-embedding is required"):
        _migrate(scratch_db, embedding_dim=1536)


def test_missing_app_role_is_a_clear_error(scratch_db: str) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        _migrate(scratch_db, app_role="no_such_role")


def test_chunks_get_the_configured_vector_dimension_and_indexes(scratch_db: str) -> None:
    _migrate(scratch_db, embedding_dim=384)
    with psycopg.connect(scratch_db) as conn:
        typ = _value(
            conn,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'",
        )
        indexes = {
            r[0]: r[1] for r in conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chunks'")
        }
    assert typ == "vector(384)"
    assert "hnsw" in indexes["chunks_embedding"] and "vector_cosine_ops" in indexes["chunks_embedding"]
    assert "m='24'" in indexes["chunks_embedding"] and "ef_construction='128'" in indexes["chunks_embedding"]
    assert "gin" in indexes["chunks_tsv"]


def test_heading_outweighs_body_in_the_stored_tsvector(database_urls: dict[str, str]) -> None:
    with psycopg.connect(database_urls["admin"]) as conn:
        tsv = _value(
            conn,
            "SELECT setweight(to_tsvector('english', 'Indemnification'), 'A') ||"
            " setweight(to_tsvector('english', 'the parties agree'), 'B')",
        )
        generated = _value(
            conn,
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef"
            " WHERE adrelid = 'chunks'::regclass AND adnum = (SELECT attnum FROM pg_attribute"
            " WHERE attrelid = 'chunks'::regclass AND attname = 'tsv')",
        )
    assert "'indemnif':1A" in tsv
    assert "'A'" in generated and "'B'" in generated and "heading" in generated


# What 0002_local_queue.sql said until the local queue became development-only, byte for byte: databases
# migrated back then recorded this text's checksum.
_OLD_0002 = """-- The local stand-in for the Service Bus index queue (INDEX_QUEUE_BACKEND=postgres): peek-lock
-- semantics with delivery counts and a dead-letter state. Unused in Azure, where Service Bus is the
-- queue. Holds job envelopes (ids and versions), never document content.

CREATE TABLE local_queue (
  queue_name      text NOT NULL,
  message_id      text NOT NULL,              -- duplicate detection: one live row per id
  body            jsonb NOT NULL,
  state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'completed', 'deadlettered')),
  delivery_count  integer NOT NULL DEFAULT 0,
  enqueued_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  sequence_number bigint GENERATED ALWAYS AS IDENTITY,
  lock_token      uuid,
  locked_until    timestamptz,
  dead_letter_reason text,
  dead_letter_description text,
  settled_at      timestamptz,
  PRIMARY KEY (queue_name, message_id)
);
CREATE INDEX local_queue_ready ON local_queue (queue_name, sequence_number) WHERE state = 'active';
"""


def _has_table(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        return bool(_value(conn, "SELECT to_regclass(%s) IS NOT NULL", (name,)))


def test_production_migrations_do_not_create_the_local_queue(scratch_db: str) -> None:
    _migrate(scratch_db)
    assert not _has_table(scratch_db, "local_queue")


def test_a_database_that_applied_the_old_0002_takes_the_new_one_and_loses_the_local_queue(
    scratch_db: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_foundation.sql").write_bytes((MIGRATIONS_DIR / "0001_foundation.sql").read_bytes())
    (tmp_path / "0002_local_queue.sql").write_text(_OLD_0002, encoding="utf-8")
    assert hashlib.sha256(_OLD_0002.encode()).hexdigest() == (
        "36f0e763a4abcce40d6ed6a3a493f0f83be529970ed49c462952f9cb0b89f8bd"
    )
    assert _migrate(scratch_db, directory=tmp_path) == ["0001_foundation", "0002_local_queue"]
    assert _has_table(scratch_db, "local_queue")

    applied = _migrate(scratch_db)  # the release with the emptied 0002: no "edited after it was applied"

    assert applied == [m.version for m in discover()][2:] and "0007_drop_local_queue" in applied
    assert not _has_table(scratch_db, "local_queue")
    with psycopg.connect(scratch_db) as conn:
        recorded = _value(conn, "SELECT checksum FROM folio_schema_migrations WHERE version = '0002_local_queue'")
    assert recorded == discover()[1].checksum
    assert _migrate(scratch_db) == []


def test_only_the_known_old_text_of_0002_is_accepted(scratch_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_foundation.sql").write_bytes((MIGRATIONS_DIR / "0001_foundation.sql").read_bytes())
    (tmp_path / "0002_local_queue.sql").write_text(_OLD_0002 + "-- another text\n", encoding="utf-8")
    _migrate(scratch_db, directory=tmp_path)
    with pytest.raises(ConfigError, match="edited after it was applied"):
        _migrate(scratch_db)


def test_the_local_host_creates_its_queue_table_for_the_app_role(
    scratch_db: str, postgres: local_pg.LocalPostgres
) -> None:
    _migrate(scratch_db)
    create_local_queue_table(scratch_db, "folio_app")
    create_local_queue_table(scratch_db, "folio_app")  # idempotent: every start of the local host runs it
    db = Database(postgres.url("folio_app", _SCRATCH), min_size=1, max_size=1)
    try:
        queue = PostgresQueue(db, "jobs")
        queue.send("m1", {"v": 1})
        queue.send("m1", {"v": 1})
        (message,) = queue.receive(5, 60)
        assert (message.message_id, message.delivery_count) == ("m1", 1) and queue.complete(message)
    finally:
        db.close()


def _attacks(admin_url: str, app_url: str) -> dict[str, bool]:
    """Issue #17 item 8, as the app role: which of the three attacks work on this database."""
    import uuid

    a, b = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for tenant, text in ((a, "alpha words"), (b, "zanzibar quokka")):
            admin.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
            admin.execute("INSERT INTO tenants (tenant_id, name) VALUES (%s, 'w')", (tenant,))
            coll, doc = uuid.uuid4(), uuid.uuid4()
            admin.execute(
                "INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, 'c')", (tenant, coll)
            )
            admin.execute(
                "INSERT INTO documents (tenant_id, document_id, collection_id, filename, blob_path) VALUES (%s, %s, %s, 'x', 'x')",
                (tenant, doc, coll),
            )
            admin.execute(
                "INSERT INTO chunks (tenant_id, document_id, collection_id, ordinal, body, char_start, char_end, content_hash)"
                " VALUES (%s, %s, %s, 0, %s, 0, 1, 'h')",
                (tenant, doc, coll, text),
            )
        victim = f"victim-{uuid.uuid4().hex[:8]}"
        admin.execute("SELECT folio_sign_in('swa:aad', %s, 'victim@example.com', 'V', true)", (victim,))
    found: dict[str, bool] = {}
    with psycopg.connect(app_url) as app:
        with app.transaction():
            app.execute("SELECT set_config('app.tenant_id', %s, true)", (str(b),))
            found["pick_another_tenant"] = _value(app, "SELECT count(*) FROM chunks") > 0
        with app.transaction():
            app.execute(
                "CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001"
                " AS $$ BEGIN RAISE NOTICE 'leak: %', t; RETURN true; END $$"
            )
            seen: list[str] = []
            app.add_notice_handler(lambda diag: seen.append(diag.message_primary or ""))
            app.execute("SELECT set_config('app.tenant_id', %s, true)", (str(a),))
            app.execute("SET LOCAL enable_indexscan = off")  # the attacker's choice: a scan of every row
            app.execute("SET LOCAL enable_bitmapscan = off")
            app.execute("SELECT count(*) FROM tenant_chunks c WHERE pg_temp.leak(c.body)").fetchall()
            found["leaky_function_over_tenant_chunks"] = any("quokka" in m for m in seen)
        try:
            with app.transaction():
                app.execute("SELECT folio_sign_in('swa:aad', %s, 'mallory@evil.test', 'M', true)", (victim,))
        except psycopg.errors.InsufficientPrivilege:
            pass
    with psycopg.connect(admin_url) as admin:
        email = _value(admin, "SELECT email FROM users WHERE idp_subject = %s", (victim,))
    found["sign_in_rewrites_another_users_email"] = email == "mallory@evil.test"
    return found


def test_0009_closes_what_0007_left_open_to_sql_run_as_the_app_role(
    scratch_db: str, postgres: local_pg.LocalPostgres, tmp_path: Path
) -> None:
    from shared.db.migrate import install_context_key

    for migration in discover():
        if migration.version < "0008":
            (tmp_path / migration.path.name).write_bytes(migration.path.read_bytes())
    _migrate(scratch_db, directory=tmp_path)
    app_url = postgres.url("folio_app", _SCRATCH)
    assert _attacks(scratch_db, app_url) == dict.fromkeys(
        ("pick_another_tenant", "leaky_function_over_tenant_chunks", "sign_in_rewrites_another_users_email"), True
    )
    assert "0009_tenant_context" in _migrate(scratch_db)
    with psycopg.connect(scratch_db, autocommit=True) as admin:
        install_context_key(admin, b"k" * 32)
    assert _attacks(scratch_db, app_url) == dict.fromkeys(
        ("pick_another_tenant", "leaky_function_over_tenant_chunks", "sign_in_rewrites_another_users_email"), False
    )


_OWNER = "folio_schema_owner"


@pytest.fixture
def owned_scratch_db(postgres: local_pg.LocalPostgres | None) -> tuple[str, str]:
    """A scratch database owned by a role that is not a superuser (as in Azure): row-level security
    with FORCE applies to it. Returns (owner URL, superuser URL)."""
    from psycopg import sql

    if postgres is None:
        pytest.skip("needs the embedded server to create scratch databases")
    name = f"{_SCRATCH}_owned"
    local_pg.ensure_database(postgres, _SCRATCH, app_role="folio_app")  # the app role exists
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (_OWNER,)).fetchone():
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(_OWNER)))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(_OWNER)))
    with psycopg.connect(postgres.url(database=name), autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS vector")  # an extension is the superuser's to create
    return postgres.url(_OWNER, name), postgres.url(database=name)


def _memberships(superuser_url: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(superuser_url) as conn:  # a superuser reads past row-level security
        return set(conn.execute("SELECT tenant_id, user_id, role, personal FROM memberships").fetchall())


def test_0011_gives_removed_and_demoted_founders_their_personal_workspace_back(
    owned_scratch_db: tuple[str, str], tmp_path: Path
) -> None:
    """Issue #17: before remove_member refused it, a co-owner could remove a founder from their
    personal workspace (403 everywhere, no way back). 0011, run as the (non-superuser) schema owner
    with a context key installed, restores them as owner; nothing else changes."""
    owner_url, superuser_url = owned_scratch_db
    for migration in discover():
        if migration.version < "0011":
            (tmp_path / migration.path.name).write_bytes(migration.path.read_bytes())
    assert _migrate(owner_url, directory=tmp_path, context_key=b"k" * 32)[-1] == "0010_failure_retryable"

    with psycopg.connect(owner_url, autocommit=True) as conn:
        removed, demoted, co_owner, intact = (
            _value(conn, "SELECT folio_sign_in('swa:aad', %s, %s, %s, true)", (who, f"{who}@example.com", who))
            for who in ("removed", "demoted", "co-owner", "intact")
        )
        home = {
            user: _value(conn, "SELECT personal_tenant_id FROM users WHERE user_id = %s", (user,))
            for user in (removed, demoted, co_owner, intact)
        }
        # What the co-owner could do before the fix, as the owner would (its settings are trusted).
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(home[removed]),))
        conn.execute(
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES (%s, %s, 'owner')", (home[removed], co_owner)
        )
        conn.execute(
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES (%s, %s, 'viewer')", (home[removed], intact)
        )
        assert (
            conn.execute(
                "DELETE FROM memberships WHERE tenant_id = %s AND user_id = %s", (home[removed], removed)
            ).rowcount
            == 1
        )
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(home[demoted]),))
        conn.execute(
            "INSERT INTO memberships (tenant_id, user_id, role) VALUES (%s, %s, 'owner')", (home[demoted], co_owner)
        )
        assert (
            conn.execute(
                "UPDATE memberships SET role = 'viewer' WHERE tenant_id = %s AND user_id = %s", (home[demoted], demoted)
            ).rowcount
            == 1
        )
    before = _memberships(superuser_url)
    assert (home[removed], removed) not in {(t, u) for t, u, _, _ in before}

    assert _migrate(owner_url)[0] == "0011_restore_founders"  # and every later migration after it

    after = _memberships(superuser_url)
    assert after == (before - {(home[demoted], demoted, "viewer", True)}) | {
        (home[removed], removed, "owner", True),
        (home[demoted], demoted, "owner", True),
    }
    with psycopg.connect(superuser_url) as conn:
        restored = conn.execute(
            "SELECT tenant_id, target_id, details FROM audit_log WHERE action = 'member.restore' ORDER BY audit_id"
        ).fetchall()
    assert sorted(restored, key=str) == sorted(
        [
            (home[removed], str(removed), {"previousRole": None, "role": "owner"}),
            (home[demoted], str(demoted), {"previousRole": "viewer", "role": "owner"}),
        ],
        key=str,
    )

    # Idempotent: the same text run again (as the owner) changes nothing and records nothing.
    text = (MIGRATIONS_DIR / "0011_restore_founders.sql").read_text(encoding="utf-8")
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(text)
    assert _memberships(superuser_url) == after
    with psycopg.connect(superuser_url) as conn:
        assert _value(conn, "SELECT count(*) FROM audit_log WHERE action = 'member.restore'") == 2
    assert _migrate(owner_url) == []
