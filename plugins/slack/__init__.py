"""The Slack bot: /avatar-video, a modal to pick avatar and settings, progress messages, delivered videos.

Tokens come from the environment or systemd credentials. Socket Mode (the default; no public
URL) needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN: its requests arrive over a socket the app
token opened, so nothing is signed. `mode: http` (or SLACK_MODE=http) needs SLACK_BOT_TOKEN
and SLACK_SIGNING_SECRET, and takes Slack's requests at POST /slack/events on the daemon's
server, each verified by signature and timestamp (inbound.py). Without its tokens the plugin
stays off and says which are missing, once. Settings: daemon.yaml `plugins.settings.slack`.
"""

from __future__ import annotations

import logging

from avatar_daemon import hookimpl, per_daemon

from . import settings as slack_settings

log = logging.getLogger(__name__)

@per_daemon
def _app(daemon):
    """The Bolt app, bot and settings for this daemon, or None when Slack is off."""
    cfg, tokens = slack_settings.load(daemon)
    needed = {"SLACK_BOT_TOKEN": tokens.bot, **({"SLACK_APP_TOKEN": tokens.app} if cfg.mode == "socket"
                                                 else {"SLACK_SIGNING_SECRET": tokens.signing_secret})}
    missing = [name for name, value in needed.items() if not value]
    if missing:
        log.info("slack: off (%s mode needs %s, not set)", cfg.mode, ", ".join(missing))
        return None
    from .app import build

    app, bot = build(daemon, cfg, tokens)
    return app, bot, cfg, tokens


@hookimpl
def register_services(register, daemon):
    built = _app(daemon)
    if built:
        from .service import SlackService

        register(SlackService(*built))


@hookimpl
def register_checks(register, daemon):
    from .checks import SlackTokensCheck

    register(SlackTokensCheck(*slack_settings.load(daemon)))


@hookimpl
def register_notify_targets(register):
    register(slack_settings.NotifyTarget())


@hookimpl
def register_routes(register, daemon):
    built = _app(daemon)
    if built and built[2].mode == "http":
        from .inbound import Inbound

        app, _, _, tokens = built
        register("POST", "/slack/events", Inbound(app, tokens.signing_secret, daemon.clock).handle)
