"""A campaign file: what to make, from which sources, when, and where to report.

The pydantic models are the schema (`avatar-daemon schema campaign` exports them as
JSON Schema for editors); `Schedule.next_after` is the one place run times are computed.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import Field, field_validator, model_validator

from ..models import Flag, PublishOptions, Strict, VideoText


DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
BIWEEKLY_ANCHOR = date(2026, 1, 5)  # a Monday: "every other week" counts from here unless `starts` says


class SourceSpec(Strict):
    """A source the campaign draws from; `fetch` asks the source for fresh research at each run."""

    source: str = Field(description="a source name: reddit, hackernews, github, google_trends, research_job, text")
    fetch: dict[str, Any] | None = Field(
        None, description="live query, e.g. {subreddit: artificial}, {query: llm}, {q: 'topic:ai'}, {geo: US}")


class Schedule(Strict):
    every: Literal["daily", "weekly", "biweekly"] | None = None
    at: str = Field("09:00", description="local time HH:MM")
    day: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "monday"
    cron: str | None = Field(None, description="a 5-field cron expression, instead of every/at/day")
    timezone: str = Field("UTC", description="an IANA zone such as Europe/Berlin; daylight saving is followed")
    starts: date | None = Field(None, description="biweekly: a date in a week the campaign runs")

    @field_validator("at")
    @classmethod
    def _time(cls, v: str) -> str:
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", v.strip())
        if not m:
            raise ValueError(f"{v!r} is not a time like 09:00")
        return f"{int(m[1]):02d}:{m[2]}"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder of zones
            raise ValueError(f"{v!r} is not a known timezone (use an IANA name like Europe/Berlin)") from None
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        """Checked on its own field, so the error points at the `cron:` line, not the whole schedule."""
        if v is None:
            return v
        v = " ".join(v.split())
        # cronsim also takes a sixth (seconds) field, which next_after's whole minutes cannot honour,
        # and Quartz-style crons put seconds first: refuse both rather than misread them.
        if len(v.split()) != 5:
            raise ValueError(f"cron {v!r} is not valid: it needs 5 fields (minute hour day month weekday)")
        try:
            CronSim(v, datetime(2026, 1, 1, tzinfo=timezone.utc))
        except CronSimError as exc:
            raise ValueError(f"cron {v!r} is not valid: {exc}") from None
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> "Schedule":
        if (self.every is None) == (self.cron is None):
            raise ValueError("give either `every` (daily, weekly, biweekly) or `cron`, not both or neither")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def expression(self) -> str:
        if self.cron:
            return self.cron
        hour, minute = self.at.split(":")
        dow = "*" if self.every == "daily" else str((DAYS.index(self.day) + 1) % 7)
        return f"{int(minute)} {int(hour)} * * {dow}"

    def next_after(self, moment: datetime) -> datetime:
        """The first run strictly after `moment`, in UTC; wall-clock times follow the zone's DST.

        A time that does not exist on a spring-forward day runs at the first instant after
        the gap; a time that happens twice on a fall-back day runs once, the first time.
        """
        local = moment.astimezone(self.zone).replace(second=0, microsecond=0)
        for candidate in CronSim(self.expression, local):
            if self.every != "biweekly" or self._on_week(candidate.date()):
                return candidate.astimezone(timezone.utc)
        raise AssertionError("unreachable: cron iterators do not end")

    def _on_week(self, day: date) -> bool:
        anchor = self.starts or BIWEEKLY_ANCHOR
        anchor -= timedelta(days=anchor.weekday())
        return ((day - timedelta(days=day.weekday())) - anchor).days // 7 % 2 == 0

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron} {self.timezone}"
        when = "" if self.every == "daily" else f" on {self.day}"
        return f"{self.every}{when} at {self.at} {self.timezone}"


class QualityRules(Strict):
    min_insights: int = Field(3, ge=1, description="research with fewer usable insights is skipped")
    min_score: float | None = Field(None, description="insights scoring below this are dropped")
    include_keywords: list[str] = Field(default_factory=list, description="keep only insights naming one of these")
    exclude_keywords: list[str] = Field(default_factory=list, description="drop insights naming any of these")
    max_age_hours: float = Field(48, gt=0, le=1_000_000,  # beyond a century the date arithmetic overflows
                                 description="research older than this is not considered")


class Campaign(Strict):
    """One YAML file under config/campaigns/; `name` is its identity (rename the file freely)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = ""
    active: Flag = True
    sources: list[SourceSpec] = Field(min_length=1)
    schedule: Schedule
    max_videos_per_day: int = Field(1, ge=0, description="video jobs per local calendar day; each format is one")
    avatar: str | None = None
    formats: list[str] = Field(default_factory=lambda: ["tiktok"], min_length=1)
    template: str | None = None
    writer: str | None = Field(None, description="script writer, e.g. llm; default: daemon.yaml's script.writer")
    hashtags: list[str] = Field(default_factory=list, max_length=10,
                                description="the series' own hashtags, put before the ones built from the research")
    renderer: str | None = None
    voice_speed: float | None = Field(None, ge=0.5, le=1.5)
    captions: Flag | None = None
    split: Flag = Field(False, description="a script too long for a format becomes several videos (Part 1 of N), "
                                           "split between sentences, instead of being refused")
    metadata: VideoText = Field(default_factory=VideoText,
                                description="title, description and hashtags of its videos, over the template's")
    quality: QualityRules = Field(default_factory=QualityRules)
    notify: dict[str, Any] = Field(
        default_factory=dict, description="where to report, one key per plugin that claims it, e.g. "
                                          "{slack: {channel: '#ai-videos'}, webhook: 'https://...'}")
    auto_post: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]] = Field(
        default_factory=list, description="platforms each finished video is published to (youtube, tiktok, "
                                          "instagram: a publisher plugin's name), on the platform's default "
                                          "account of daemon.yaml publishing.accounts")
    publish: PublishOptions | None = Field(None, description="how its videos are posted (privacy, made_for_kids, "
                                                             "category), over the template's, under a request's")
