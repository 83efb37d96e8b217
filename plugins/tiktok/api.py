"""TikTok's Open API for one account: a fresh token on every call and TikTok's answers turned into our errors.

TikTok wraps every answer in ``{"data": ..., "error": {"code", "message", "log_id"}}`` and some refusals
arrive as HTTP 200 with a code other than ``ok`` (``spam_risk_too_many_posts``), so ``error.code`` is
read on every answer, whatever the status. Its per-minute limits (HTTP 429 / ``rate_limit_exceeded``)
and its daily post cap make the publication wait (QuotaWait), they do not fail it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Callable

import aiohttp

from avatar_daemon import AccessToken, Account, PublishError, QuotaWait, TryAgain, retry_after

from .settings import TikTokSettings

# Codes that pass with time: the per-minute limits, and the creator's daily cap on API posts.
RATE_LIMITED = {"rate_limit_exceeded"}
POST_CAP = {"spam_risk_too_many_posts"}
STALE_TOKEN = {"access_token_invalid", "token_expired"}


class TikTokApi:
    """Calls for one account; ``what`` ("TikTok account acme") names it in every error, never a credential."""

    def __init__(self, cfg: TikTokSettings, http: aiohttp.ClientSession, token: AccessToken, clock: Callable):
        self.cfg = cfg
        self.http = http
        self.token = token
        self.clock = clock
        self.what = token.what
        self.timeout = aiohttp.ClientTimeout(total=cfg.request_timeout_seconds, connect=10.0)

    async def call(self, path: str, body: dict[str, Any], *, doing: str, params: dict[str, str] | None = None,
                   limit: str | None = None) -> dict[str, Any]:
        """``data`` of a JSON POST. ``doing`` ("starting the upload") and ``limit`` (the per-minute limit
        that applies, for the wait's reason) make the sentences people read."""
        token = await self.token.get()
        for fresh in (False, True):
            status, answer, headers = await self._post(path, body, token, params, doing)
            code, message = error_of(answer)
            if status == 401 or code in STALE_TOKEN:
                if fresh:
                    raise self.token.refused_again()
                token = await self.token.refused(token)
                continue
            if status == 429 or code in RATE_LIMITED:
                wait = retry_after(headers.get("Retry-After")) or self.cfg.rate_limit_wait_seconds
                raise QuotaWait(self.clock() + timedelta(seconds=max(wait, self.cfg.rate_limit_wait_seconds)),
                                f"{self.what}: TikTok's rate limit ({limit or 'per minute'}) was reached {doing}")
            if code in POST_CAP:
                raise QuotaWait(self.clock() + timedelta(seconds=self.cfg.post_cap_wait_seconds),
                                f"{self.what}: TikTok's cap on posts a day through the API is reached ({message})")
            if status >= 500:
                raise TryAgain(f"{self.what}: TikTok answered HTTP {status} {doing}")
            if code != "ok" or status >= 400:
                raise PublishError(f"{self.what}: TikTok refused {doing}: {code or f'HTTP {status}'}"
                                   + (f" ({message})" if message else ""))
            data = answer.get("data")
            return data if isinstance(data, dict) else {}
        raise AssertionError("unreachable")

    async def _post(self, path: str, body: dict[str, Any], token: str, params: dict[str, str] | None,
                    doing: str) -> tuple[int, dict[str, Any], Any]:
        try:
            async with self.http.post(self.cfg.base_url.rstrip("/") + path, json=body, params=params,
                                      headers={"Authorization": f"Bearer {token}",
                                               "Content-Type": "application/json; charset=UTF-8"},
                                      timeout=self.timeout) as resp:
                raw = await resp.read()
                return resp.status, json_of(raw), resp.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TryAgain(f"{self.what}: TikTok could not be reached {doing} ({type(exc).__name__})") from None


async def refresh(cfg: TikTokSettings, http: aiohttp.ClientSession, account: Account, what: str,
                  keep: dict[str, str]) -> tuple[str, float]:
    """A new access token from the refresh token (``POST /v2/oauth/token/``). TikTok may hand back a new
    refresh token too: ``keep`` holds it for the next refresh (the configured one is the first)."""
    form = {"client_key": account.secret("client_key"), "client_secret": account.secret("client_secret"),
            "grant_type": "refresh_token", "refresh_token": keep.get("refresh_token") or account.secret("refresh_token")}
    try:
        async with http.post(cfg.base_url.rstrip("/") + "/v2/oauth/token/", data=form,
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             timeout=aiohttp.ClientTimeout(total=cfg.request_timeout_seconds, connect=10.0)) as resp:
            status, answer = resp.status, json_of(await resp.read())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TryAgain(f"{what}: TikTok's token endpoint could not be reached ({type(exc).__name__})") from None
    if status >= 500:
        raise TryAgain(f"{what}: TikTok's token endpoint answered HTTP {status}")
    token = answer.get("access_token")
    if status >= 400 or not isinstance(token, str) or not token:
        reason = answer.get("error") or f"HTTP {status}"
        detail = answer.get("error_description")
        raise PublishError(f"{what}: TikTok refused to refresh the access token ({reason}"
                           + (f": {detail}" if isinstance(detail, str) and detail else "")
                           + "); authorise the account again and set its refresh_token")
    if isinstance(answer.get("refresh_token"), str) and answer["refresh_token"]:
        keep["refresh_token"] = answer["refresh_token"]
    return token, float(answer.get("expires_in") or 0)


def json_of(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def error_of(answer: dict[str, Any]) -> tuple[str, str]:
    error = answer.get("error")
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")
