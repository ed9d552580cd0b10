"""Versioned plain-SQL migrations, applied once each, in order, under an advisory lock."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shared.errors import ConfigError

_log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every process that migrates this database.
_LOCK_KEY = 0x466F6C696F  # "Folio"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Migrations whose text was replaced after release, with the checksums of the texts they replace. A
# database that applied one of those texts takes the new one (its recorded checksum is updated)
# instead of failing as "edited"; a later migration brings such databases to where the new text
# leaves a fresh one. Anything else edited after it was applied is still refused.
_REWRITTEN: dict[str, frozenset[str]] = {
    # 0002 created the local queue stand-in's table; now empty, and 0007 drops the table.
    "0002_local_queue": frozenset({"36f0e763a4abcce40d6ed6a3a493f0f83be529970ed49c462952f9cb0b89f8bd"}),
}


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ConfigError(f"Migration file {path.name} does not match NNNN_name.sql")
        found.append(Migration(version=path.stem, path=path))
    return found


def render(text: str, *, embedding_dim: int) -> str:
    """Fill the few template values a migration may use; only validated integers go in."""
    if not 1 <= int(embedding_dim) <= 16000:
        raise ConfigError(f"EMBEDDING_DIM must be between 1 and 16000, got {embedding_dim}")
    return text.replace("{{embedding_dim}}", str(int(embedding_dim)))


def migrate(
    admin_url: str,
    *,
    app_role: str,
    embedding_model: str,
    embedding_dim: int,
    directory: Path = MIGRATIONS_DIR,
    context_key: bytes | None = None,
) -> list[str]:
    """Apply pending migrations and grant the app role its privileges. Returns versions applied.

    Safe to run from several processes at once (the advisory lock serialises them) and to run
    again (applied versions are skipped; an edited, already-applied file is an error).
    ``context_key`` (DATABASE_CONTEXT_KEY) is installed as the key that signs the tenant context
    (migration 0009); None leaves the installed key, if any, as it is.
    """
    applied_now: list[str] = []
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            _check_role(conn, app_role)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS folio_schema_migrations ("
                " version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done: dict[str, str] = dict(
                conn.execute("SELECT version, checksum FROM folio_schema_migrations").fetchall()
            )
            for migration in discover(directory):
                if migration.version in done:
                    if done[migration.version] in _REWRITTEN.get(migration.version, frozenset()):
                        conn.execute(
                            "UPDATE folio_schema_migrations SET checksum = %s WHERE version = %s",
                            (migration.checksum, migration.version),
                        )
                        _log.info("migration %s was rewritten; recorded its new checksum", migration.version)
                    elif done[migration.version] != migration.checksum:
                        raise ConfigError(
                            f"Migration {migration.version} was edited after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(render(migration.text, embedding_dim=embedding_dim))
                    conn.execute(
                        "INSERT INTO folio_schema_migrations (version, checksum) VALUES (%s, %s)",
                        (migration.version, migration.checksum),
                    )
                applied_now.append(migration.version)
                _log.info("applied migration %s", migration.version)
            _check_index_settings(conn, embedding_model, embedding_dim)
            if context_key is not None:
                install_context_key(conn, context_key)
            _grant(conn, app_role)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys (RFC 2104), which the database hashes with."""
    if not key:
        raise ConfigError("DATABASE_CONTEXT_KEY must not be empty")
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def install_context_key(conn: psycopg.Connection[Any], key: bytes) -> None:
    """Make ``key`` the one that signs tenant contexts; from then on unsigned contexts see no rows."""
    ipad, opad = hmac_pads(key)
    conn.execute(
        "INSERT INTO folio_context_key (only_row, ipad, opad) VALUES (true, %s, %s)"
        " ON CONFLICT (only_row) DO UPDATE SET ipad = EXCLUDED.ipad, opad = EXCLUDED.opad, installed_at = now()",
        (ipad, opad),
    )


def remove_context_key(conn: psycopg.Connection[Any]) -> None:
    """Stop checking signatures (tests, or an operator taking the key out of service)."""
    conn.execute("DELETE FROM folio_context_key")


def _check_role(conn: psycopg.Connection, role: str) -> None:
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
        raise ConfigError(
            f"Database role {role!r} (DATABASE_APP_ROLE) does not exist. `make dev` creates it locally; "
            "in Azure the post-deployment step creates it for the app's managed identity."
        )


def _check_index_settings(conn: psycopg.Connection, model: str, dim: int) -> None:
    """The embedding model and dimension are part of the index: changing them needs a re-embed."""
    conn.execute("CREATE TABLE IF NOT EXISTS folio_index_settings (key text PRIMARY KEY, value text NOT NULL)")
    conn.execute(
        "INSERT INTO folio_index_settings VALUES ('embedding_model', %s), ('embedding_dim', %s)"
        " ON CONFLICT (key) DO NOTHING",
        (model, str(dim)),
    )
    stored: dict[str, str] = dict(conn.execute("SELECT key, value FROM folio_index_settings").fetchall())
    if stored["embedding_dim"] != str(dim) or stored["embedding_model"] != model:
        raise ConfigError(
            f"The index was built with {stored['embedding_model']} ({stored['embedding_dim']} dimensions) but "
            f"EMBEDDING_MODEL/EMBEDDING_DIM say {model} ({dim}). Re-embedding is required before switching."
        )


def _grant(conn: psycopg.Connection, role: str) -> None:
    """DML on the product tables, nothing on bookkeeping tables or on `users` (definer functions only)."""
    ident = sql.Identifier(role)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
    conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident))
    conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident))
    for table in ("folio_schema_migrations", "folio_index_settings", "users", "folio_context_key"):
        if conn.execute("SELECT to_regclass(%s) IS NULL", (table,)).fetchone() == (True,):
            continue  # folio_context_key: a database migrated only up to an older version
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), ident))
    conn.execute(sql.SQL("GRANT SELECT ON folio_index_settings TO {}").format(ident))
    # Read-only views (tenant_chunks runs with the owner's rights: writes must go to the table).
    for view in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'").fetchall():
        conn.execute(
            sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(view[0]), ident)
        )
