"""`avatar-daemon nodes`: the daemons sharing this database, as their heartbeats left them."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .logs import redact
from .settings import load_settings

if TYPE_CHECKING:  # `--help` must not import the daemon (and PyAV with it)
    from .daemon import Daemon


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("nodes", help="list the daemons sharing the database: heartbeat, running jobs, renderers",
                examples=["nodes", "nodes --json"])
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_nodes)


def cmd_nodes(args: argparse.Namespace) -> int:
    from .daemon import Daemon
    rows = asyncio.run(_rows(Daemon(load_settings(Path(args.config) if args.config else None))))
    if args.json:
        print(redact(json.dumps(rows, indent=2)))  # through the logs' mask, as every command prints
        return 0
    for line in table(rows):
        print(redact(line))
    return 0


def table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["no daemon has sent a heartbeat to this database yet"]
    out = [f"{'NODE':<28} {'HOST':<20} {'STARTED':<20} {'LAST HEARTBEAT':<22} {'RUNNING':>7}  RENDERERS"]
    for r in rows:
        age = f"{r['heartbeat_age_seconds']:.0f} s ago" + ("" if r["alive"] else " (gone)")
        out.append(f"{r['node_id']:<28} {r['host']:<20} {r['started_at'][:19]:<20} {age:<22} {r['running']:>7}  "
                   f"{', '.join(r['renderers'])}")
    return out


async def _rows(daemon: Daemon) -> list[dict[str, Any]]:
    async with daemon.started():
        now = daemon.store.clock()
        lease = daemon.settings.jobs.lease_seconds
        out = []
        for n in await daemon.store.nodes():
            age = (now - datetime.fromisoformat(n.heartbeat_at)).total_seconds()
            out.append({"node_id": n.node_id, "host": n.host, "started_at": n.started_at,
                        "heartbeat_at": n.heartbeat_at, "heartbeat_age_seconds": round(age, 1),
                        "alive": age <= lease, "running": n.running, "renderers": n.renderers})
        return out
