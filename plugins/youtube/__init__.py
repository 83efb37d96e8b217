"""The YouTube publisher: finished videos to a channel through the Data API's resumable upload.

Each account in daemon.yaml `publishing.accounts` with `platform: youtube` needs three secrets
(`client_id`, `client_secret`, `refresh_token`: see the README's "YouTube" section for getting
them); the access token is refreshed from them and kept fresh. Settings live under
`plugins.settings.youtube` (see settings.py): the token, upload and Data API URLs, the chunk
size (a multiple of 256 KiB), retries, and whether videos declare `containsSyntheticMedia`.

A request's `publish` options set privacy (private unless asked: YouTube keeps an unaudited
app's uploads private anyway), made-for-kids (always sent), category and notifySubscribers;
`extra.contains_synthetic_media` overrides the setting. A portrait or square video of three
minutes or less is a Short: there is nothing to send for that, only its URL differs.
"""

from __future__ import annotations

from avatar_daemon import hookimpl, per_daemon, plugin_settings

from .publisher import YouTubePublisher
from .settings import YouTubeSettings


@per_daemon
def _publisher(daemon) -> YouTubePublisher:
    """One per daemon, so each account's access token is refreshed once and shared."""
    return YouTubePublisher(plugin_settings(daemon, "youtube", YouTubeSettings), daemon.clock)


@hookimpl
def register_publishers(register, daemon):
    register(_publisher(daemon))
