"""`avatar-daemon nodes`: the daemons sharing this database, as their heartbeats left them."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import AvatarDaemonError
from .logs import redact
from .settings import load_settings

if TYPE_CHECKING:
    from .daemon import Daemon


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("nodes", help="list the daemons sharing the database: heartbeat, running jobs, renderers; "
                "forget one that is gone for good", examples=["nodes", "nodes --json", "nodes forget studio-2"])
    p.add_argument("action", nargs="?", default="list", choices=["list", "forget"], help="what to do (default: list)")
    p.add_argument("id", nargs="?", help="forget: the node id (one that sends no heartbeat and runs nothing)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_nodes)


def cmd_nodes(args: argparse.Namespace) -> int:
    from .daemon import Daemon  # here, not at the top: `avatar-daemon --help` loads no plugin

    daemon = Daemon(load_settings(Path(args.config) if args.config else None))
    if args.action == "forget":
        if not args.id:
            raise AvatarDaemonError("nodes forget: name the node id (see `avatar-daemon nodes`)")
        print(redact(asyncio.run(_forget(daemon, args.id))))
        return 0
    rows = asyncio.run(_rows(daemon))
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


async def _forget(daemon: "Daemon", node: str) -> str:
    """A decommissioned node leaves the list; a live one, or one whose jobs still run, is refused."""
    rows = {r["node_id"]: r for r in await _rows(daemon)}
    if node not in rows:
        raise AvatarDaemonError(f"nodes forget: no node {node!r} (known: {', '.join(sorted(rows)) or 'none'})")
    if rows[node]["alive"] or rows[node]["running"]:
        raise AvatarDaemonError(f"nodes forget: {node!r} still sends heartbeats or runs jobs: stop it first "
                                "(its jobs move to other nodes when its lease runs out)")
    async with daemon.started():
        await daemon.store.remove_node(node)
    return f"node {node!r} forgotten"


async def _rows(daemon: "Daemon") -> list[dict[str, Any]]:
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
