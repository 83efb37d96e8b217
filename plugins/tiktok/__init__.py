"""The TikTok publisher: finished videos posted through TikTok's Content Posting API (direct post or inbox).

An account in daemon.yaml ``publishing.accounts`` with ``platform: tiktok`` needs the secrets
``client_key``, ``client_secret`` (the app's) and ``refresh_token`` (the creator's, scope
``video.publish``; ``video.upload`` for inbox mode; ``video.list`` for figures). Options: privacy
``private`` (the default) posts ``SELF_ONLY``, ``unlisted`` ``MUTUAL_FOLLOW_FRIENDS``, ``public``
``PUBLIC_TO_EVERYONE``, each only when the creator's ``privacy_level_options`` allow it;
``extra``: ``mode: inbox`` (the creator finishes the post in the app), ``privacy_level``,
``disable_comment``, ``disable_duet``, ``disable_stitch``, ``cover_timestamp_ms``, ``is_aigc`` (the
AI-generated label, on by default: the presenter is an avatar), ``brand_content``, ``brand_organic``.
Settings: daemon.yaml ``plugins.settings.tiktok`` (see settings.py).
"""

from __future__ import annotations

from avatar_daemon import hookimpl, per_daemon, plugin_settings

from .publisher import TikTokPublisher
from .settings import TikTokSettings


@per_daemon
def _publisher(daemon) -> TikTokPublisher:
    return TikTokPublisher(plugin_settings(daemon, "tiktok", TikTokSettings), daemon.clock)


@hookimpl
def register_publishers(register, daemon):
    register(_publisher(daemon))
