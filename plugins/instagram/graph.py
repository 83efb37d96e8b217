"""Meta's Graph API and its rupload host for one Instagram account, their answers turned into our errors.

Graph refuses with ``{"error": {"message", "type", "code", "error_subcode", "is_transient"}}``;
code 190 is a token Meta no longer takes (refresh once, then give up with a sentence), codes
4/17/32/613 are call-rate limits and 9 with subcode 2207042 the publishing limit (both wait),
``is_transient`` and 5xx are tried again later. The rupload host answers its own way:
``{"debug_info": {"retriable", "type", "message"}}``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, AsyncIterable, Callable

import aiohttp

from avatar_daemon import AccessToken, Account, PublishError, QuotaWait, TryAgain

from .settings import InstagramSettings

STALE_TOKEN = 190
RATE_LIMITS = {4, 17, 32, 613}
PUBLISH_LIMIT_SUBCODE = 2207042


class GraphError(PublishError):
    """Graph's refusal, with its code kept so a caller can tell an unknown object (100) from the rest."""

    def __init__(self, message: str, code: int | None, subcode: int | None):
        super().__init__(message)
        self.code = code
        self.subcode = subcode


class Graph:
    def __init__(self, cfg: InstagramSettings, http: aiohttp.ClientSession, token: AccessToken, clock: Callable):
        self.cfg = cfg
        self.http = http
        self.token = token
        self.clock = clock
        self.what = token.what
        self.timeout = aiohttp.ClientTimeout(total=cfg.request_timeout_seconds, connect=10.0)

    def url(self, path: str) -> str:
        return f"{self.cfg.graph_url.rstrip('/')}/{self.cfg.api_version}/{path.lstrip('/')}"

    async def call(self, method: str, path: str, *, doing: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Graph's JSON answer to ``method path``; the token goes in the Authorization header, never the URL."""
        token = await self.token.get()
        for fresh in (False, True):
            try:
                async with self.http.request(method, self.url(path), params=params,
                                             headers={"Authorization": f"Bearer {token}"},
                                             timeout=self.timeout) as resp:
                    status, answer = resp.status, json_of(await resp.read())
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TryAgain(f"{self.what}: Instagram could not be reached {doing} ({type(exc).__name__})") from None
            error = answer.get("error")
            if status < 400 and not isinstance(error, dict):
                return answer
            error = error if isinstance(error, dict) else {}
            code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
            message = str(error.get("message") or f"HTTP {status}")
            if code == STALE_TOKEN or status == 401:
                if fresh:
                    raise self.token.refused_again()
                token = await self.token.refused(token)
                continue
            if code in RATE_LIMITS:
                raise QuotaWait(self.clock() + timedelta(seconds=self.cfg.quota_wait_seconds),
                                f"{self.what}: Graph's call-rate limit was reached {doing} ({message})")
            if code == 9 and subcode == PUBLISH_LIMIT_SUBCODE:
                raise QuotaWait(self.clock() + timedelta(seconds=self.cfg.quota_wait_seconds),
                                f"{self.what}: Instagram's 24-hour publishing limit is used up ({message})")
            if status >= 500 or error.get("is_transient") or code in (1, 2):
                raise TryAgain(f"{self.what}: Instagram answered HTTP {status} {doing} ({message})")
            raise GraphError(f"{self.what}: Instagram refused {doing}: {message}"
                             + (f" (code {code}" + (f", subcode {subcode}" if subcode else "") + ")" if code else ""),
                             code, subcode)
        raise AssertionError("unreachable")

    async def rupload(self, uri: str, *, doing: str, headers: dict[str, str],
                      data: AsyncIterable[bytes]) -> dict[str, Any]:
        """The rupload host's answer to a POST of the bytes; it takes ``Authorization: OAuth <token>``."""
        token = await self.token.get()
        timeout = aiohttp.ClientTimeout(total=self.cfg.upload_timeout_seconds, connect=10.0)
        try:
            async with self.http.post(uri, data=data, timeout=timeout,
                                      headers={"Authorization": f"OAuth {token}", **headers}) as resp:
                status, answer = resp.status, json_of(await resp.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TryAgain(f"{self.what}: the upload did not reach Instagram {doing} ({type(exc).__name__})") from None
        info = answer.get("debug_info")
        if status < 400 and not isinstance(info, dict):
            return answer
        info = info if isinstance(info, dict) else {}
        message = str(info.get("message") or f"HTTP {status}")
        if status >= 500 or info.get("retriable"):
            raise TryAgain(f"{self.what}: Instagram's upload host answered HTTP {status} {doing} ({message})")
        if info.get("type") == "NotAuthorizedError":
            await self.token.refused(token)  # the next attempt uses a fresh token
            raise TryAgain(f"{self.what}: Instagram's upload host refused the token {doing}; refreshed it")
        raise PublishError(f"{self.what}: Instagram refused the upload {doing}: {info.get('type') or ''} {message}".strip())


async def refresh(cfg: InstagramSettings, http: aiohttp.ClientSession, account: Account, what: str,
                  keep: dict[str, str]) -> tuple[str, float]:
    """A fresh long-lived token: with the app's ``app_id`` (setting) and ``app_secret`` (secret), the latest
    token is exchanged (``grant_type=fb_exchange_token``) for a new one good for about 60 days, and the
    configured one when Meta no longer takes the latest; without them the configured token is used as it
    is (a system user's token does not expire)."""
    configured = account.secret("access_token")
    app_id = account.settings.get("app_id")
    if not app_id:
        return configured, 30 * 86400.0
    secret = account.secret("app_secret")
    url = f"{cfg.graph_url.rstrip('/')}/{cfg.api_version}/oauth/access_token"
    refusal = ""
    for current in dict.fromkeys(t for t in (keep.get("access_token"), configured) if t):
        params = {"grant_type": "fb_exchange_token", "client_id": str(app_id), "client_secret": secret,
                  "fb_exchange_token": current}
        try:
            async with http.get(url, params=params, timeout=aiohttp.ClientTimeout(
                    total=cfg.request_timeout_seconds, connect=10.0)) as resp:
                status, answer = resp.status, json_of(await resp.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TryAgain(f"{what}: Meta's token endpoint could not be reached ({type(exc).__name__})") from None
        if status >= 500:
            raise TryAgain(f"{what}: Meta's token endpoint answered HTTP {status}")
        token = answer.get("access_token")
        if status < 400 and isinstance(token, str) and token:
            keep["access_token"] = token
            return token, float(answer.get("expires_in") or 3600)
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        refusal = str(error.get("message") or f"HTTP {status}")
    raise PublishError(f"{what}: Meta refused to refresh the access token ({refusal}); "
                       "log in again and set a new long-lived access_token")


def json_of(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
