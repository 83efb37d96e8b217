"""Calls to Google with an account's access token: a 401 refreshes once, Google's error bodies become sentences.

Every answer is read whole here (they are small: JSON, or an empty 308), so callers see a
status, headers and a body, and a dropped connection or a 5xx is a `TryAgain` for the one
retry loop. What Google says goes into errors; the tokens and client secrets never do.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Mapping

import aiohttp

from avatar_daemon import AccessToken, PayloadError, PublishError, TryAgain, load_json, retry_after

MAX_ANSWER = 1024 * 1024
_TAGS = re.compile(r"<[^>]+>")


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]  # aiohttp's, case-insensitive
    body: bytes

    def json(self, what: str) -> dict[str, Any]:
        """The body as a JSON object; TryAgain for anything else (a proxy's HTML page, a cut-off body)."""
        try:
            value = load_json(self.body or b"{}", what)
        except PayloadError as exc:
            raise TryAgain(str(exc)) from None
        if not isinstance(value, dict):
            raise TryAgain(f"{what}: not a JSON object")
        return value

    def reasons(self) -> list[str]:
        """Google's `error.errors[].reason`s (quotaExceeded, uploadLimitExceeded...), [] when there are none."""
        error = self._error()
        errors = error.get("errors") if isinstance(error.get("errors"), list) else []
        return [str(e.get("reason")) for e in errors if isinstance(e, dict) and e.get("reason")]

    def message(self) -> str:
        """Google's `error.message` without its HTML links, else the HTTP status."""
        text = self._error().get("message")
        if isinstance(text, str) and text.strip():
            return " ".join(_TAGS.sub("", text).split())
        return f"HTTP {self.status}"

    def _error(self) -> dict[str, Any]:
        try:
            body = load_json(self.body, "answer") if self.body else {}
        except PayloadError:
            return {}
        error = body.get("error") if isinstance(body, dict) else None
        return error if isinstance(error, dict) else {}


class GoogleApi:
    """One account's calls; `what` ("YouTube account acme") starts every error sentence."""

    def __init__(self, http: aiohttp.ClientSession, token: AccessToken, what: str):
        self.http = http
        self.token = token
        self.what = what

    async def call(self, method: str, url: str, *, timeout: float, params: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None,
                   data: bytes | Callable[[], AsyncIterator[bytes]] | None = None) -> Answer:
        """The answer to one authorised request; TryAgain for a 5xx, a 429 or no answer.

        ``data`` may be a function making a fresh stream of the body (it is sent again after a
        401): aiohttp cannot replay a stream, so a dropped connection reaches the caller, who asks
        the session what landed, instead of the whole chunk going out again behind its back.
        """
        token = await self.token.get()
        answer = await self._send(method, url, token, timeout, params, headers, data)
        if answer.status == 401:
            token = await self.token.refused(token)
            answer = await self._send(method, url, token, timeout, params, headers, data)
            if answer.status == 401:
                raise self.token.refused_again()
        if answer.status == 429 or answer.status >= 500:
            raise TryAgain(f"{self.what}: YouTube answered HTTP {answer.status} ({answer.message()})",
                           retry_after(answer.headers.get("Retry-After")))
        return answer

    async def _send(self, method, url, token, timeout, params, headers, data) -> Answer:
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        payload = data() if callable(data) else data
        try:
            # 308 is YouTube's "Resume Incomplete" here, never a redirect to follow.
            async with self.http.request(method, url, params=params, headers=all_headers, data=payload,
                                         allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                return Answer(resp.status, resp.headers, await resp.content.read(MAX_ANSWER))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TryAgain(f"{self.what}: no answer from YouTube ({type(exc).__name__})") from None

    def refused(self, answer: Answer, doing: str) -> PublishError:
        """What YouTube said, for a 4xx that no retry will change."""
        reasons = ", ".join(answer.reasons())
        return PublishError(f"{self.what}: YouTube refused {doing}: {answer.message()}"
                            + (f" ({reasons})" if reasons else f" (HTTP {answer.status})"))


async def refresh_google(http: aiohttp.ClientSession, token_url: str, client_id: str, client_secret: str,
                         refresh_token: str, what: str, timeout: float) -> tuple[str, float]:
    """A new access token from Google's token endpoint (the refresh-token grant)."""
    form = {"grant_type": "refresh_token", "client_id": client_id, "client_secret": client_secret,
            "refresh_token": refresh_token}
    try:
        async with http.post(token_url, data=form, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            status, body = resp.status, await resp.content.read(MAX_ANSWER)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise TryAgain(f"{what}: no answer from Google's token endpoint ({type(exc).__name__})") from None
    if status == 429 or status >= 500:
        raise TryAgain(f"{what}: Google's token endpoint answered HTTP {status}")
    try:
        data = load_json(body, f"{what}: the token endpoint's answer")
    except PayloadError as exc:
        raise TryAgain(str(exc)) from None
    data = data if isinstance(data, dict) else {}
    if status != 200 or not isinstance(data.get("access_token"), str):
        error = str(data.get("error") or f"HTTP {status}")
        said = str(data.get("error_description") or "").strip()
        hint = (" (a refresh token of an OAuth app left in \"Testing\" expires after 7 days; authorise the "
                "account again, or publish the app)" if error == "invalid_grant" else "")
        raise PublishError(f"{what}: Google refused to refresh the access token: {error}"
                           + (f": {said}" if said else "") + hint)
    try:
        expires_in = float(data.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in = 3600.0
    return data["access_token"], expires_in
