"""Operator commands: `python -m shared.cli migrate | config`."""

from __future__ import annotations

import argparse
import json
import sys

from shared.config import get_settings


def _migrate(_: argparse.Namespace) -> int:
    from shared.db.migrate import migrate

    settings = get_settings()
    admin = settings.database_admin_url or settings.require("database_url")
    applied = migrate(admin.reveal(), app_role=settings.database_app_role,
                      embedding_model=settings.embedding_model, embedding_dim=settings.embedding_dim)
    print(json.dumps({"applied": applied}))
    return 0


def _config(_: argparse.Namespace) -> int:
    print(json.dumps(get_settings().describe(), indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(run=_migrate)
    sub.add_parser("config", help="print every setting and its source, secrets masked").set_defaults(run=_config)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
