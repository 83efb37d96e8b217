"""OAuth access tokens kept fresh from a refresh token, shared by every call that needs one.

Each platform refreshes differently (Google's token endpoint, TikTok's ``/v2/oauth/token/``,
Instagram's ``refresh_access_token``), so the publisher supplies the refresh call; what is the
same everywhere lives here: refresh shortly before expiry, one refresh for many concurrent
callers, and after a 401 refresh once, then give up with a sentence instead of looping.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from .accounts import Account
from .errors import PublishError

if TYPE_CHECKING:
    import aiohttp

Refresh = Callable[[], Awaitable[tuple[str, float]]]
"""Returns (access token, seconds until it expires)."""


class AccessToken:
    """One account's access token. ``what`` names the account in errors, never the token."""

    def __init__(self, refresh: Refresh, *, what: str, margin: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self._refresh = refresh
        self.what = what
        self.margin = margin
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A token valid for at least ``margin`` seconds more, refreshing when it is not."""
        async with self._lock:
            if self._token is None or self._clock() >= self._expires - self.margin:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def refused(self, stale: str) -> str:
        """The platform answered 401 to ``stale``: a new token, once; a second refusal of a fresh
        token is the caller's to turn into ``PublishError`` (see ``refused_again``)."""
        async with self._lock:
            if self._token == stale or self._token is None:
                await self._fetch()
            assert self._token is not None
            return self._token

    def refused_again(self) -> PublishError:
        return PublishError(f"{self.what}: the platform refused a freshly refreshed access token "
                            "(the refresh token may be revoked or lack the upload scope); authorise the account again")

    async def _fetch(self) -> None:
        token, expires_in = await self._refresh()
        self._token = token
        self._expires = self._clock() + max(0.0, float(expires_in))


RefreshFor = Callable[[Account, "aiohttp.ClientSession", dict, str], Awaitable[tuple[str, float]]]
"""``(account, http, kept, what)`` -> (access token, seconds until it expires). ``kept`` is the account's
own dict for what a refresh hands back for the next one (a rotated refresh token, the latest token)."""


class AccessTokens:
    """A publisher's tokens, one ``AccessToken`` per ``Account.name``, made the first time it is asked for.

    A refresh reads the secrets of, and goes through the HTTP session of, the latest call for that
    account, so a rotated credential file is picked up and no session outlives the call that gave it.
    """

    def __init__(self, platform: str, refresh_for_account: RefreshFor):
        self.platform = platform
        self._refresh = refresh_for_account
        self._tokens: dict[str, AccessToken] = {}
        self._latest: dict[str, tuple[Account, aiohttp.ClientSession]] = {}

    def __call__(self, account: Account, http: aiohttp.ClientSession) -> AccessToken:
        self._latest[account.name] = (account, http)
        token = self._tokens.get(account.name)
        if token is None:
            what, kept = f"{self.platform} account {account.name}", {}
            token = self._tokens[account.name] = AccessToken(
                lambda name=account.name: self._refresh(*self._latest[name], kept, what), what=what)
        return token
