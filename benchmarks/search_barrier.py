"""Search latency before and after migration 0009 (signed tenant context, definer search functions), in one run.

    python -m benchmarks.search --chunks 100000 --json          (loads the data once)
    python -m benchmarks.search_barrier --chunks 100000 --baseline REV --json

Uses the database ``benchmarks.search`` loaded (``folio_bench_search_<chunks>``), which must have every
migration of this checkout (``--migrate`` applies the missing ones), and the same queries. For every query and mode the two versions run back to back, in random
order, on the same pooled connections and under the same machine load:

* **before**: ``shared/search.py`` as of ``--baseline REV`` (the two legs read the 0003 view,
  recreated here as ``tenant_chunks_0003``: not a barrier, the owner's rights), with no context key
  installed, so the tenant setting is taken as it is;
* **after**: the current ``shared/search.py`` (definer functions), with a context key installed and
  every transaction signed (the binding query pipelined with BEGIN, a signature check per statement).

Before anything is timed, every query runs once in both versions and every mode (``--warmup``). The
benchmark usually starts the database server itself, so its buffer cache is empty (256 MB against
750 MB of chunks and indexes at 100k), and without a warm-up the first mode measured (hybrid, on the
large workspace) took the cold reads, landing on either version by the coin: on the same code,
single passes gave hybrid p95 ratios from x0.93 to x1.55, with the first few queries of the list
among the slowest. ``--rounds N`` measures each query N times per version (interleaved) and pools
the samples.

Prints p50/p95 per version, workspace and mode, the after/before ratio of each, and the load
average before and after (the machine is shared: compare runs by ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
import types
from typing import Any

from benchmarks import beir
from benchmarks.common import ROOT
from benchmarks.search import SCIFACT, FixedQueryEmbedder, _reusable

_OLD_VIEW = "tenant_chunks_0003"


def baseline_search(rev: str) -> types.ModuleType:
    """shared/search.py at ``rev``, reading the 0003 view under its new name."""
    source = subprocess.run(
        ["git", "show", f"{rev}:shared/search.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType("folio_search_baseline")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:shared/search.py", "exec"), module.__dict__)  # our own file at REV
    build = module.__dict__["build_sql"]
    module.__dict__["build_sql"] = lambda *a, **k: build(*a, **k).replace("tenant_chunks", _OLD_VIEW)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--baseline", required=True, help="the commit whose search.py is 'before'")
    parser.add_argument("--rounds", type=int, default=1, help="timed runs of each query per version")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes over every query first (0: none)")
    parser.add_argument("--migrate", action="store_true", help="apply this checkout's pending migrations first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import psycopg

    from benchmarks.embedding_cache import CachedEmbedder
    from shared import search as current
    from shared.config import load_settings
    from shared.db import Database
    from shared.db.migrate import install_context_key, remove_context_key
    from shared.ingest.embedders import embedder_from_settings
    from shared.tenancy import Caller, Role

    built = _reusable(f"folio_bench_search_{args.chunks}", args.chunks)
    if built is None:
        raise SystemExit(f"load the data first: python -m benchmarks.search --chunks {args.chunks}")
    urls, tenants = built["urls"], built["tenants"]
    _require_migrated(urls["admin"], apply=args.migrate)
    old = baseline_search(args.baseline)
    dataset = beir.load(SCIFACT, "test")
    embedder = CachedEmbedder(
        embedder_from_settings(load_settings({})), ROOT / ".local" / "cache" / "embeddings.sqlite"
    )
    queries = list(dataset.queries.values())[: args.queries]
    vectors = embedder.embed(queries)
    key = secrets.token_bytes(32)

    fixed = FixedQueryEmbedder(embedder)
    with psycopg.connect(urls["admin"], autocommit=True) as admin:
        admin.execute(
            f"CREATE OR REPLACE VIEW {_OLD_VIEW} AS SELECT * FROM chunks WHERE tenant_id = folio_current_tenant()"
        )
        admin.execute(f"GRANT SELECT ON {_OLD_VIEW} TO folio_app")
        before_db = Database(urls["app"], max_size=2)
        after_db = Database(urls["app"], max_size=2, context_key=key)
        rng = random.Random(11)
        result: dict[str, Any] = {
            "chunks": args.chunks,
            "queries": len(queries),
            "baseline": args.baseline,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "load_average_before": round(os.getloadavg()[0], 2),
        }

        def timed(version: str, caller: Caller, mode: str, query: str) -> float:
            if version == "before":
                remove_context_key(admin)
                db, module = before_db, old
            else:
                install_context_key(admin, key)
                db, module = after_db, current
            request = module.SearchRequest(query=query, mode=mode, top=10)
            started = time.perf_counter()
            module.search(db, caller, request, embedder=fixed, highlight=False)
            return (time.perf_counter() - started) * 1000

        try:
            for _ in range(args.warmup):
                for tenant, _count in tenants.values():
                    for mode in ("hybrid", "lexical", "vector"):
                        for query, vector in zip(queries, vectors, strict=True):
                            fixed.next = vector
                            for version in ("before", "after"):
                                timed(version, Caller(tenant, Role.VIEWER, "user", "bench"), mode, query)
            for name, (tenant, count) in tenants.items():
                caller = Caller(tenant, Role.VIEWER, "user", "bench")
                per_mode: dict[str, Any] = {"rows": count}
                for mode in ("hybrid", "lexical", "vector"):
                    times: dict[str, list[float]] = {"before": [], "after": []}
                    for query, vector in zip(queries, vectors, strict=True):
                        fixed.next = vector
                        for _ in range(args.rounds):
                            order = ["before", "after"]
                            rng.shuffle(order)
                            for version in order:
                                times[version].append(timed(version, caller, mode, query))
                    stats = {}
                    for version, values in times.items():
                        values.sort()
                        stats[version] = {
                            "p50_ms": round(statistics.median(values), 2),
                            "p95_ms": round(values[int(len(values) * 0.95) - 1], 2),
                        }
                    stats["after_over_before"] = {
                        k: round(stats["after"][k] / stats["before"][k], 3) for k in ("p50_ms", "p95_ms")
                    }
                    per_mode[mode] = stats
                result[name] = per_mode
            result["load_average_after"] = round(os.getloadavg()[0], 2)
        finally:
            remove_context_key(admin)
            admin.execute(f"DROP VIEW IF EXISTS {_OLD_VIEW}")
            before_db.close()
            after_db.close()
    print(json.dumps(result))


def _require_migrated(admin_url: str, *, apply: bool) -> None:
    """The 'after' search runs against this checkout's schema: the loaded database (perhaps by an older
    checkout) must have every migration, applied here with ``apply`` (as benchmarks.search loads it)."""
    import psycopg

    from shared.db.migrate import discover, migrate

    if apply:
        migrate(admin_url, app_role="folio_app", embedding_model="all-MiniLM-L6-v2", embedding_dim=384)
    with psycopg.connect(admin_url) as conn:
        applied = {r[0] for r in conn.execute("SELECT version FROM folio_schema_migrations")}
    if missing := [m.version for m in discover() if m.version not in applied]:
        raise SystemExit(f"the benchmark database lacks migrations {', '.join(missing)}: run again with --migrate")


if __name__ == "__main__":
    main()
