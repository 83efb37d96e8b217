"""Fetching research live for campaigns: one careful GET, shared by every source plugin.

Timeouts on every call, 429 answered with Retry-After, 5xx and dropped connections retried
with jittered backoff, a minimum spacing per service (the public APIs' rate limits), and
one ResearchError naming the service and the reason when it cannot be done.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp

from .errors import ResearchError
from .payload import parse

_last_call: dict[tuple[int, str], float] = {}
_locks: dict[tuple[int, str], asyncio.Lock] = {}


async def fetch(http: aiohttp.ClientSession, url: str, *, service: str, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, timeout: float = 20.0, retries: int = 3,
                min_interval: float = 1.0, max_bytes: int = 20 * 1024 * 1024) -> Any:
    """GET `url` and parse the body like a dropped file (JSON, or XML for RSS)."""
    key = (id(asyncio.get_running_loop()), service)
    lock = _locks.setdefault(key, asyncio.Lock())
    delay = 1.0
    for attempt in range(retries + 1):
        async with lock:  # one call at a time per service, spaced by min_interval
            wait = _last_call.get(key, 0.0) + min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            _last_call[key] = time.monotonic()
            try:
                async with http.get(url, params=params, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
                    body = await resp.content.read(max_bytes + 1) if status == 200 else b""
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status, retry_after, body = 0, None, b""
                reason = f"no answer ({type(exc).__name__})"
        if status == 200:
            if len(body) > max_bytes:
                raise ResearchError(f"{service}: the answer is over {max_bytes} bytes")
            suffix = ".xml" if body.lstrip()[:1] == b"<" else ".json"
            return parse(body, f"{service} {url}", suffix)
        if status:
            reason = f"HTTP {status}"
        if status and status != 429 and status < 500:
            raise ResearchError(f"{service}: {url} answered {reason}")
        if attempt == retries:
            break
        pause = _seconds(retry_after) if status == 429 and retry_after else delay * random.uniform(0.5, 1.5)
        await asyncio.sleep(min(pause, 60.0))
        delay *= 2
    raise ResearchError(f"{service}: {url} gave no usable answer after {retries + 1} tries ({reason})")


def _seconds(value: str) -> float:
    try:
        return max(0.0, float(value))
    except ValueError:
        return 5.0
