"""What a new user saw wrong in the studio, checked in headless Chromium against a real daemon.

The module runs its own copy of the studio fixture (tests/test_studio_browser.py): one daemon
rendering with the local renderer, one browser.
"""

from __future__ import annotations

import requests

from tests.browser import Studio
from tests.test_http_api import TOKENS
from tests import test_studio_browser

studio = test_studio_browser.studio  # the module-scoped fixture, a copy of its own here
ROOT = {"Authorization": f"Bearer {TOKENS['root']}"}


def test_a_portrait_videos_thumbnail_is_shown_whole_in_the_list(studio: Studio):
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


def test_a_campaign_that_will_not_run_shows_no_next_run(studio: Studio):
    seed = {"name": "Dormant Trends", "source_tools": ["hackernews"], "frequency": "daily", "is_active": False}
    answer = requests.post(f"{studio.base_url}/campaigns", headers=ROOT, json=seed, timeout=10)
    assert answer.status_code == 201, answer.text
    assert answer.json()["next_run_at"]  # the store keeps a slot for it all the same
    studio.sign_in(TOKENS["root"], "campaigns")
    card = '[data-campaign="dormant-trends"]'
    studio.visible(card)
    assert studio.find(f"{card} .badge").get_attribute("data-state") == "inactive"
    assert studio.find(f"{card} [data-field=next]").text.startswith("Next: none (active: false")

    paused = requests.patch(f"{studio.base_url}/campaigns/morning-hn", headers=ROOT, json={"paused": True}, timeout=10)
    assert paused.status_code == 200, paused.text
    try:
        studio.go("#make")
        studio.go("#campaigns")
        studio.wait(lambda d: studio.find('[data-campaign="morning-hn"] .badge').get_attribute("data-state")
                    == "paused", what="the paused badge")
        assert studio.find('[data-campaign="morning-hn"] [data-field=next]').text.startswith("Next: none while paused")
    finally:
        requests.patch(f"{studio.base_url}/campaigns/morning-hn", headers=ROOT, json={"paused": False}, timeout=10)
    studio.go("#make")
    studio.go("#campaigns")
    studio.wait(lambda d: studio.find('[data-campaign="morning-hn"] .badge').get_attribute("data-state") == "running",
                what="the resumed badge")
    assert "none" not in studio.find('[data-campaign="morning-hn"] [data-field=next]').text


FITS = """
const c = document.createElement('canvas').getContext('2d');
return [...document.querySelectorAll(arguments[0])].map((s) => {
  const st = getComputedStyle(s);
  c.font = `${st.fontWeight} ${st.fontSize} ${st.fontFamily}`;
  const text = s.options[s.selectedIndex]?.text || '';
  // the room left of the drop-down arrow (about 1.5 em)
  const room = s.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) - 1.5 * parseFloat(st.fontSize);
  return [s.id, text, c.measureText(text).width, room];
});
"""


def test_the_settings_drop_downs_show_their_choice_whole_at_desktop_width(studio: Studio):
    studio.sign_in(TOKENS["root"], "make")
    studio.driver.set_window_size(1280, 900)
    studio.visible("#format option")
    from selenium.webdriver.support.ui import Select

    Select(studio.find("#format")).select_by_value("tiktok")  # the longest label: "TikTok (portrait 9:16) · up to 60 s"
    shown = studio.driver.execute_script(FITS, "#view-make .grid select")
    assert shown and all(text for _, text, _, _ in shown), shown
    cut = [(name, text) for name, text, width, room in shown if width > room]
    assert not cut, f"cut short: {cut} in {shown}"
