"""AccessTokens: a publisher's one token per account, refreshed with the latest call's account and session."""

from __future__ import annotations

import aiohttp

from avatar_daemon import AccessTokens
from avatar_daemon.accounts import Accounts
from avatar_daemon.settings import PublishingSettings

SETTINGS = PublishingSettings.model_validate({"accounts": {
    "acme-tt": {"platform": "tiktok"}, "acme-tt-2": {"platform": "tiktok"}}})


async def test_each_account_has_one_token_refreshed_with_its_latest_secrets_and_session():
    seen: list[tuple[str, str, aiohttp.ClientSession, str]] = []

    async def refresh(account, http, kept, what):
        seen.append((account.name, account.secret("refresh_token"), http, what))
        kept["refresh_token"] = f"rotated-{len(seen)}"  # what the platform handed back, for the next refresh
        return f"access-{len(seen)}", 0.0              # expires at once: every get() refreshes

    first = Accounts(SETTINGS, {"AVATAR_DAEMON_ACME_TT_REFRESH_TOKEN": "r1",
                                "AVATAR_DAEMON_ACME_TT_2_REFRESH_TOKEN": "other"})
    rotated = Accounts(SETTINGS, {"AVATAR_DAEMON_ACME_TT_REFRESH_TOKEN": "r2"})
    tokens = AccessTokens("TikTok", refresh)
    async with aiohttp.ClientSession() as one, aiohttp.ClientSession() as two:
        token = tokens(first.get("acme-tt"), one)
        assert seen == []  # made lazily: nothing is refreshed until a call needs the token
        assert await token.get() == "access-1"
        assert tokens(rotated.get("acme-tt"), two) is token   # the same account: the same token
        assert await token.get() == "access-2"
        other = tokens(first.get("acme-tt-2"), one)
        assert other is not token and await other.get() == "access-3"

    assert seen == [
        ("acme-tt", "r1", one, "TikTok account acme-tt"),
        ("acme-tt", "r2", two, "TikTok account acme-tt"),     # the latest call's secrets and session
        ("acme-tt-2", "other", one, "TikTok account acme-tt-2")]
    assert token.what == "TikTok account acme-tt"


async def test_what_a_refresh_keeps_is_the_accounts_own():
    kept_by: dict[str, list[dict]] = {}

    async def refresh(account, http, kept, what):
        kept_by.setdefault(account.name, []).append(dict(kept))
        kept["latest"] = f"{account.name}-{len(kept_by[account.name])}"
        return "token", 0.0

    accounts = Accounts(SETTINGS, {})
    tokens = AccessTokens("Instagram", refresh)
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            await tokens(accounts.get("acme-tt"), http).get()
        await tokens(accounts.get("acme-tt-2"), http).get()
    assert kept_by == {"acme-tt": [{}, {"latest": "acme-tt-1"}], "acme-tt-2": [{}]}
