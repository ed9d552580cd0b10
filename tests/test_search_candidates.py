"""Search's candidate functions of migration 0012 (#17: the large-workspace hybrid p95 after 0009).

folio_lexical_tiers takes every tier of the lexical candidates in one call and stops at the cap, as
the inline statement before 0009 did; folio_chunks_in_scope is the one place the tenant check and
the filters live, inlined into each definer function's statement so GIN and HNSW still answer.
Data is written as the schema owner; the functions are called as the app role with the suite's
signed context.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from shared.db import Conn, Database
from tests.conftest import TEST_CONTEXT_KEY

_FILTERS = "'{}'::uuid[], '{}'::uuid[], '{}'::text[], '{}'::text[]"
_VECTOR = "[" + ",".join(["0.1"] * 384) + "]"


def _workspace(admin_conn: Conn, bodies: list[str]) -> tuple[uuid.UUID, uuid.UUID, list[int]]:
    """A workspace with one collection, one document and a chunk per body: (tenant, collection, chunk ids)."""
    tenant, collection, document = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    admin_conn.execute("INSERT INTO tenants (tenant_id, name) VALUES (%s, 'candidates')", (tenant,))
    admin_conn.execute(
        "INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, 'c')", (tenant, collection)
    )
    admin_conn.execute(
        "INSERT INTO documents (tenant_id, document_id, collection_id, filename, blob_path, status)"
        " VALUES (%s, %s, %s, 'x.md', 'x', 'ready')",
        (tenant, document, collection),
    )
    ids = []
    for ordinal, body in enumerate(bodies):
        row = admin_conn.execute(
            "INSERT INTO chunks (tenant_id, document_id, collection_id, ordinal, body, char_start, char_end,"
            " content_hash, embedding) VALUES (%s, %s, %s, %s, %s, 0, %s, 'h', %s::vector) RETURNING chunk_id",
            (tenant, document, collection, ordinal, body, len(body), _VECTOR),
        ).fetchone()
        assert row is not None
        ids.append(int(row["chunk_id"]))
    return tenant, collection, ids


@pytest.fixture
def signed_db(database_urls: dict[str, str]) -> Iterator[Database]:
    """The app role's pool, signing each transaction with the suite's key as the app does."""
    db = Database(
        database_urls["app"],
        max_size=1,
        server_prepare=os.environ.get("DATABASE_SERVER_PREPARE") != "false",
        context_key=TEST_CONTEXT_KEY.encode(),
    )
    try:
        yield db
    finally:
        db.close()


def _tiers(conn: Conn, tenant: uuid.UUID, tiers: list[str | None], limit: int, *, scan: bool = False) -> list[int]:
    rows = conn.execute(
        f"SELECT chunk_id FROM folio_lexical_tiers(%s, %s::tsquery[], %s, {_FILTERS}, %s)", (tenant, tiers, scan, limit)
    ).fetchall()
    return [int(r["chunk_id"]) for r in rows]


def test_tiers_come_in_order_each_without_the_one_before_and_stop_at_the_cap(
    admin_conn: Conn, signed_db: Database
) -> None:
    tenant, _, ids = _workspace(
        admin_conn,
        ["quokka wombat numbat"] * 2 + ["quokka wombat"] * 3 + ["quokka alone"] * 4 + ["nothing here"],
    )
    three, two, either = ids[:2], ids[2:5], ids[5:9]
    tiers: list[str | None] = ["quokka & wombat & numbat", "quokka & wombat", "quokka | wombat"]
    with signed_db.transaction(tenant) as conn:
        for scan in (False, True):  # GIN (large workspaces) or the workspace's own rows (small ones)
            got = _tiers(conn, tenant, tiers, 100, scan=scan)
            assert sorted(got[:2]) == three and sorted(got[2:5]) == two and sorted(got[5:]) == either
            # The cap is the call's own: the first tiers fill it, the last is not read at all.
            capped = _tiers(conn, tenant, tiers, 4, scan=scan)
            assert sorted(capped[:2]) == three and set(capped[2:]) <= set(two) and len(capped) == 4
        # One tier is the plain form; absent and NULL tiers match nothing.
        assert sorted(_tiers(conn, tenant, ["quokka"], 100)) == ids[:9]
        assert _tiers(conn, tenant, [None, "quokka"], 100) == []
        assert _tiers(conn, tenant, [], 100) == []


def test_candidates_refuse_a_tenant_other_than_the_signed_one(admin_conn: Conn, signed_db: Database) -> None:
    tenant_a, _, _ = _workspace(admin_conn, ["alpha words"])
    tenant_b, _, _ = _workspace(admin_conn, ["zanzibar quokka"])
    vector = f"SELECT * FROM folio_vector_candidates(%s, '{_VECTOR}'::vector, %s, {_FILTERS}, 10)"
    with signed_db.transaction(tenant_a) as conn:
        for scan in (False, True):
            assert _tiers(conn, tenant_b, ["quokka"], 100, scan=scan) == []
            assert conn.execute(vector, (tenant_b, scan)).fetchall() == []
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_b),))  # an unsigned switch
        assert _tiers(conn, tenant_b, ["quokka"], 100, scan=True) == []
        assert conn.execute(vector, (tenant_b, True)).fetchall() == []
    with signed_db.transaction(tenant_b) as conn:
        assert len(_tiers(conn, tenant_b, ["quokka"], 100)) == 1
        assert len(conn.execute(vector, (tenant_b, True)).fetchall()) == 1
        assert len(conn.execute(vector, (tenant_b, False)).fetchall()) == 1


def test_the_collection_filter_applies_to_both_legs(admin_conn: Conn, signed_db: Database) -> None:
    tenant, collection, ids = _workspace(admin_conn, ["quokka one", "quokka two"])
    other = uuid.uuid4()
    admin_conn.execute("INSERT INTO collections (tenant_id, collection_id, name) VALUES (%s, %s, 'o')", (tenant, other))
    with signed_db.transaction(tenant) as conn:
        for wanted, expected in (([collection], ids), ([other], [])):
            lexical = conn.execute(
                "SELECT chunk_id FROM folio_lexical_tiers(%s, '{quokka}', false, %s::uuid[], '{}', '{}', '{}', 10)",
                (tenant, wanted),
            ).fetchall()
            vector = conn.execute(
                f"SELECT chunk_id FROM folio_vector_candidates(%s, '{_VECTOR}', true, %s::uuid[], '{{}}', '{{}}',"
                " '{}', 10)",
                (tenant, wanted),
            ).fetchall()
            assert sorted(int(r["chunk_id"]) for r in lexical) == expected
            assert sorted(int(r["chunk_id"]) for r in vector) == expected


def test_the_scope_is_inlined_into_the_statement_that_reads_it(admin_conn: Conn) -> None:
    """Planned as the definer plans it: the scope's body becomes part of the caller's statement (no
    function scan that would read every row of the workspace first), so the caller's index
    conditions (tsv @@, ORDER BY embedding <=>) sit on the scan of chunks itself, where GIN and HNSW
    can answer them (benchmarks.search_barrier at 100k chunks shows that they do)."""
    scope = f"folio_chunks_in_scope('{uuid.uuid4()}', {_FILTERS}) c"
    lexical = _plan(admin_conn, f"SELECT c.chunk_id FROM {scope} WHERE c.tsv @@ 'quokka'::tsquery")
    vector = _plan(admin_conn, f"SELECT c.chunk_id FROM {scope} ORDER BY c.embedding <=> '{_VECTOR}' LIMIT 5")
    for plan in (lexical, vector):
        assert "folio_chunks_in_scope" not in plan and " on chunks c" in plan
    assert "tsv @@ '''quokka'''::tsquery" in lexical


def _plan(conn: Conn, sql: str) -> str:
    return "\n".join(str(r["QUERY PLAN"]) for r in conn.execute("EXPLAIN " + sql).fetchall())


def test_the_app_role_cannot_call_the_scope_itself(app_conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute(f"SELECT * FROM folio_chunks_in_scope('{uuid.uuid4()}', {_FILTERS})")
