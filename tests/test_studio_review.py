"""What a new user saw wrong in the studio, checked in headless Chromium against a real daemon.

The module runs its own copy of the studio fixture (tests/test_studio_browser.py): one daemon
rendering with the local renderer, one browser.
"""

from __future__ import annotations

import requests

from tests.browser import Studio
from tests.test_http_api import TOKENS
from tests.test_studio_browser import studio  # noqa: F401  (the fixture)

ROOT = {"Authorization": f"Bearer {TOKENS['root']}"}


def test_a_portrait_videos_thumbnail_is_shown_whole_in_the_list(studio: Studio):  # noqa: F811
    made = requests.post(f"{studio.base_url}/videos", headers=ROOT, timeout=10,
                         json={"script_title": "Tall", "script_content": "A portrait video.", "format": "tiktok"})
    assert made.status_code == 201, made.text
    video_id = made.json()["video_id"]
    studio.sign_in(TOKENS["root"], "videos")

    def status() -> str:
        return requests.get(f"{studio.base_url}/videos/{video_id}/status", headers=ROOT, timeout=10).json()["status"]

    studio.wait(lambda d: status() in ("completed", "failed"), timeout=120, what="the render")
    assert status() == "completed"
    studio.go("#make")
    studio.go("#videos")
    img = f'[data-video="{video_id}"] img'
    studio.wait(lambda d: d.execute_script(f"const i = document.querySelector('{img}'); "
                                           "return Boolean(i && i.complete && i.naturalWidth)"), what="the still")
    fit, natural, box = studio.driver.execute_script(
        f"const i = document.querySelector('{img}'); "
        "return [getComputedStyle(i).objectFit, i.naturalWidth / i.naturalHeight, i.clientWidth / i.clientHeight]")
    assert natural < 1 < box  # a 9:16 still in the list's 16:9 box
    # cover crops the still to the box (the presenter's chin and collar were all one saw), fill squashes it
    assert fit in ("contain", "scale-down"), fit

