"""What `avatar-daemon doctor` tries for Slack: each token the configured mode needs, by one Web API call."""

from __future__ import annotations

import asyncio

import aiohttp

from avatar_daemon import Finding

from .settings import SlackSettings, Tokens

NEEDED = {"auth.test": ("slack bot", "SLACK_BOT_TOKEN", "install the app and copy its Bot User OAuth Token (xoxb-)"),
          "apps.connections.open": ("slack app", "SLACK_APP_TOKEN",
                                    "Socket Mode needs an app-level token (xapp-) with connections:write")}


class SlackTokensCheck:
    name = "slack"

    def __init__(self, cfg: SlackSettings, tokens: Tokens):
        self.cfg, self.tokens = cfg, tokens

    async def run(self, http: aiohttp.ClientSession) -> list[Finding]:
        t = self.tokens
        if not (t.bot or t.app or t.signing_secret):
            return [Finding.skip("slack", "no Slack tokens set (the Slack plugin stays off)")]
        found = [await self.call(http, "auth.test", t.bot)]
        if self.cfg.mode == "socket":
            found.append(await self.call(http, "apps.connections.open", t.app))
        elif not t.signing_secret:
            found.append(Finding.fail("slack signing", "HTTP mode needs SLACK_SIGNING_SECRET (Basic Information page)"))
        else:
            found.append(Finding.ok("slack signing", "SLACK_SIGNING_SECRET is set (HTTP mode)"))
        return found

    async def call(self, http: aiohttp.ClientSession, method: str, token: str | None) -> Finding:
        check, name, needed = NEEDED[method]
        if not token:
            return Finding.fail(check, f"{name} is not set: {needed}")
        api_url = self.cfg.api_url
        try:
            async with http.post(api_url + method, headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            return Finding.fail(check, f"cannot ask {api_url} ({exc or type(exc).__name__}): check the network or "
                                       "plugins.settings.slack.api_url")
        if not isinstance(body, dict) or not body.get("ok"):
            error = body.get("error") if isinstance(body, dict) else f"HTTP {resp.status}"
            return Finding.fail(check, f"Slack refused {name} ({error}): copy it again from the app's settings page")
        if method == "auth.test":
            return Finding.ok(check, f"bot {body.get('user')} in {body.get('team')}")
        return Finding.ok(check, "opens a Socket Mode connection")
