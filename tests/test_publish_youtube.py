"""The YouTube publisher against a fake Google on 127.0.0.1 (tests/fake_youtube.py).

What the video resource carries, when a quota resets, and the resumable upload through its
faults: exact bytes, a dropped chunk resumed from the server's Range, an access token that
expires mid-upload, quotaExceeded waiting instead of failing, a crash that never posts twice.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from avatar_daemon import PublishOptions, PublishVideo
from avatar_daemon_plugins.youtube.limits import next_pacific_midnight, quota_wait
from avatar_daemon_plugins.youtube.resource import video_resource
from avatar_daemon_plugins.youtube.settings import YouTubeSettings
from tests.fake_youtube import _check_resource


def _video(tmp_path: Path, **fields) -> PublishVideo:
    path = tmp_path / "video.mp4"
    path.write_bytes(b"\0" * 10)
    base = dict(job_id=7, path=path, size=10, format="tiktok", width=1080, height=1920, duration=42.0,
                title="A title")
    return PublishVideo(**{**base, **fields})


# ---- the video resource --------------------------------------------------------------------


def test_made_for_kids_is_always_sent_and_privacy_defaults_to_private(tmp_path):
    default = video_resource(_video(tmp_path), PublishOptions(), synthetic=True, category=None)
    assert default["status"] == {"privacyStatus": "private", "selfDeclaredMadeForKids": False,
                                 "containsSyntheticMedia": True}
    kids = video_resource(_video(tmp_path), PublishOptions(made_for_kids=True, privacy="public",
                                                           extra={"contains_synthetic_media": False}),
                          synthetic=True, category=None)
    assert kids["status"] == {"privacyStatus": "public", "selfDeclaredMadeForKids": True,
                              "containsSyntheticMedia": False}
    assert "categoryId" not in default["snippet"]


def test_category_from_the_options_over_the_setting(tmp_path):
    assert video_resource(_video(tmp_path), PublishOptions(), synthetic=True, category="22")["snippet"][
        "categoryId"] == "22"
    assert video_resource(_video(tmp_path), PublishOptions(category="28"), synthetic=True, category="22")[
        "snippet"]["categoryId"] == "28"


def test_a_long_title_is_cut_at_a_word_within_100_characters(tmp_path):
    title = "Why the <new> model " + "matters " * 30
    resource = video_resource(_video(tmp_path, title=title), PublishOptions(), synthetic=True, category=None)
    cut = resource["snippet"]["title"]
    assert len(cut) <= 100 and cut.endswith("matters…") and "<" not in cut and "‹new›" in cut
    assert _check_resource(resource) is None


def test_hashtags_close_a_long_description_within_5000_bytes(tmp_path):
    description = "Ünïcödé wörds " * 600  # about 10,000 bytes
    video = _video(tmp_path, description=description, hashtags=["#ai", "tech", "#ai"])
    snippet = video_resource(video, PublishOptions(), synthetic=True, category=None)["snippet"]
    assert len(snippet["description"].encode()) <= 5000
    assert snippet["description"].endswith("…\n\n#ai #tech")
    assert snippet["tags"] == ["ai", "tech"]


def test_a_video_without_a_title_is_refused_with_a_sentence(tmp_path):
    from avatar_daemon import PublishError

    with pytest.raises(PublishError, match="video 7 has no title"):
        video_resource(_video(tmp_path, title="  "), PublishOptions(), synthetic=True, category=None)


# ---- limits and settings -------------------------------------------------------------------


@pytest.mark.parametrize("now, reset", [
    ("2026-07-01T12:00:00+00:00", "2026-07-02T07:00:00+00:00"),   # PDT: midnight is 07:00 UTC
    ("2026-12-02T12:00:00+00:00", "2026-12-03T08:00:00+00:00"),   # PST: 08:00 UTC
    ("2026-12-03T07:59:00+00:00", "2026-12-03T08:00:00+00:00"),   # a minute before the reset
    ("2026-03-08T07:30:00+00:00", "2026-03-08T08:00:00+00:00"),   # 23:30 PST on the eve of the spring change
    ("2026-03-08T12:00:00+00:00", "2026-03-09T07:00:00+00:00"),   # 05:00 PDT, after it: the next midnight is PDT
    ("2026-11-01T06:30:00+00:00", "2026-11-01T07:00:00+00:00"),   # 23:30 PDT on the night they go back
])
def test_the_quota_waits_for_the_next_midnight_in_los_angeles(now, reset):
    assert next_pacific_midnight(datetime.fromisoformat(now)) == datetime.fromisoformat(reset)


def test_quota_reasons_become_waits_and_others_do_not():
    now = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)
    assert quota_wait(["quotaExceeded"], now, "x").until == datetime(2026, 12, 3, 8, tzinfo=timezone.utc)
    assert quota_wait(["uploadLimitExceeded"], now, "x").until == datetime(2026, 12, 3, 12, tzinfo=timezone.utc)
    assert quota_wait(["invalidTitle"], now, "x") is None


def test_a_chunk_size_off_the_256_kib_grid_is_refused_with_a_suggestion():
    assert YouTubeSettings(chunk_size=4 * 262144).chunk_size == 1048576
    with pytest.raises(ValidationError, match="multiple of 262144.*try 1048576"):
        YouTubeSettings(chunk_size=1_000_000)
