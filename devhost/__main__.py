"""`python -m devhost` (what `make dev` runs): the whole local stack at http://127.0.0.1:7071/api/."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from devhost import postgres, stack
from devhost.functions import registrations
from devhost.http_server import FunctionsHttpServer, read_route_prefix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--no-azurite", action="store_true", help="do not start the Storage emulator")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("devhost")

    external_db = "DATABASE_URL" in os.environ  # exported by the user: use that server as is
    local = stack.load_local_settings()
    stack.apply_settings(local.get("Values", {}))
    if not external_db:
        pg = postgres.start(stack.LOCAL / "pg", stack.DEV_PG_PORT)
        postgres.ensure_database(pg, "folio", app_role=os.environ.get("DATABASE_APP_ROLE", "folio_app"))
        log.info("PostgreSQL (pgvector) on 127.0.0.1:%s, data in .local/pg", stack.DEV_PG_PORT)
    else:
        os.environ.setdefault("DATABASE_ADMIN_URL", os.environ["DATABASE_URL"])
        log.info("using the PostgreSQL server from DATABASE_URL")

    from shared.cli import main as cli

    cli(["migrate"])

    azurite = None
    if not args.no_azurite:
        azurite = stack.start_azurite(stack.LOCAL / "azurite")
        log.info("Azurite blob endpoint on http://127.0.0.1:%s/devstoreaccount1", azurite.blob_port)

    import function_app

    cors = tuple(o.strip() for o in str(local.get("Host", {}).get("CORS", "")).split(",") if o.strip())
    server = FunctionsHttpServer(("127.0.0.1", args.port), registrations(function_app.app),
                                 route_prefix=read_route_prefix(stack.ROOT / "host.json"), cors_origins=cors)
    for route in server.routes:
        log.info("  %-28s %s /%s", route.registration.name, ",".join(sorted(route.methods)),
                 route.pattern.pattern.strip("^$").replace("\\", ""))
    log.info("Functions host on %s/api/ (Ctrl-C stops everything)", server.base_url)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start_in_thread()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        if azurite:
            azurite.stop()
        if not external_db:
            postgres.stop(stack.LOCAL / "pg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
