"""What a request for a video's file counts as in analytics: a download, a play (a view), or nothing.

A player fetches the file in ranges: `bytes=0-` to start, more ranges to seek, and often a
second `bytes=0-` after reading the metadata. Counting each as a download (or a view) would
count one play several times. So: a download is only an explicit one (`?download=1`, or, on
the download endpoint, a whole-file GET with no Range: curl, the seed's clients, a browser's
save); a range from the start counts one view per viewer and video, and further requests by
the same viewer within PLAY_GAP belong to that same play. A range from the middle is never
counted (a seek, or a resumed download).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Literal

from aiohttp import web

PLAY_GAP = timedelta(minutes=10)
MAX_VIEWERS = 10_000  # remembered plays; the oldest are forgotten first
PLAYS = web.AppKey("plays", object)

Counted = Literal["download", "view"] | None


class Plays:
    """Per (video, viewer): when they last fetched any part of it. In memory: a restart may count
    one play twice, which is better than a table written on every range request."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[int, str], datetime] = OrderedDict()

    def new_play(self, video_id: int, viewer: str, now: datetime) -> bool:
        key = (video_id, viewer)
        last = self._seen.pop(key, None)
        self._seen[key] = now
        while len(self._seen) > MAX_VIEWERS:
            self._seen.popitem(last=False)
        return last is None or now - last > PLAY_GAP

    def touch(self, video_id: int, viewer: str, now: datetime) -> None:
        key = (video_id, viewer)
        if key in self._seen:
            self._seen[key] = now
            self._seen.move_to_end(key)


def explicit_download(request: web.Request, whole_get_is_download: bool) -> bool:
    return request.query.get("download") == "1" or (whole_get_is_download and "Range" not in request.headers)


def counted(request: web.Request, video_id: int, viewer: str, now: datetime, *,
            whole_get_is_download: bool) -> Counted:
    """The analytics event this request for the file is, if any."""
    if request.method == "HEAD":  # a probe fetches nothing
        return None
    try:
        start = request.http_range.start
    except ValueError:  # a malformed Range: the file response answers it with 416
        return None
    plays: Plays = request.app[PLAYS]
    if explicit_download(request, whole_get_is_download):
        return "download" if not start else None  # a resumed download is not a second download
    if start:
        plays.touch(video_id, viewer, now)  # seeking within a play
        return None
    return "view" if plays.new_play(video_id, viewer, now) else None


def install(app: web.Application) -> None:
    app[PLAYS] = Plays()
