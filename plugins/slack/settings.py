"""The Slack plugin's settings: daemon.yaml `plugins.settings.slack`, the environment, and the tokens."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from avatar_daemon import plugin_settings, secret


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["socket", "http"] = "socket"
    api_url: str = "https://slack.com/api/"
    command: str = "/avatar-video"
    progress_interval_seconds: float = Field(3.0, gt=0)    # one chat.update per message at most this often
    # Socket Mode: ping this often; a dropped connection is replaced within about one interval,
    # a silent one (no pongs) within about three. Bolt's 10 s left commands waiting that long.
    socket_ping_interval_seconds: float = Field(2.0, gt=0)
    upload_limit_bytes: int = 1024**3                       # bigger finished videos are linked instead
    default_channel: str | None = None                      # where inbox videos report, when no source says
    source_channels: dict[str, str] = Field(default_factory=dict)  # research source -> channel
    campaign_users: list[str] = Field(default_factory=list)  # Slack user ids that may manage campaigns ("*": all)
    public_url: str | None = None                           # the daemon's HTTP API: downloads, avatar previews
    warm_previews: bool = True                              # draw missing avatar previews at start (public_url)


class CampaignNotify(BaseModel):
    """A campaign's `notify: {slack: {channel: ...}}`: where its videos report."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, description="a channel name (#ai-videos) or id (C0123)")


class NotifyTarget:
    """Claims `notify.slack` in campaign files, whether or not Slack's tokens are set."""

    name = "slack"
    model = CampaignNotify
    old_keys = {"slack_channel": "channel"}  # notify.slack_channel, before plugins claimed their keys


class Tokens(BaseModel):
    bot: str | None
    signing_secret: str | None
    app: str | None

    def __repr__(self) -> str:
        return f"Tokens(bot={'set' if self.bot else None}, app={'set' if self.app else None})"

    __str__ = __repr__


def load(daemon) -> tuple[SlackSettings, Tokens]:
    """Environment first (SLACK_MODE, SLACK_API_URL), then daemon.yaml; tokens only from secrets."""
    data = dict(daemon.plugin_config("slack"))
    if os.environ.get("SLACK_MODE"):
        data["mode"] = os.environ["SLACK_MODE"]
    if os.environ.get("SLACK_API_URL"):
        data["api_url"] = os.environ["SLACK_API_URL"]
    cfg = plugin_settings(daemon, "slack", SlackSettings, data)
    if not cfg.api_url.endswith("/"):
        cfg.api_url += "/"
    return cfg, Tokens(bot=secret("SLACK_BOT_TOKEN"), signing_secret=secret("SLACK_SIGNING_SECRET"),
                       app=secret("SLACK_APP_TOKEN"))
