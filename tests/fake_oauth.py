"""What the platforms' fakes share about OAuth, and the serving of a fake on 127.0.0.1.

Each platform's token endpoint keeps its own wire format (reference/publishing.md: Google's
``/token`` and TikTok's ``/v2/oauth/token/`` take a refresh-token form, Meta's
``oauth/access_token`` exchanges a long-lived token by query; their refusals are bodies of their
own), so a fake says how its grant is named and turns the refusal ``grant`` finds into its
platform's answer. What is the same everywhere lives here: checking the grant's fields in the
order the platforms do (grant type, client, then what is exchanged), the access tokens issued
with their expiry, expiring them all at once (as mid-upload), and reading a bearer from a request.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import AsyncIterator, Callable, Iterator, Mapping

from aiohttp import web


class IssuedTokens:
    """Access tokens a fake has issued, each alive until its (monotonic) expiry."""

    def __init__(self, prefix: str, *, configured: Mapping[str, float] | None = None):
        self.prefix = prefix
        self.expiry: dict[str, float] = {t: time.monotonic() + ttl for t, ttl in (configured or {}).items()}
        self.issued: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return iter(self.expiry)

    def issue(self, ttl: float) -> str:
        token = self.prefix + secrets.token_hex(12)
        self.expiry[token] = time.monotonic() + ttl
        self.issued.append(token)
        return token

    def valid(self, token: str) -> bool:
        return self.expiry.get(token, 0.0) > time.monotonic()

    def expire(self, *, keep: tuple[str, ...] = ()) -> None:
        """Every token but ``keep`` stops working now (as a token's hour running out mid-upload)."""
        for token in self.expiry:
            if token not in keep:
                self.expiry[token] = 0.0

    def grant(self, fields: Mapping[str, str], *, grant_type: str, client: Mapping[str, str],
              exchanged: str, accept: Callable[[str], bool]) -> str | None:
        """The refusal of a token request, ``None`` when it may have a token: ``unsupported_grant_type``,
        ``invalid_client`` (a client field differs) or ``invalid_grant`` (``fields[exchanged]`` is not
        accepted), the OAuth 2 error names (RFC 6749 5.2) a fake maps to its platform's body."""
        if fields.get("grant_type") != grant_type:
            return "unsupported_grant_type"
        if any(fields.get(name) != value for name, value in client.items()):
            return "invalid_client"
        if not accept(fields.get(exchanged, "")):
            return "invalid_grant"
        return None


def bearer(request: web.Request, scheme: str = "Bearer") -> str:
    """The token of ``Authorization: <scheme> <token>``, "" when there is none."""
    auth = request.headers.get("Authorization", "")
    return auth[len(scheme) + 1:] if auth.startswith(scheme + " ") else ""


@contextlib.asynccontextmanager
async def serving(app: web.Application, port: int | None = None) -> AsyncIterator[int]:
    """``app`` on 127.0.0.1 (``port``, or any free one) while the block runs; yields the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port or 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()
