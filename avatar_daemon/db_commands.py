"""`avatar-daemon db`: upgrade a database before the daemons restart, or move SQLite to PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any, Callable

from .errors import AvatarDaemonError
from .logs import redact
from .settings import load_settings
from .store import Store, describe
from .store.contract import is_postgres, sqlite_path


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("db", help="migrate the database, or copy a SQLite install into PostgreSQL",
                examples=["db migrate", "db migrate --database postgresql://avatar@db.internal/avatar",
                          "db copy --from var/avatar-daemon.sqlite3 --to postgresql://avatar@db.internal/avatar"])
    p.add_argument("action", choices=["migrate", "copy"], help="migrate: upgrade the schema; copy: move every row")
    p.add_argument("--database", metavar="URL", help="migrate: the database (default: the configured one)")
    p.add_argument("--from", dest="source", metavar="SQLITE", help="copy: the SQLite file (or sqlite:///path)")
    p.add_argument("--to", dest="target", metavar="POSTGRES", help="copy: postgresql://user@host/dbname, empty")
    p.set_defaults(func=cmd_db)


def say(text: str) -> None:
    print(redact(text))  # through the logs' mask, as every command prints


def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "copy":
        if not args.source or not args.target:
            raise AvatarDaemonError("db copy needs --from SQLITE and --to POSTGRES")
        if not is_postgres(args.target):
            raise AvatarDaemonError(f"db copy --to {args.target!r}: expected postgresql://user@host/dbname")
        from .store.copy import copy_sqlite_to_postgres

        source = sqlite_path(args.source)
        copied = asyncio.run(copy_sqlite_to_postgres(source, args.target))
        say(f"copied {describe(source)} to {describe(args.target)}:")
        for table, n in copied.items():
            say(f"  {table:<18} {n:>8}")
        say("point `database:` (or AVATAR_DAEMON_DATABASE) at the PostgreSQL URL and start the daemons")
        return 0
    database: Any = args.database or load_settings(Path(args.config) if args.config else None).database
    applied = asyncio.run(_migrate(database))
    say(f"{describe(database)}: " + (f"applied {', '.join(applied)}" if applied else "already up to date"))
    return 0


async def _migrate(database: Any) -> list[str]:
    async with Store.open(database, migrate=False) as store:
        return await store.migrate()

