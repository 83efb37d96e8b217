"""The Slack service: the Socket Mode connection (when used) and the progress messages."""

from __future__ import annotations

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
        if self.cfg.mode == "socket":
            self.handler = AsyncSocketModeHandler(self.app, self.tokens.app)
            await self.handler.connect_async()  # reconnects by itself on Slack's `disconnect`
            log.info("slack: connected in Socket Mode")
        if self.cfg.public_url and self.cfg.warm_previews and daemon.previews.available():
            self.bot.spawn(daemon.previews.warm())  # Slack fetches picker images at once: have them ready
        try:
            async with daemon.bus.watch() as events:
                while True:
                    await self.bot.on_event(await events.get())
        finally:
            await self.bot.drain()
            if self.handler is not None:
                await self.handler.close_async()
