"""The Slack service: the Socket Mode connection (when used) and the progress messages."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp

from .bot import SlackBot
from .settings import SlackSettings, Tokens

log = logging.getLogger(__name__)


class SlackService:
    name = "slack"

    def __init__(self, app: AsyncApp, bot: SlackBot, cfg: SlackSettings, tokens: Tokens):
        self.app, self.bot, self.cfg, self.tokens = app, bot, cfg, tokens
        self.handler: AsyncSocketModeHandler | None = None

    async def run(self, daemon: Any) -> None:
        if self.cfg.public_url and self.cfg.warm_previews and daemon.previews.available():
            self.bot.spawn(daemon.previews.warm())  # Slack fetches picker images at once: have them ready
        connecting: asyncio.Task | None = None
        try:
            async with daemon.bus.watch() as events:  # before connecting, so no event is missed meanwhile
                if self.cfg.mode == "socket":
                    # The client pings every interval and replaces a connection that closed or stopped
                    # answering; it also reconnects at once on Slack's `disconnect`.
                    self.handler = AsyncSocketModeHandler(self.app, self.tokens.app,
                                                          ping_interval=self.cfg.socket_ping_interval_seconds)
                    connecting = asyncio.create_task(self._connect())
                while True:
                    await self.bot.on_event(await events.get())
        finally:
            if connecting is not None and not connecting.done():
                connecting.cancel()  # Slack never answered: nothing to wait for
            await self.bot.drain()
            if self.handler is not None:
                await self.handler.close_async()

    async def _connect(self) -> None:
        await self.handler.connect_async()  # retries by itself until Slack answers
        log.info("slack: connected in Socket Mode")
