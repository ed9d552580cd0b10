"""Operator commands: `python -m shared.cli migrate | config | deadletters | ingest | billing-flush`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from shared.config import get_settings

if TYPE_CHECKING:
    from shared.ports import JobQueue


def _migrate(_: argparse.Namespace) -> int:
    from shared.db.migrate import migrate
    from shared.db.pool import context_key_bytes

    settings = get_settings()
    admin = settings.database_admin_url or settings.require("database_url")
    applied = migrate(
        admin.reveal(),
        app_role=settings.database_app_role,
        embedding_model=settings.embedding_model,
        embedding_dim=settings.embedding_dim,
        # Installs (or rotates) the key that signs each transaction's tenant (migration 0009).
        context_key=context_key_bytes(settings),
    )
    print(json.dumps({"applied": applied}))
    return 0


def _config(_: argparse.Namespace) -> int:
    print(json.dumps(get_settings().describe(), indent=2, default=str))
    return 0


def _deadletters(args: argparse.Namespace) -> int:
    """List or replay dead letters: Service Bus in Azure, the local stand-in under `make dev`."""
    from shared.bootstrap import build_services

    # Built for this command from the current settings (a CLI run is a process of its own).
    parts = build_services()
    try:
        return _dead_letter_command(parts.job_queue, args)
    finally:
        parts.close()


def _dead_letter_command(queue: JobQueue, args: argparse.Namespace) -> int:
    if args.replay:
        replayed = [m for m in args.replay if queue.replay(m)]
        print(json.dumps({"replayed": replayed, "notFound": sorted(set(args.replay) - set(replayed))}))
        return 0 if len(replayed) == len(args.replay) else 1
    letters = queue.dead_letters(args.limit)
    print(
        json.dumps(
            [
                {
                    "messageId": d.message_id,
                    "deliveryCount": d.delivery_count,
                    "reason": d.reason,
                    "description": d.description,
                    "enqueuedAt": d.enqueued_at,
                    "body": d.body,
                }
                for d in letters
            ],
            indent=2,
            default=str,
        )
    )
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shared.folder_ingest import FolderIngest

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"{folder} is not a folder", file=sys.stderr)
        return 2
    if args.api_key:
        headers = {"Authorization": f"ApiKey {args.api_key}"}
    else:
        headers = FolderIngest.dev_principal(args.dev_user)
    results = FolderIngest(args.api, headers).run(folder, args.collection, timeout_s=args.timeout)
    print(json.dumps(results, indent=2))
    return 0 if all(r["status"] in ("ready", "skipped") for r in results.values()) else 1


def _billing_flush(_: argparse.Namespace) -> int:
    """What the billing timer runs: meter events to Stripe, queued subscription re-syncs, pruning."""
    from shared.billing import periodic
    from shared.bootstrap import services

    parts = services()
    print(json.dumps(periodic.run(parts.database, parts.settings), indent=2, default=str))
    return 0


def _apply_local_settings(path: str | None) -> None:
    """Read Values from local.settings.json (as `func start` would) for variables not already set."""
    import os
    from pathlib import Path

    candidates = [Path(path)] if path else [Path("local.settings.json"), Path("local.settings.sample.json")]
    for candidate in candidates:
        if candidate.is_file():
            for key, value in json.loads(candidate.read_text()).get("Values", {}).items():
                os.environ.setdefault(key, str(value))
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__)
    parser.add_argument(
        "--settings",
        help="a local.settings.json to read (default: ./local.settings.json, else the sample); exported variables win",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(run=_migrate)
    sub.add_parser("config", help="print every setting and its source, secrets masked").set_defaults(run=_config)
    dead = sub.add_parser("deadletters", help="list dead-lettered index jobs, or replay some by message id")
    dead.add_argument("--replay", nargs="+", metavar="MESSAGE_ID")
    dead.add_argument("--limit", type=int, default=100)
    dead.set_defaults(run=_deadletters)
    ingest = sub.add_parser("ingest", help="upload a folder through the API and wait until it is indexed")
    ingest.add_argument("folder")
    ingest.add_argument("--collection", required=True, help="collection name (created if missing)")
    ingest.add_argument("--api", default="http://127.0.0.1:7071/api")
    ingest.add_argument("--api-key", help="a workspace API key (member role); default: the dev sign-in")
    ingest.add_argument("--dev-user", default="dev@localhost", help="email of the local dev sign-in")
    ingest.add_argument("--timeout", type=float, default=3600)
    ingest.set_defaults(run=_ingest)
    sub.add_parser(
        "billing-flush",
        help="send pending meter events to Stripe and re-fetch queued subscriptions now (what the billing timer does)",
    ).set_defaults(run=_billing_flush)
    args = parser.parse_args(argv)
    _apply_local_settings(args.settings)
    from shared.errors import FolioError

    try:
        return int(args.run(args))
    except FolioError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
