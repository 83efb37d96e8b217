"""Our webhook endpoint at HeyGen: registered at start, with the secret HeyGen signs deliveries with kept."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from avatar_daemon import RenderError

if TYPE_CHECKING:
    from .client import HeyGenClient

log = logging.getLogger(__name__)

ENDPOINT_KEY = "heygen.webhook.endpoint_id"
SECRET_KEY = "heygen.webhook.secret"


async def register(client: "HeyGenClient", store: Any, url: str) -> str:
    """Make sure HeyGen posts to `url`; the signing secret, kept in the store across restarts."""
    known_id = await store.get_meta(ENDPOINT_KEY)
    stored = await store.get_meta(SECRET_KEY)
    endpoints = await client.webhooks()
    mine = next((e for e in endpoints if e.url == url), None)
    if mine and mine.endpoint_id == known_id and stored:
        secret = stored
    elif mine:  # registered before, but we lost its secret: a new one is only shown on rotation
        rotated = await client.rotate_webhook_secret(mine.endpoint_id)
        secret = await _keep(store, mine.endpoint_id, rotated.secret)
    else:
        created = await client.create_webhook(url)
        secret = await _keep(store, created.endpoint_id, created.secret)
    log.info("heygen: webhook endpoint registered at %s", url)
    return secret


async def _keep(store: Any, endpoint_id: str, secret: str | None) -> str:
    if not secret:
        raise RenderError("HeyGen registered the webhook endpoint but returned no signing secret")
    await store.set_meta(ENDPOINT_KEY, endpoint_id)
    await store.set_meta(SECRET_KEY, secret)
    return secret
