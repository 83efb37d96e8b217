"""Timestamps in every form research files use: epoch s/ms (number or string), ISO, RFC 822."""

from __future__ import annotations

import email.utils
from datetime import datetime, timezone
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime, or None for anything unreadable (never raises)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        try:
            value = float(s)
        except ValueError:
            return _parse_text(s)
    if isinstance(value, (int, float)):
        try:
            if value > 1e11:  # milliseconds (an integer too big for a float overflows here)
                value /= 1000
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _parse_text(s: str) -> datetime | None:
    iso = s.replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(s)
        except (TypeError, ValueError):
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # naive saves are taken as UTC: the least surprising guess
    return dt.astimezone(timezone.utc)
