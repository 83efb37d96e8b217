"""Fetching research live for campaigns: one careful GET, shared by every source plugin.

Timeouts on every call, 429 answered with Retry-After, 5xx and dropped connections retried
with jittered backoff, a minimum spacing per service (the public APIs' rate limits), and
one ResearchError naming the service and the reason when it cannot be done.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from .errors import ResearchError
from .decoding import parse
from .retry import GaveUp, TryAgain, retry_after, retrying

if TYPE_CHECKING:
    import aiohttp

_last_call: dict[tuple[int, str], float] = {}
_locks: dict[tuple[int, str], asyncio.Lock] = {}


async def fetch(http: aiohttp.ClientSession, url: str, *, service: str, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, timeout: float = 20.0, retries: int = 3,
                min_interval: float = 1.0, max_bytes: int = 20 * 1024 * 1024) -> Any:
    """GET `url` and parse the body like a dropped file (JSON, or XML for RSS)."""
    import aiohttp  # here, not at the top: `import avatar_daemon` stays light for a plugin that never fetches

    key = (id(asyncio.get_running_loop()), service)
    lock = _locks.setdefault(key, asyncio.Lock())

    async def attempt() -> Any:
        async with lock:  # one call at a time per service, spaced by min_interval
            wait = _last_call.get(key, 0.0) + min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            _last_call[key] = time.monotonic()
            try:
                async with http.get(url, params=params, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    status = resp.status
                    after = retry_after(resp.headers.get("Retry-After")) if status == 429 else None
                    body = await resp.content.read(max_bytes + 1) if status == 200 else b""
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise TryAgain(f"no answer ({type(exc).__name__})") from None
        if status == 200:
            if len(body) > max_bytes:
                raise ResearchError(f"{service}: the answer is over {max_bytes} bytes")
            suffix = ".xml" if body.lstrip()[:1] == b"<" else ".json"
            return parse(body, f"{service} {url}", suffix)
        if status != 429 and status < 500:
            raise ResearchError(f"{service}: {url} answered HTTP {status}")
        raise TryAgain(f"HTTP {status}", after)

    try:
        return await retrying(attempt, retries=retries)
    except GaveUp as exc:
        raise ResearchError(f"{service}: {url} gave no usable answer after {exc.tries} tries ({exc.reason})") from None
