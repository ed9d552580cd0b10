"""The connection pool: tenant context per transaction, Entra token passwords, clean failures."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from shared.db import Database, one
from shared.errors import Unavailable


def test_entra_auth_fetches_a_fresh_token_for_each_new_connection(database_urls: dict[str, str]) -> None:
    issued: list[str] = []

    def token() -> str:
        issued.append(f"token-{len(issued)}")
        return issued[-1]

    # The embedded server trusts local connections, so any password works; what matters is that
    # every new physical connection asked for its own token (they expire after about an hour).
    db = Database(database_urls["app"], min_size=1, max_size=2, token=token)
    try:
        with db.transaction() as first, db.transaction() as second:
            assert one(first.execute("SELECT 1 AS one").fetchone())["one"] == 1
            assert one(second.execute("SELECT 1 AS one").fetchone())["one"] == 1
    finally:
        db.close()
    assert len(issued) >= 2 and len(set(issued)) == len(issued)


def test_transaction_sets_tenant_and_extra_settings_locally(database_urls: dict[str, str]) -> None:
    db = Database(database_urls["app"], max_size=1)
    tenant = uuid.uuid4()
    try:
        with db.transaction(tenant, local_settings={"hnsw.ef_search": "77"}) as conn:
            row = conn.execute(
                "SELECT current_setting('app.tenant_id') AS t, current_setting('hnsw.ef_search') AS ef"
            ).fetchone()
            assert row == {"t": str(tenant), "ef": "77"}
        with db.transaction() as conn:  # same pooled connection, nothing carried over
            row = conn.execute(
                "SELECT current_setting('app.tenant_id', true) AS t, current_setting('hnsw.ef_search') AS ef"
            ).fetchone()
            assert row is not None and row["t"] == "" and row["ef"] != "77"
    finally:
        db.close()


def test_unreachable_database_is_unavailable_not_a_hang(caplog: pytest.LogCaptureFixture) -> None:
    db = Database("postgresql://folio_app@127.0.0.1:9/none", timeout_s=1)
    try:
        with pytest.raises(Unavailable), db.transaction() as conn:
            conn.execute("SELECT 1")
    finally:
        db.close()


def test_log_records_carry_the_invocation_id(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="folio.http")
    response = client.get("/api/health")
    invocation = response.json().get("invocationId") or response.headers.get("x-invocation-id")
    records = [r for r in caplog.records if r.name == "folio.http" and "/api/health" in r.getMessage()]
    assert records and all(getattr(r, "invocation_id", None) for r in records)
    if invocation:
        assert getattr(records[-1], "invocation_id", None) == invocation
