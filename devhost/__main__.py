"""`python -m devhost` (what `make dev` runs): the whole local stack at http://127.0.0.1:7071/api/.

Every port is a setting (devhost/ports.py: FOLIO_PORT, FOLIO_WEB_PORT, FOLIO_PG_PORT,
FOLIO_AZURITE_PORT, FOLIO_COSMOS_PORT); a port already taken stops the start before anything runs,
naming the process that holds it and the setting that moves it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from devhost import ports, postgres, stack
from devhost.frontend import DIST, StaticWebAppServer
from devhost.functions import registrations
from devhost.http_server import FunctionsHttpServer, read_route_prefix


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except ports.PortInUse as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="the Functions host (default FOLIO_PORT, else 7071)")
    parser.add_argument("--no-azurite", action="store_true", help="do not start the Storage emulator")
    parser.add_argument("--no-cosmos", action="store_true", help="do not start the Cosmos DB emulator (chat)")
    parser.add_argument(
        "--no-http", action="store_true", help="only the event and queue drivers (when `func start` serves HTTP)"
    )
    parser.add_argument(
        "--web-port",
        type=int,
        default=None,
        help="the web app, as on Static Web Apps (default FOLIO_WEB_PORT, else 4280)",
    )
    parser.add_argument("--no-web", action="store_true", help="do not serve the web app")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("devhost")

    external_db = "DATABASE_URL" in os.environ  # exported by the user: use that server as is
    local = stack.load_local_settings()
    stack.apply_settings(local.get("Values", {}))
    http_port = args.port if args.port is not None else ports.port("FOLIO_PORT")
    web_port = args.web_port if args.web_port is not None else ports.port("FOLIO_WEB_PORT")
    pg_port = ports.port("FOLIO_PG_PORT")
    azurite_port = ports.port("FOLIO_AZURITE_PORT")
    # Every port is checked before anything starts: a second `make dev` stops here, cleanly.
    if not args.no_http:
        ports.ensure_free(http_port, "FOLIO_PORT" if args.port is None else "--port")
    if not args.no_web:
        ports.ensure_free(web_port, "FOLIO_WEB_PORT" if args.web_port is None else "--web-port")
    if not args.no_azurite:
        for offset in range(3):  # blob, queue, table
            ports.ensure_free(azurite_port + offset, "FOLIO_AZURITE_PORT")
    if not external_db:
        if not postgres.accepts(postgres.LocalPostgres(stack.LOCAL / "pg", pg_port)):
            ports.ensure_free(pg_port, "FOLIO_PG_PORT")
        stack.point_settings_at_ports(pg_port=pg_port, azurite_port=azurite_port)
        pg = postgres.start(stack.LOCAL / "pg", pg_port)
        postgres.ensure_database(pg, "folio", app_role=os.environ.get("DATABASE_APP_ROLE", "folio_app"))
        log.info("PostgreSQL (pgvector) on 127.0.0.1:%s, data in .local/pg", pg_port)
    else:
        os.environ.setdefault("DATABASE_ADMIN_URL", os.environ["DATABASE_URL"])
        log.info("using the PostgreSQL server from DATABASE_URL")

    from shared.cli import main as cli
    from shared.config import get_settings
    from shared.telemetry import configure_logging

    configure_logging(get_settings())
    cli(["migrate"])

    azurite = None
    if not args.no_azurite:
        azurite = stack.start_azurite(
            stack.LOCAL / "azurite", blob_port=azurite_port, queue_port=azurite_port + 1, table_port=azurite_port + 2
        )
        log.info("Azurite blob endpoint on http://127.0.0.1:%s/devstoreaccount1", azurite.blob_port)

    cosmos = None if args.no_cosmos else _start_cosmos(log)
    from devhost.services import local_services
    from shared import bootstrap

    bootstrap.install(local_services())

    import function_app

    regs = registrations(function_app.app)
    drivers = start_drivers(regs, cors_origins=_cors(local))
    server = None
    if not args.no_http:
        server = FunctionsHttpServer(
            ("127.0.0.1", http_port),
            regs,
            route_prefix=read_route_prefix(stack.ROOT / "host.json"),
            cors_origins=_cors(local),
        )
        for route in server.routes:
            log.info("  %-22s %-7s /%s", route.registration.name, ",".join(sorted(route.methods)), route.template)
        log.info("Functions host on %s/api/ (Ctrl-C stops everything)", server.base_url)

    web = None if args.no_web else start_web_app(web_port, f"http://127.0.0.1:{http_port}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pidfile = stack.LOCAL / "devhost.pid"  # so `make stop` from another terminal can end this host too
    pidfile.write_text(f"{os.getpid()}\n")
    if server:
        server.start_in_thread()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        pidfile.unlink(missing_ok=True)
        for driver in drivers:
            driver.stop()
        if server:
            server.shutdown()
        if web:
            web.shutdown()
        if azurite:
            azurite.stop()
        if cosmos:
            cosmos.stop()
        if not external_db:
            postgres.stop(stack.LOCAL / "pg")
    return 0


def _start_cosmos(log: logging.Logger) -> stack.CosmosEmulator | None:
    """The local Cosmos DB stand-in, when COSMOS_ENDPOINT points at this machine; with its container."""
    from urllib.parse import urlsplit

    from devhost.cosmos import is_local_endpoint
    from shared.config import get_settings

    settings = get_settings()
    if not settings.cosmos_endpoint or not is_local_endpoint(settings.cosmos_endpoint):
        log.info("Cosmos DB: using %s", settings.cosmos_endpoint or "nothing (COSMOS_ENDPOINT is unset; chat is off)")
        return None
    port = urlsplit(settings.cosmos_endpoint).port or ports.port("FOLIO_COSMOS_PORT")
    ports.ensure_free(port, "FOLIO_COSMOS_PORT (and the port in COSMOS_ENDPOINT)")
    emulator = stack.start_cosmos(port)
    log.info(
        "Cosmos DB emulator (cosmosdb-server, memory only) on %s, container %s/%s",
        emulator.endpoint,
        settings.cosmos_database,
        settings.cosmos_chat_container,
    )
    return emulator


def _cors(local: dict) -> tuple[str, ...]:
    return tuple(o.strip() for o in str(local.get("Host", {}).get("CORS", "")).split(",") if o.strip())


def start_web_app(port: int, api_upstream: str) -> StaticWebAppServer:
    """The built web app on one origin with /api passed to the Functions host, as Static Web Apps serves it."""
    from urllib.parse import urlsplit

    from shared.bootstrap import services
    from shared.storage import AzureBlobStore

    log = logging.getLogger("devhost")
    store = services().blobs
    assert isinstance(store, AzureBlobStore)  # devhost runs the real adapter against Azurite
    blob = urlsplit(store.container.url)  # browsers PUT uploads there (CSP connect-src)
    web = StaticWebAppServer(("127.0.0.1", port), api_upstream, connect_sources=(f"{blob.scheme}://{blob.netloc}",))
    web.start_in_thread()
    if not (DIST / "index.html").exists():
        log.warning("frontend/dist is missing: `make dev` builds it (npm ci && npm run build in frontend/)")
    log.info("Web app on %s (dev sign-in; /api -> %s)", web.base_url, api_upstream)
    return web


def start_drivers(regs: list, *, cors_origins: tuple[str, ...]) -> list:
    """Event Grid, Service Bus and timer stand-ins that drive the app's non-HTTP functions."""
    from devhost.eventgrid import BlobEventSource
    from devhost.local_queue import PostgresQueue
    from devhost.servicebus import QueueWorker
    from shared.bootstrap import services
    from shared.storage import AzureBlobStore

    log = logging.getLogger("devhost")
    parts = services()
    settings = parts.settings
    by_type = {r.trigger_type: r for r in regs}
    store = parts.blobs
    assert isinstance(store, AzureBlobStore)  # devhost runs the real adapter against Azurite
    store.ensure_container()
    store.allow_browser_uploads(cors_origins)
    drivers: list = []
    if "eventGridTrigger" in by_type:
        events = BlobEventSource(store.container, by_type["eventGridTrigger"])
        events.start()
        drivers.append(events)
        log.info(
            "Event Grid stand-in: blob changes in '%s' -> %s",
            settings.upload_container,
            by_type["eventGridTrigger"].name,
        )
    if "serviceBusTrigger" in by_type and settings.index_queue_backend == "postgres":
        assert isinstance(parts.job_queue, PostgresQueue)  # what INDEX_QUEUE_BACKEND=postgres selects
        worker = QueueWorker(parts.job_queue, by_type["serviceBusTrigger"])
        worker.start()
        drivers.append(worker)
        log.info("Service Bus stand-in: queue '%s' -> %s", settings.index_queue_name, by_type["serviceBusTrigger"].name)
    if any(r.trigger_type == "timerTrigger" for r in regs):
        from devhost.timers import TimerDriver

        timers = TimerDriver(regs)
        timers.start()
        drivers.append(timers)
        for name, schedule in timers.schedules.items():
            log.info("timer: %s on '%s' (UTC)", name, schedule)
    return drivers


if __name__ == "__main__":
    sys.exit(main())
