"""The Slack bot: /avatar-video, a modal to pick avatar and settings, progress messages, delivered videos.

Tokens come from SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_APP_TOKEN (environment or
systemd credentials); without them the plugin stays off and says so once. Socket Mode by
default (no public URL); `mode: http` (or SLACK_MODE=http) takes Slack's requests at
POST /slack/events on the daemon's server, each verified by signature and timestamp.
Settings: daemon.yaml `plugins.settings.slack` (see settings.py).
"""

from __future__ import annotations

import logging
import weakref

from pydantic import ValidationError

from avatar_daemon import ConfigError, hookimpl

from . import settings as slack_settings

log = logging.getLogger(__name__)

_apps: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _app(daemon):
    """The Bolt app, bot and settings for this daemon, or None when Slack is off."""
    if daemon not in _apps:
        try:
            cfg, tokens = slack_settings.load(daemon.plugin_config("slack"))
        except ValidationError as exc:
            where = daemon.settings.config_path or "daemon.yaml"
            raise ConfigError([f"{where}:1: plugins.settings.slack.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                               for e in exc.errors()]) from None
        missing = [n for n, v in (("SLACK_BOT_TOKEN", tokens.bot), ("SLACK_SIGNING_SECRET", tokens.signing_secret),
                                  ("SLACK_APP_TOKEN", tokens.app if cfg.mode == "socket" else "-")) if not v]
        if missing:
            log.info("slack: off (%s not set)", ", ".join(missing))
            _apps[daemon] = None
        else:
            from .app import build

            app, bot = build(daemon, cfg, tokens)
            _apps[daemon] = (app, bot, cfg, tokens)
    return _apps[daemon]


@hookimpl
def register_services(register, daemon):
    built = _app(daemon)
    if built:
        from .service import SlackService

        register(SlackService(*built))


@hookimpl
def register_routes(register, daemon):
    built = _app(daemon)
    if built and built[2].mode == "http":
        from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

        app = built[0]

        async def events(request):
            return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

        register("POST", "/slack/events", events)
