"""YouTube's upload limits: when a refused upload may be tried again.

Google resets the Data API's daily quota (videos.insert has a bucket of its own) at midnight
Pacific time, so that is when a `quotaExceeded` upload waits for; zoneinfo knows when that
midnight is PDT and when PST. `uploadLimitExceeded` is the channel's own cap on uploads in a
day, which YouTube says to retry 24 hours later.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from avatar_daemon import QuotaWait

PACIFIC = ZoneInfo("America/Los_Angeles")
QUOTA = {"quotaExceeded", "dailyLimitExceeded"}
CHANNEL_CAP = {"uploadLimitExceeded"}


def next_pacific_midnight(now: datetime) -> datetime:
    """The first midnight in Los Angeles after `now` (aware), in UTC."""
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=PACIFIC)
    return midnight.astimezone(timezone.utc)


def quota_wait(reasons: list[str], now: datetime, what: str) -> QuotaWait | None:
    """The wait a refusal with these reasons means, or None when it is not a limit."""
    if QUOTA & set(reasons):
        return QuotaWait(next_pacific_midnight(now),
                         f"{what}: YouTube's daily upload quota is used up (it resets at midnight Pacific time)")
    if CHANNEL_CAP & set(reasons):
        return QuotaWait(now.astimezone(timezone.utc) + timedelta(hours=24),
                         f"{what}: the channel has reached YouTube's limit of uploads in a day (uploadLimitExceeded)")
    return None
