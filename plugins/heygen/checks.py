"""What `avatar-daemon doctor` tries for HeyGen: the key, against the API the settings name."""

from __future__ import annotations

import asyncio

import aiohttp

from avatar_daemon import Finding, secret

from .renderer import KEY_NAME


class HeyGenKeyCheck:
    name = "heygen"

    def __init__(self, base_url: str):
        self.base_url = base_url

    async def run(self, http: aiohttp.ClientSession) -> list[Finding]:
        return [await self.try_key(http, secret(KEY_NAME))]

    async def try_key(self, http: aiohttp.ClientSession, key: str | None) -> Finding:
        if not key:
            return Finding.skip("heygen key", f"{KEY_NAME} is not set (needed only for the HeyGen renderer)")
        url = self.base_url.rstrip("/") + "/v2/user/remaining_quota"
        try:
            async with http.get(url, headers={"X-Api-Key": key, "Accept": "application/json"}) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            return Finding.fail("heygen key", f"cannot ask {self.base_url} ({exc or type(exc).__name__}): check "
                                              "the network or plugins.settings.heygen.base_url")
        if resp.status in (401, 403):
            return Finding.fail("heygen key", f"HeyGen refused the key ({resp.status}): make a new one in "
                                              f"HeyGen's settings and set {KEY_NAME}")
        if resp.status != 200:
            return Finding.fail("heygen key", f"{url} answered {resp.status}: try again later")
        quota = ((body or {}).get("data") or {}).get("remaining_quota") if isinstance(body, dict) else None
        return Finding.ok("heygen key", "accepted" + (f" ({quota:g} quota left)"
                                                      if isinstance(quota, (int, float)) else ""))
