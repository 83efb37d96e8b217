"""`avatar-daemon publish` and `avatar-daemon accounts`: post a finished video, and see what the accounts reach.

`publish` queues through the store, as the HTTP API and Slack do: the running daemon (any
node of several) picks the publication up within `publishing.poll_seconds` and uploads it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import AvatarDaemonError
from .logs import redact
from .settings import load_settings

if TYPE_CHECKING:
    from .daemon import Daemon


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("publish", help="post a finished video to a platform (the running daemon uploads it), or show "
                "where its posts are", examples=["publish 42 --to youtube", "publish 42 --to youtube --to tiktok "
                                                 "--privacy unlisted", "publish 42 --to youtube --account acme-shorts",
                                                 "publish 42", "publish 42 --wait --json"])
    p.add_argument("id", type=int, help="the video (job) id")
    p.add_argument("--to", action="append", default=[], metavar="PLATFORM",
                   help="a platform to post to (youtube, tiktok, instagram); repeat for several; none: only show")
    p.add_argument("--account", action="append", default=[], metavar="NAME",
                   help="post with this account of publishing.accounts (default: each platform's default account)")
    p.add_argument("--privacy", choices=["private", "unlisted", "public"],
                   help="over the campaign's and template's publish.privacy (default: private)")
    p.add_argument("--made-for-kids", action="store_true", default=None, help="declare the video made for children")
    p.add_argument("--category", metavar="ID", help="the platform's category id (YouTube: 28 Science & Technology)")
    p.add_argument("--wait", action="store_true", help="wait until every post is published or failed")
    p.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="with --wait: give up waiting after this long (default: 3600)")
    p.add_argument("--json", action="store_true", help="print the publications as JSON")
    p.set_defaults(func=cmd_publish)

    p = command("accounts", help="list the platform accounts of publishing.accounts and check what each reaches",
                examples=["accounts", "accounts --no-check", "accounts --json"])
    p.add_argument("--no-check", action="store_true", help="list only; do not call the platforms")
    p.add_argument("--json", action="store_true", help="print the accounts and their checks as JSON")
    p.set_defaults(func=cmd_accounts)


def say(text: str) -> None:
    print(redact(text))  # through the logs' mask, as every command prints


def daemon_for(args: argparse.Namespace) -> "Daemon":
    from .daemon import Daemon  # here, not at the top: `avatar-daemon --help` loads no plugin

    return Daemon(load_settings(Path(args.config) if args.config else None))


def cmd_publish(args: argparse.Namespace) -> int:
    rows = asyncio.run(_publish(daemon_for(args), args))
    if args.json:
        say(json.dumps(rows, indent=2))
    else:
        for line in table(rows) if rows else [f"video {args.id} has no publications (add --to PLATFORM)"]:
            say(line)
    return 1 if any(r["state"] == "failed" for r in rows) and args.wait else 0


async def _publish(daemon: "Daemon", args: argparse.Namespace) -> list[dict[str, Any]]:
    options = {k: v for k, v in (("privacy", args.privacy), ("made_for_kids", args.made_for_kids),
                                 ("category", args.category)) if v is not None}
    async with daemon.started():
        publishing = daemon.publishing
        if args.to:
            await publishing.request(args.id, args.to, accounts=args.account or None, options=options or None,
                                     by="command line")
        elif args.account or options:
            raise AvatarDaemonError("publish: --account, --privacy, --made-for-kids and --category go with --to")
        rows = await publishing.for_video(args.id)
        if args.wait:
            async with asyncio.timeout(args.timeout):
                while any(r["state"] not in ("published", "failed") for r in rows):
                    await asyncio.sleep(1.0)
                    rows = await publishing.for_video(args.id)
        return rows


def table(rows: list[dict[str, Any]]) -> list[str]:
    out = [f"{'ID':>5}  {'PLATFORM':<10} {'ACCOUNT':<20} {'STATE':<11} {'%':>5}  WHERE / WHY"]
    for r in rows:
        where = r["url"] or r["error"] or r["message"] or ""
        if r["not_before"] and r["state"] not in ("published", "failed"):
            where = f"{where} (not before {r['not_before'][:19]})".strip()
        out.append(f"{r['id']:>5}  {r['platform']:<10} {r['account']:<20} {r['state']:<11} {r['percent']:>5.0f}  "
                   f"{where}")
    return out


def cmd_accounts(args: argparse.Namespace) -> int:
    rows = asyncio.run(_accounts(daemon_for(args), check=not args.no_check))
    if args.json:
        say(json.dumps(rows, indent=2))
    elif not rows:
        say("no accounts: add them under publishing.accounts in daemon.yaml (see the README's Publishing section)")
    else:
        say(f"{'ACCOUNT':<20} {'PLATFORM':<10} {'DEFAULT':<8} CHECK")
        for r in rows:
            say(f"{r['name']:<20} {r['platform']:<10} {'yes' if r['default'] else '':<8} "
                f"{'ok: ' if r['ok'] else 'FAILED: ' if r['ok'] is False else ''}{r['check']}")
    return 1 if any(r["ok"] is False for r in rows) else 0


async def _accounts(daemon: "Daemon", check: bool) -> list[dict[str, Any]]:
    """Each account and what its credentials reach; a publisher's refusal is that account's line, not a crash."""
    rows = []
    async with daemon.started():
        for account in daemon.accounts:
            row = {"name": account.name, "platform": account.platform, "default": account.default,
                   "ok": None, "check": "not checked"}
            publisher = daemon.catalogue.publishers.get(account.platform)
            if publisher is None:
                row.update(ok=False, check=f"no publisher plugin for {account.platform} is loaded (known: "
                                           f"{', '.join(daemon.catalogue.publishers.names()) or 'none'})")
            elif check:
                try:
                    row.update(ok=True, check=await publisher.check(account, daemon.http))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a refusal or a broken plugin: said on this line, the others still run
                    reason = str(exc) if isinstance(exc, AvatarDaemonError) else f"{type(exc).__name__}: {exc}"
                    row.update(ok=False, check=reason)
            rows.append(row)
    return rows
