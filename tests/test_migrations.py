"""Migrations: applied once, in order, safely under concurrency, and loud about drift."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import pytest

from devhost import postgres as local_pg
from shared.db.migrate import discover, migrate
from shared.errors import ConfigError


@pytest.fixture
def scratch_db(postgres: object) -> str:
    if postgres is None:
        pytest.skip("needs the embedded server to create scratch databases")
    name = f"folio_migrations_test_{os.getpid()}"
    local_pg.ensure_database(postgres, name, app_role="folio_app", recreate=True)  # type: ignore[arg-type]
    return postgres.url(database=name)  # type: ignore[attr-defined]


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
        typ = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'").fetchone()[0]
        indexes = {r[0]: r[1] for r in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chunks'")}
    assert typ == "vector(384)"
    assert "hnsw" in indexes["chunks_embedding"] and "vector_cosine_ops" in indexes["chunks_embedding"]
    assert "m='24'" in indexes["chunks_embedding"] and "ef_construction='128'" in indexes["chunks_embedding"]
    assert "gin" in indexes["chunks_tsv"]


def test_heading_outweighs_body_in_the_stored_tsvector(database_urls: dict[str, str]) -> None:
    with psycopg.connect(database_urls["admin"]) as conn:
        tsv = conn.execute(
            "SELECT setweight(to_tsvector('english', 'Indemnification'), 'A') ||"
            " setweight(to_tsvector('english', 'the parties agree'), 'B')").fetchone()[0]
        generated = conn.execute(
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef"
            " WHERE adrelid = 'chunks'::regclass AND adnum = (SELECT attnum FROM pg_attribute"
            " WHERE attrelid = 'chunks'::regclass AND attname = 'tsv')").fetchone()[0]
    assert "'indemnif':1A" in tsv
    assert "'A'" in generated and "'B'" in generated and "heading" in generated
