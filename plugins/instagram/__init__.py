"""The Instagram publisher: finished videos posted as Reels through the Graph API's resumable upload.

An account in daemon.yaml ``publishing.accounts`` with ``platform: instagram`` needs the setting
``ig_user_id`` (the professional account's id) and the secret ``access_token``: a long-lived user
token from Facebook Login for Business (resumable uploads need it) with ``instagram_basic``,
``instagram_content_publish``, ``instagram_manage_insights`` and ``pages_read_engagement``, or a
system user's token. With the setting ``app_id`` and the secret ``app_secret`` the token is
exchanged for a fresh long-lived one at start and before it expires. ``extra`` options:
``share_to_feed`` (default from settings), ``thumb_offset_ms``. Instagram has no private Reels, so a
publication posts only with ``privacy: public`` (the default, private, fails it with that reason). Settings: daemon.yaml ``plugins.settings.instagram`` (see settings.py).
"""

from __future__ import annotations

from avatar_daemon import hookimpl, per_daemon, plugin_settings

from .publisher import InstagramPublisher
from .settings import InstagramSettings


@per_daemon
def _publisher(daemon) -> InstagramPublisher:
    return InstagramPublisher(plugin_settings(daemon, "instagram", InstagramSettings), daemon.clock)


@hookimpl
def register_publishers(register, daemon):
    register(_publisher(daemon))
