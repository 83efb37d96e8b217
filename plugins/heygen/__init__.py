"""The HeyGen renderer: production avatars through HeyGen's v3 video API (Studio v2 where v3 cannot serve).

The key comes from HEYGEN_API_KEY (environment or systemd credential); without one the
renderer stays registered, refuses jobs with that reason, and `render --dry-run` still works.
Settings live under daemon.yaml `plugins.settings.heygen` (see settings.py): base_url,
public_url (registers the webhook), concurrency, polling, square handling and cost limits.

Talking photos: a profile with `avatar_type: talking_photo` renders its photo-avatar look
(`renderer_ids.heygen`); a photo sent with the request (`photo_asset_id`, `--photo FILE`), or a
talking-photo profile with only a `photo:`, is uploaded once per content (POST /v3/assets) and
animated as v3's `type: image`. The profile or template sets `engine` (avatar_iv by default;
avatar_v is checked against the look's supported_api_engines before anything is paid for),
`expressiveness` and `motion_prompt`.
"""

from __future__ import annotations

import logging

from avatar_daemon import hookimpl, per_daemon, plugin_settings, secret

from .renderer import KEY_NAME, HeyGenRenderer
from .settings import HeyGenSettings
from .webhook_receiver import WebhookReceiver

log = logging.getLogger(__name__)


@per_daemon
def _renderer(daemon) -> HeyGenRenderer:
    """One renderer per daemon, shared by the hooks below (the route and service need the same one)."""
    return HeyGenRenderer(daemon, plugin_settings(daemon, "heygen", HeyGenSettings))


class HeyGenService:
    """At start: register the webhook endpoint and refresh a stale catalogue; then done."""

    name = "heygen"

    def __init__(self, renderer: HeyGenRenderer):
        self.renderer = renderer

    async def run(self, daemon) -> None:
        if not secret(KEY_NAME):
            log.info("heygen: no %s, so HeyGen renders are off (the local renderer still works)", KEY_NAME)
            return
        if self.renderer.cfg.public_url and daemon.settings.http.enabled:
            await daemon.http_ready.wait()  # HeyGen checks the endpoint with OPTIONS as we register it
        await self.renderer.register_webhook()
        if self.renderer.catalogue.age_hours() > self.renderer.cfg.catalogue_max_age_hours:
            for problem in await self.renderer.sync_catalogue():
                log.warning("heygen: %s", problem)


@hookimpl
def register_renderers(register, daemon):
    register(_renderer(daemon))


@hookimpl
def register_services(register, daemon):
    register(HeyGenService(_renderer(daemon)))


@hookimpl
def register_routes(register, daemon):
    renderer = _renderer(daemon)
    receiver = WebhookReceiver(renderer)
    register("POST", renderer.cfg.webhook_path, receiver.post)
    register("OPTIONS", renderer.cfg.webhook_path, receiver.options)


@hookimpl
def register_checks(register, daemon):
    from .checks import HeyGenKeyCheck

    register(HeyGenKeyCheck(_renderer(daemon).cfg.base_url))
