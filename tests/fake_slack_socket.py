"""Slack's Socket Mode, played on 127.0.0.1 for slack_sdk's aiohttp client.

As Slack's Socket Mode documentation describes it: `apps.connections.open`, called with the
app-level token, answers a WebSocket URL with a one-time ticket; the server greets each
connection with `hello`, sends envelopes (`envelope_id`, `type`, `payload`,
`accepts_response_payload`, `retry_attempt`, `retry_reason`), and takes an ack
(`{"envelope_id", "payload"?}`). An envelope that was not acked is delivered again with the
same id and payload and `retry_attempt` + 1, on whichever connection is open then. Before
closing a connection on purpose Slack sends `{"type": "disconnect", "reason":
"refresh_requested"}`; it answers pings with pongs. A test can also cut a connection's TCP
stream without any goodbye, or make it go silent (no pongs, nothing sent) as a dead network
path does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Connection:
    n: int
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    silent: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Envelope:
    id: str
    kind: str
    payload: dict[str, Any]
    retry_attempt: int = 0
    acked: bool = False

    def message(self, retry_reason: str = "") -> dict[str, Any]:
        return {"envelope_id": self.id, "type": self.kind, "payload": self.payload,
                "accepts_response_payload": self.kind != "events_api",
                "retry_attempt": self.retry_attempt, "retry_reason": retry_reason}


class SocketMode:
    def __init__(self) -> None:
        self.base = ""                                   # ws://127.0.0.1:PORT, set by FakeSlack.serve
        self.tickets: set[str] = set()
        self.connections: list[Connection] = []
        self.envelopes: dict[str, Envelope] = {}
        self.acks: dict[str, list[dict[str, Any]]] = {}  # envelope id -> the payload of each ack
        self.pings = 0

    # ---- what the client meets ----------------------------------------------------------------------

    def open(self) -> dict[str, Any]:
        """apps.connections.open's answer."""
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return {"ok": True, "url": f"{self.base}/link/?ticket={ticket}&app_id=A0APP"}

    async def link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid ticket")
        self.tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=False)   # pongs are ours to give, or to withhold
        await ws.prepare(request)
        conn = Connection(len(self.connections) + 1, ws, request.transport)
        self.connections.append(conn)
        await ws.send_json({"type": "hello", "num_connections": len(self.live()),
                            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                            "connection_info": {"app_id": "A0APP"}})
        for envelope in list(self.envelopes.values()):  # not acked on a connection that went away
            if not envelope.acked:
                envelope.retry_attempt += 1
                await ws.send_json(envelope.message("timeout"))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    self.pings += 1
                    if not conn.silent:
                        await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT and not conn.silent:
                    data = json.loads(msg.data)
                    if data.get("envelope_id") in self.envelopes:
                        self.envelopes[data["envelope_id"]].acked = True
                        self.acks.setdefault(data["envelope_id"], []).append(data.get("payload") or {})
        finally:
            conn.closed.set()
        return ws

    # ---- what a test does ------------------------------------------------------------------------------

    def live(self) -> list[Connection]:
        return [c for c in self.connections if not c.closed.is_set() and not c.ws.closed]

    async def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Deliver a new envelope on the newest open connection (or on the next one to open); its id."""
        envelope = Envelope(str(uuid.uuid4()), kind, payload)
        self.envelopes[envelope.id] = envelope
        live = [c for c in self.live() if not c.silent]
        if live:
            with contextlib.suppress(ConnectionError):  # it just went away: the next connection gets it
                await live[-1].ws.send_json(envelope.message())
        return envelope.id

    async def resend(self, envelope_id: str, reason: str = "timeout") -> None:
        """Slack's re-delivery of an envelope it thinks was not acked: same id and payload."""
        envelope = self.envelopes[envelope_id]
        envelope.retry_attempt += 1
        await self.live()[-1].ws.send_json(envelope.message(reason))

    async def refresh(self) -> None:
        """What Slack does every few hours: ask the client to reconnect, then close the old connection."""
        old = self.live()[-1]
        count = len(self.connections)
        await old.ws.send_json({"type": "disconnect", "reason": "refresh_requested",
                                "debug_info": {"host": "applink-fake"}})
        for _ in range(200):  # the client closes it itself once it has a new one; else Slack does
            if len(self.connections) > count or old.closed.is_set():
                break
            await asyncio.sleep(0.02)
        if not old.ws.closed:
            await old.ws.close()

    def drop(self) -> None:
        """The TCP stream is cut: no close frame, no disconnect message."""
        self.live()[-1].transport.abort()

    def silence(self) -> None:
        """The network path dies without a word: the connection stays open, nothing comes back."""
        self.live()[-1].silent = True

    async def close_all(self) -> None:
        for conn in self.connections:
            if not conn.ws.closed:
                await conn.ws.close()
