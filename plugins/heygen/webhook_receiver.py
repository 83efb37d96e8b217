"""HeyGen's webhook deliveries: verified with the endpoint secret before they change anything."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from avatar_daemon import PayloadError, load_json

if TYPE_CHECKING:
    from .renderer import HeyGenRenderer

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


def signature(secret: str, body: bytes) -> str:
    """HeyGen signs registered-endpoint deliveries: hex HMAC-SHA256 of the raw body, in `signature`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookReceiver:
    def __init__(self, renderer: "HeyGenRenderer"):
        self.renderer = renderer

    async def options(self, request: web.Request) -> web.Response:
        return web.Response(status=200)  # HeyGen checks the endpoint with a 1-second OPTIONS call

    async def post(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY:
            return self._refuse(request, 413, "body over 64 KB")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return self._refuse(request, 413, "body over 64 KB")
        secret = self.renderer.webhook_secret
        given = (request.headers.get("signature") or "").strip().lower()
        if not secret:
            return self._refuse(request, 401, "no webhook secret is configured (HEYGEN_WEBHOOK_SECRET or public_url)")
        if not given:
            return self._refuse(request, 401, "unsigned delivery")
        if not hmac.compare_digest(signature(secret, body), given):
            return self._refuse(request, 401, "bad signature")
        try:
            payload = load_json(body, "the webhook body")
        except PayloadError as exc:
            return self._refuse(request, 400, str(exc))
        if not isinstance(payload, dict):
            return self._refuse(request, 400, "the webhook body is not a JSON object")
        data = payload.get("event_data")
        data = data if isinstance(data, dict) else {}
        kind = str(payload.get("event_type") or payload.get("event") or "")
        video_id = data.get("video_id")
        if video_id and kind.startswith("avatar_video."):
            log.info("heygen: webhook %s for video %s (callback %s)", kind, video_id, data.get("callback_id"))
            try:
                await self.renderer.delivered(str(video_id), kind)
            except Exception as exc:  # the scheduled check still comes: polling is the safety net
                log.warning("heygen: webhook for video %s could not make its check due: %s: %s", video_id,
                            type(exc).__name__, exc)
        return web.json_response({"ok": True})

    def _refuse(self, request: web.Request, status: int, reason: str) -> web.Response:
        log.warning("heygen: webhook from %s refused: %s", request.remote, reason)
        return web.json_response({"error": reason}, status=status)
