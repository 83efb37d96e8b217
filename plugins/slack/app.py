"""The Bolt app: one AsyncWebClient at the configured API URL, Retry-After honoured, our bot in context."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from .bot import SlackBot
from .listeners import register_listeners
from .settings import SlackSettings, Tokens


class _TokenFromEnvironment(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that our client's token wins: which is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


BOLT_LOG = logging.getLogger("plugins.slack.bolt")
BOLT_LOG.addFilter(_TokenFromEnvironment())


def build(daemon: Any, cfg: SlackSettings, tokens: Tokens) -> tuple[AsyncApp, SlackBot]:
    client = AsyncWebClient(token=tokens.bot, base_url=cfg.api_url,
                            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)])
    # Bolt's own check is off in both modes: Socket Mode requests are not signed, and in HTTP
    # mode inbound.py verifies the raw bytes before Bolt sees the parsed body.
    app = AsyncApp(client=client, request_verification_enabled=False, logger=BOLT_LOG)
    bot = SlackBot(daemon, cfg, client)

    async def inject(context, next) -> None:
        context["bot"] = bot
        await next()

    app.middleware(inject)
    register_listeners(app, cfg.command)
    return app, bot
