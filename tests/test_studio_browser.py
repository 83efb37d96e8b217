"""The web studio in headless Chromium against a real daemon on loopback, rendering real videos.

One daemon and one browser for the module; each test signs in as the person it is about.
Scripts are a sentence or two, so each render is a few seconds of video.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from pathlib import Path

import av
import pytest
import requests
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

import avatar_daemon
from avatar_daemon import estimate_seconds
from avatar_daemon.campaigns.service import load_campaign
from avatar_daemon.daemon import Daemon
from avatar_daemon.planning import VideoSettings
from avatar_daemon.plugin_loading import LoadSpec
from avatar_daemon.testing import RecordingPlugin, make_settings
from tests.browser import DESKTOP, PHONE, Studio, start_browser
from tests.conftest import fixture_bytes
from tests.fake_platform import FakePlatform, LoopbackPublisher, PublishingPlugin
from tests.media_server import png_bytes, wav_bytes
from tests.test_http_api import TOKENS, users_yaml
from tests.test_openapi import OFFLINE_PLUGINS, DaemonThread

CAMPAIGN = ("name: morning-hn\nsources: [{source: hackernews}]\nschedule: {every: daily, at: '09:00'}\n"
            "formats: [square]\n")
DORMANT = "name: dormant\nactive: false\nsources: [{source: hackernews}]\nschedule: {every: weekly, day: monday}\n"


PLATFORM_TOKEN = "access-token-1"


class PlatformThread:
    """The loopback video platform (tests/fake_platform.py) in a thread of its own, for the module."""

    def __enter__(self) -> FakePlatform:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="platform", daemon=True)
        self.thread.start()
        self.platform = FakePlatform(token=PLATFORM_TOKEN)
        self.serving = self.platform.serve()
        asyncio.run_coroutine_threadsafe(self.serving.__aenter__(), self.loop).result(10)
        return self.platform

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.serving.__aexit__(None, None, None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    with PlatformThread() as platform:
        os.environ["AVATAR_DAEMON_LOOP_MAIN_TOKEN"] = PLATFORM_TOKEN
        try:
            yield from _studio(tmp_path_factory, platform)
        finally:
            os.environ.pop("AVATAR_DAEMON_LOOP_MAIN_TOKEN", None)


def _studio(tmp_path_factory, platform):
    tmp = tmp_path_factory.mktemp("studio")
    users_yaml(tmp)
    (tmp / "campaigns").mkdir()
    (tmp / "campaigns" / "morning-hn.yaml").write_text(CAMPAIGN)
    (tmp / "campaigns" / "dormant.yaml").write_text(DORMANT)
    # One presenter of each tier: the local renderer draws each preview on first sight (seconds apiece).
    bundled = yaml.safe_load((Path(avatar_daemon.__file__).parent / "defaults/avatars.yaml").read_text())["avatars"]
    (tmp / "avatars.yaml").write_text(yaml.safe_dump({"avatars": [
        next(a for a in bundled if a["id"] == "mike"), next(a for a in bundled if a["tier"] == "pro"),
        next(a for a in bundled if a["tier"] == "enterprise")]}))
    settings = make_settings(tmp, users_file="users.yaml", avatars_file="avatars.yaml", default_renderer="local",
                             default_avatar="mike", default_formats=["square"], publishing={
                                 "accounts": {"loop-main": {"platform": "loopvid", "channel": "UC1"}},
                                 "poll_seconds": 0.05, "retry_seconds": 0.05})
    plugins = [*OFFLINE_PLUGINS, "local_renderer", "hackernews", "text_script"]
    daemon = Daemon(settings, LoadSpec(installed=False, only=plugins),
                    extra_plugins=(RecordingPlugin(), PublishingPlugin(LoopbackPublisher(platform.url))))
    downloads = tmp / "downloads"
    downloads.mkdir()
    driver = start_browser(downloads)
    try:
        thread = DaemonThread(daemon)
        with thread as url:
            studio = Studio(driver, url, thread._loop, daemon, downloads)
            studio.platform = platform
            yield studio
    finally:
        driver.quit()


def test_make_a_video_watch_it_play_and_download_it(studio: Studio):
    studio.sign_in(TOKENS["bob"])  # bob is on the pro tier
    cards = studio.wait(lambda d: studio.all(".avatar"), what="the avatar carousel")
    shown = {c.get_attribute("data-id") for c in cards}
    allowed = {a.id for a in studio.daemon.settings.avatars.values() if a.tier in ("free", "pro")}
    assert shown == allowed and shown != set(studio.daemon.settings.avatars)  # enterprise avatars are not offered
    pick = cards[1]
    label = pick.get_attribute("aria-label")
    profile = studio.daemon.settings.avatars[pick.get_attribute("data-id")]
    assert profile.gender in label and profile.style in label
    cards[0].click()
    cards[0].send_keys(Keys.ARROW_RIGHT)  # the carousel is a radio group: arrows move the choice
    assert pick.get_attribute("aria-checked") == "true" and cards[0].get_attribute("aria-checked") == "false"
    assert studio.driver.switch_to.active_element == pick
    # the chosen one moves: its 3 s clip plays over the still
    studio.wait(lambda d: "moving" in pick.get_attribute("class") and d.execute_script(
        "return arguments[0].querySelector('video').currentTime > 0", pick), what="the avatar's clip to play")
    unlabelled = studio.driver.execute_script(
        "return [...document.querySelectorAll('input, select, textarea')].filter(e => !e.labels.length).map(e => e.id)")
    assert unlabelled == []
    studio.wait(lambda d: d.execute_script("return arguments[0].querySelector('img').naturalWidth > 0", pick),
                what="the avatar's preview still")
    studio.find("#title").send_keys("Studio test")
    script = "Hello from the studio. This is short."
    studio.find("#script").send_keys(script)
    count = studio.find("#script-count")
    assert count.text.startswith(f"{len(script)} characters")
    assert float(count.get_attribute("data-seconds")) == estimate_seconds(script, 1.0)
    studio.screenshot("make")
    studio.find("#make-submit").click()

    studio.visible("#view-watch")
    seen = set()

    def done(d):
        status = studio.find("#watch-status").get_attribute("data-status")  # before the bar: it moves first
        seen.add(int(studio.find("#watch-progress").get_attribute("value")))
        return status in ("completed", "failed")

    studio.wait(done, timeout=90, what="the render to end")
    assert studio.find("#watch-status").get_attribute("data-status") == "completed", studio.find("#watch-status").text
    assert int(studio.find("#watch-progress").get_attribute("value")) == 100 and max(seen) == 100
    video_id = int(studio.driver.execute_script("return location.hash.split('/')[1]"))
    # the banner said "queued" when it was sent; once it is done it says so, not "queued" still
    studio.wait(lambda d: studio.find("#flash").text == f"Video {video_id} is ready.", what="the banner to update")
    job = studio.run(studio.daemon.store.job(video_id))
    assert job.avatar_id == profile.id and job.user_id == "U2" and job.title == "Studio test"

    player = studio.visible("#player")
    studio.driver.execute_script("arguments[0].muted = true; arguments[0].play()", player)
    studio.wait(lambda d: d.execute_script("return arguments[0].currentTime > 0.2", player), what="the video to play")
    assert studio.driver.execute_script("return arguments[0].videoWidth", player) > 0
    studio.driver.execute_script("arguments[0].textTracks[0].mode = 'showing'", player)  # the CC button
    studio.wait(lambda d: d.execute_script("return arguments[0].textTracks[0].cues?.length > 0", player),
                what="the captions track")
    studio.screenshot("watch")
    # a typed script has no description or hashtags: no empty boxes to copy
    assert studio.find("#vt-title").get_attribute("value") == "Studio test"
    assert not studio.find("#vt-description").is_displayed() and not studio.find("#vt-hashtags").is_displayed()

    studio.find("#dl-mp4").click()
    mp4 = Path(job.result["video"])
    downloaded = _downloaded(studio.downloads / f"video-{video_id}.mp4")
    assert downloaded.read_bytes() == mp4.read_bytes()
    studio.find("#dl-srt").click()
    assert "-->" in _downloaded(studio.downloads / f"video-{video_id}.srt").read_text()

    # a share link plays without a token or a cookie, for anyone it is sent to
    studio.find("#share").click()
    link = studio.visible("#share-box input").get_attribute("value")
    assert link.startswith(studio.base_url + "/shared/")
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "video" in page.text
    film = requests.get(link.removesuffix("/page"), timeout=10)
    assert film.status_code == 200 and film.content == mp4.read_bytes()
    still = requests.get(link.removesuffix("/page") + "/thumbnail", timeout=10)
    assert still.status_code == 200 and still.content == Path(job.result["thumbnail"]).read_bytes()
    # the player's range requests were one view; the Download link was the one download
    by_platform = {r["key"]: r for r in studio.run(studio.daemon.store.analytics(None, video_id))["by_platform"]}
    assert (by_platform["api"].get("view"), by_platform["api"].get("download")) == (1, 1), by_platform


def _downloaded(path: Path, timeout: float = 20) -> Path:
    """Chromium writes a download as .crdownload and renames it when whole."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.is_file() and not path.with_name(path.name + ".crdownload").exists():
            return path
        time.sleep(0.1)
    held = sorted(p.name for p in path.parent.iterdir())
    raise AssertionError(f"{path.name} was not downloaded; the folder holds {held}")


def test_the_carousel_filters_presenters_by_kind(studio: Studio):
    studio.sign_in(TOKENS["bob"])
    studio.wait(lambda d: studio.all(".avatar"), what="the avatar carousel")
    everyone = {c.get_attribute("data-id") for c in studio.all(".avatar")}
    Select(studio.find("#avatar-type")).select_by_value("talking_photo")  # none of the fixture's is a photo
    studio.visible("#avatars-none")
    assert studio.all(".avatar") == []
    Select(studio.find("#avatar-type")).select_by_value("avatar")
    studio.wait(lambda d: {c.get_attribute("data-id") for c in studio.all(".avatar")} == everyone,
                what="the avatars again")
    assert not studio.find("#avatars-none").is_displayed() and not studio.all(".badge.photo")
    # a still not drawn yet is said to be on its way, not an empty box; a drawn one covers the note
    studio.wait(lambda d: studio.find(".avatar .media").get_attribute("data-state") == "drawn", what="a still")
    cards = studio.driver.execute_script("""return [...document.querySelectorAll('.avatar .media')].map(m => {
        const img = m.querySelector('img');
        return [m.dataset.state, img.complete && img.naturalWidth > 0,
                getComputedStyle(m.querySelector('.note')).display !== 'none', m.querySelector('.note').textContent];
    })""")
    for state, loaded, noted, note in cards:
        assert state in ("drawing", "drawn") and noted == (state != "drawn") and note == "Drawing the preview…"
        assert loaded or state != "drawn"


def test_a_bad_token_is_refused_with_the_reason(studio: Studio):
    studio.driver.get(studio.base_url + "/")
    studio.wait(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"), what="the page")
    studio.sign_out()
    studio.find("#token").send_keys("not-a-token")
    studio.find("#signin-form button[type=submit]").click()
    flash = studio.visible("#flash.error")
    assert "token" in flash.text and "not-a-token" not in flash.text
    assert not studio.find("#nav").is_displayed()
    studio.screenshot("signin")


def test_a_refused_video_says_why_where_a_phone_can_see_it(studio: Studio):
    studio.sign_in(TOKENS["alice"])
    studio.driver.set_window_size(*PHONE)
    try:
        studio.find("#title").send_keys("Too long")
        studio.driver.execute_script("document.getElementById('script').value = arguments[0]", "word " * 1500)
        studio.find("#make-submit").click()  # at the foot of a long form: the banner is a screen above
        banner = studio.visible("#flash.error")
        assert "script_content" in banner.text
        assert studio.driver.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight", banner)
        assert studio.driver.switch_to.active_element == studio.find("#script")  # ready to be shortened
    finally:
        studio.driver.set_window_size(*DESKTOP)


def test_the_page_estimates_spoken_seconds_as_the_server_does(studio: Studio):
    studio.sign_in(TOKENS["alice"], "videos")  # any page: the estimate is the page's, not the form's
    texts = ["", "one", "Hello there, world.", "a b c\n\nd e f\n\n\ng", "word " * 137, "  spaced   out \t text \n",
             "Paragraph one.\n\nParagraph two.\n\nThree."]
    for speed in (0.5, 0.85, 1.0, 1.05, 1.5):
        ours = [estimate_seconds(t, speed) for t in texts]
        page = studio.driver.execute_script("return arguments[0].map(t => estimateSeconds(t, arguments[1]))",
                                            texts, speed)
        assert page == ours, (speed, page, ours)


def test_make_a_video_from_a_research_job(studio: Studio):
    # as the inbox takes a file; its own video (by the instant fake renderer) is not what this test watches
    ingested = studio.run(studio.daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json",
                                                        overrides=VideoSettings(renderer="fake")))
    stored = studio.run(studio.daemon.store.research_job(ingested.research_id))
    # a plain script is stored as research too, but with no insights there is nothing here to pick
    plain = studio.run(studio.daemon.pipeline.ingest(b"Just a script, read as written.", "plain.txt", ".txt",
                                                     overrides=VideoSettings(renderer="fake")))
    studio.sign_in(TOKENS["alice"], "research")
    studio.visible(f"[data-research='{ingested.research_id}']")
    assert not studio.all(f"[data-research='{plain.research_id}']")
    studio.find(f"[data-research='{ingested.research_id}']").click()
    studio.visible("#research-detail")
    box = studio.find("#research-script")
    # read from the top: the caret (and the box's scroll) at the first line, not at the end
    assert studio.driver.execute_script("return [arguments[0].selectionStart, arguments[0].scrollTop]", box) == [0, 0]
    insights = [li.text for li in studio.all("#research-insights li")]
    assert len(insights) == len(stored.research.insights)
    first = stored.research.insights[0]
    assert first.text in insights[0] and f"score {first.score:,g}" in insights[0]
    box = studio.find("#research-script")
    assert box.get_attribute("value") == stored.script.text  # the script, shown before it is sent
    box.clear()
    box.send_keys("Edited in the studio. Short and clear.")
    studio.screenshot("research")
    studio.find("#research-submit").click()
    studio.visible("#view-watch")
    studio.wait(lambda d: studio.find("#watch-status").get_attribute("data-status") in ("completed", "failed"),
                timeout=90, what="the render to end")
    video_id = int(studio.driver.execute_script("return location.hash.split('/')[1]"))
    job = studio.run(studio.daemon.store.job(video_id))
    script = studio.run(studio.daemon.jobs.script_for(job))
    assert script.text == "Edited in the studio. Short and clear." and job.workspace_id == "W1"
    # the page text beside the player: the research's, kept through the edit, each with its copy button
    assert script.description == stored.script.description and script.hashtags == stored.script.hashtags
    assert stored.script.description and stored.script.hashtags
    studio.visible("#video-text")
    studio.wait(lambda d: studio.find("#vt-title").get_attribute("value") == job.title, what="the title")
    assert studio.find("#vt-description").get_attribute("value") == stored.script.description
    assert studio.find("#vt-hashtags").get_attribute("value") == " ".join(stored.script.hashtags)
    assert studio.find("#vt-notes-box").is_displayed() == bool(script.notes)
    studio.driver.set_window_size(*PHONE)  # on a phone the description is as wide as the page, its button below
    wide = studio.driver.execute_script(
        "const f = document.getElementById('vt-description'); return f.offsetWidth / f.closest('section').offsetWidth")
    studio.driver.set_window_size(*DESKTOP)
    assert wide > 0.9, wide
    studio.driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": studio.base_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    for field, expected in (("vt-hashtags", " ".join(stored.script.hashtags)),
                            ("vt-description", stored.script.description)):
        studio.find(f"[data-copy='{field}']").click()
        studio.wait(lambda d: studio.find(f"[data-copy='{field}']").get_attribute("data-copied"), what="the copy")
        pasted = studio.driver.execute_async_script(
            "navigator.clipboard.readText().then(arguments[0], e => arguments[0]('failed: ' + e))")
        assert pasted == expected

    studio.go("#videos")
    studio.visible(f"[data-video='{video_id}']")
    status = Select(studio.find("#videos-status"))
    status.select_by_value("failed")
    studio.wait(lambda d: not studio.all("[data-video]") and "No videos" in studio.find("#videos-list").text,
                what="no failed videos")
    status.select_by_value("completed")
    studio.visible(f"[data-video='{video_id}'] img")
    assert {c.find_element(By.CSS_SELECTOR, ".badge").text for c in studio.all("[data-video]")} == {"completed"}
    studio.screenshot("videos")


def test_pause_and_resume_a_campaign(studio: Studio):
    # research for the run to consider (the same file as the research test's: stored once)
    studio.run(studio.daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json",
                                             overrides=VideoSettings(renderer="fake")))
    studio.sign_in(TOKENS["root"], "campaigns")  # campaigns need a token allowed to manage them
    card = "[data-campaign='morning-hn']"
    studio.visible(card)

    def paused() -> bool:
        rows = studio.run(studio.daemon.campaigns.rows())
        return next(r for r in rows if r["name"] == "morning-hn")["paused"]

    assert not paused()
    studio.find(f"{card} [data-action=pause]").click()
    studio.wait(lambda d: studio.find(f"{card} .badge").get_attribute("data-state") == "paused", what="paused")
    assert paused()
    studio.find(f"{card} [data-action=pause]").click()  # now it reads Resume
    studio.wait(lambda d: studio.find(f"{card} .badge").get_attribute("data-state") == "running", what="resumed")
    assert not paused()

    studio.find(f"{card} [data-action=run]").click()
    studio.visible("#campaign-report")
    row = next(r for r in studio.run(studio.daemon.campaigns.rows()) if r["name"] == "morning-hn")
    last = studio.run(studio.daemon.store.campaign_runs(row["id"], 1))[0]
    studio.wait(lambda d: studio.find("#report-message").text == last["message"], what="the run's report")
    lines = [li.text for li in studio.all("#report-considered li")]
    assert len(lines) == len(last["considered"]) and last["considered"]
    assert all(c["title"] in line and c["verdict"] in line for c, line in zip(last["considered"], lines))

    # the form writes the campaign's YAML file through the API, and the daemon runs what it wrote
    studio.find(f"{card} [data-action=edit]").click()
    studio.visible("#campaign-form")
    assert studio.find("#c-name").get_attribute("value") == "morning-hn"
    videos = studio.find("#c-max")
    videos.clear()
    videos.send_keys("2")
    studio.find("#c-description").send_keys("Edited in the studio")
    studio.screenshot("campaigns")
    studio.find("#campaign-form button[type=submit]").click()
    studio.wait(lambda d: studio.find("#campaign-form").get_attribute("hidden") is not None, what="the form saved")
    saved = load_campaign(studio.daemon.catalogue, studio.daemon.settings.campaigns_dir / "morning-hn.yaml")
    assert (saved.max_videos_per_day, saved.description, saved.formats) == (2, "Edited in the studio", ["square"])
    assert saved.sources[0].source == "hackernews" and saved.schedule.at == "09:00"


def test_a_campaign_card_offers_only_what_its_state_allows(studio: Studio):
    studio.sign_in(TOKENS["root"], "campaigns")
    dormant = "[data-campaign='dormant']"
    studio.visible(dormant)
    assert studio.find(f"{dormant} .badge").get_attribute("data-state") == "inactive"
    # the scheduler never runs an inactive campaign, so there is nothing to pause; it has no last run to show
    actions = {b.get_attribute("data-action") for b in studio.all(f"{dormant} [data-action]")}
    assert actions == {"run", "edit"}, actions
    assert studio.all("[data-campaign='morning-hn'] [data-action=pause]")  # an active one can be paused

    # Run now says it is running, and one click is one run, however long its sources take to answer
    studio.driver.execute_script("""
        const send = window.fetch;
        window.releaseRun = null;
        window.fetch = (url, options) => String(url).endsWith("/run")
            ? new Promise((go) => { window.releaseRun = go; }).then(() => send(url, options)) : send(url, options);""")
    run = studio.find(f"{dormant} [data-action=run]")
    run.click()
    studio.wait(lambda d: d.execute_script("return window.releaseRun !== null"), what="the run to be asked for")
    assert not run.is_enabled() and studio.find("#flash").text.startswith("Running dormant")
    studio.driver.execute_script("window.releaseRun()")
    studio.wait(lambda d: studio.find("#flash").text.startswith("dormant ran:"), what="the run's answer")
    studio.visible(f"{dormant} [data-action=report]")  # it has a last run now

    # the form asks only for what the chosen schedule reads, and can be put away unsaved
    studio.find("#campaign-new").click()
    shown = lambda: {f for f in ("c-at", "c-day", "c-cron") if studio.find("#" + f).is_displayed()}  # noqa: E731
    every = Select(studio.find("#c-every"))
    assert every.first_selected_option.get_attribute("value") == "daily" and shown() == {"c-at"}
    every.select_by_visible_text("weekly")
    assert shown() == {"c-at", "c-day"}
    every.select_by_value("cron")
    assert shown() == {"c-cron"}
    studio.find("#campaign-cancel").click()
    assert not studio.find("#campaign-form").is_displayed()


def test_a_message_stays_with_the_page_it_is_about(studio: Studio):
    studio.sign_in(TOKENS["alice"], "videos")
    studio.go("#watch/999999")
    studio.wait(lambda d: "no video 999999" in studio.find("#flash").text, what="the unknown video's error")
    studio.go("#campaigns")
    studio.visible("#view-campaigns")
    studio.wait(lambda d: studio.find("#flash").text == "", what="the old error to go")
    studio.go("#watch")  # no video named: the list to pick one from, not "no video 'undefined'"
    studio.visible("#view-videos")
    assert studio.find("#flash").text == ""


def test_a_failed_video_is_tried_again_where_its_reason_is_read(studio: Studio):
    fake = studio.daemon.renderers["fake"]
    fake.fail = "the renderer ran out of presenters"
    try:  # alice's own video, by the instant fake renderer, which fails this once
        ingested = studio.run(studio.daemon.pipeline.ingest(
            b"A short script that fails the first time.", "fails.txt", ".txt",
            overrides=VideoSettings(renderer="fake", workspace="W1", user="U1")))
        [video_id] = ingested.job_ids
        studio.sign_in(TOKENS["alice"], f"watch/{video_id}")
        studio.wait(lambda d: studio.find("#watch-status").get_attribute("data-status") == "failed", what="failed")
    finally:
        fake.fail = None
    assert "ran out of presenters" in studio.find("#watch-status").text
    studio.visible("#watch-retry").click()
    studio.wait(lambda d: studio.find("#watch-status").get_attribute("data-status") == "completed",
                what="the second try to finish")
    assert not studio.find("#watch-retry").is_displayed()
    assert studio.run(studio.daemon.store.job(video_id)).status.value == "completed"
    # a state whose message is its own name says it once (a cancel's event message is "cancelled")
    studio.driver.execute_script("progress({id: 0, status: 'cancelled', percent: 5, message: 'cancelled'})")
    assert studio.find("#watch-status").text == "cancelled · 5%" and studio.find("#watch-retry").is_displayed()


def test_the_analytics_chart_shows_the_events_posted(studio: Studio):
    auth = {"Authorization": f"Bearer {TOKENS['eve']}"}
    made = requests.post(f"{studio.base_url}/videos", headers=auth, timeout=10,
                         json={"script_title": "Counted", "script_content": "Counted once.", "renderer": "fake"}).json()
    video_id = made["videos"][0]["id"]
    posted = {("youtube", "view"): 3, ("tiktok", "view"): 5, ("tiktok", "share"): 2}
    for (platform, event), n in posted.items():
        for _ in range(n):
            answer = requests.post(f"{studio.base_url}/videos/{video_id}/events", headers=auth, timeout=10,
                                   json={"event": event, "platform": platform})
            assert answer.status_code == 201, answer.text
    studio.sign_in(TOKENS["eve"], "analytics")
    studio.visible("#chart-platform svg")
    bars = {(r.get_attribute("data-key"), r.get_attribute("data-event")): int(r.get_attribute("data-value"))
            for r in studio.all("#chart-platform rect")}
    assert {k: v for k, v in bars.items() if v} == posted
    heights = {k: float(r.get_attribute("height")) for r in studio.all("#chart-platform rect")
               for k in [(r.get_attribute("data-key"), r.get_attribute("data-event"))]}
    assert heights[("tiktok", "view")] > heights[("youtube", "view")] > heights[("tiktok", "share")] > 0
    day = [int(r.get_attribute("data-value")) for r in studio.all("#chart-day rect")]
    assert sum(day) == sum(posted.values())
    studio.screenshot("analytics")


def test_an_empty_video_list_says_where_inbox_videos_are(studio: Studio):
    studio.run(studio.daemon.pipeline.ingest(b"Dropped in the inbox.", "dropped.txt", ".txt",
                                             overrides=VideoSettings(renderer="fake")))
    studio.sign_in(TOKENS["eve"], "videos")  # eve is no admin: the inbox's video is not hers to see
    Select(studio.find("#videos-status")).select_by_value("timeout")
    empty = studio.visible("#videos-list [data-empty]")
    assert "only an admin token lists them" in empty.text
    studio.sign_in(TOKENS["root"], "videos")  # an admin sees them all: no such note
    Select(studio.find("#videos-status")).select_by_value("timeout")
    studio.wait(lambda d: studio.find("#videos-list [data-empty]").text == "No videos here yet.", what="the list")


def test_own_narration_talking_photo_and_background_are_uploaded(studio: Studio, tmp_path):
    (tmp_path / "voice.wav").write_bytes(wav_bytes(seconds=1.5))
    shutil.copy(Path(__file__).parent / "fixtures/photos/astronaut.jpg", tmp_path / "face.jpg")  # a real face
    (tmp_path / "backdrop.png").write_bytes(png_bytes((160, 160), (20, 120, 90)))
    (tmp_path / "logo.png").write_bytes(png_bytes((200, 200), (255, 0, 255)))
    studio.sign_in(TOKENS["bob"])
    studio.visible(".avatar")
    studio.find("#title").send_keys("My own voice")
    studio.find("#script").send_keys("Testing my own voice.")
    Select(studio.find("#bg-type")).select_by_value("upload")
    studio.visible("#bg-file").send_keys(str(tmp_path / "backdrop.png"))
    studio.find("#narration").send_keys(str(tmp_path / "voice.wav"))
    studio.find("#photo").send_keys(str(tmp_path / "face.jpg"))
    studio.find("#logo").send_keys(str(tmp_path / "logo.png"))
    studio.find("#make-submit").click()
    studio.visible("#view-watch")
    studio.wait(lambda d: studio.find("#watch-status").get_attribute("data-status") in ("completed", "failed"),
                timeout=90, what="the render to end")
    assert studio.find("#watch-status").get_attribute("data-status") == "completed", studio.find("#watch-status").text
    video_id = int(studio.driver.execute_script("return location.hash.split('/')[1]"))
    job = studio.run(studio.daemon.store.job(video_id))
    assets = requests.get(f"{studio.base_url}/assets", headers={"Authorization": f"Bearer {TOKENS['bob']}"},
                          timeout=10).json()["assets"]
    kinds = sorted(a["kind"] for a in assets)
    assert kinds == ["audio", "image", "image", "image"]
    request = json.dumps(job.request)
    assert all(a["asset_id"] in request for a in assets)  # each upload reached the job it was made for
    # the uploaded logo is in the brand corner (top-right) of the picture
    with av.open(job.result["video"]) as box:
        frame = next(iter(box.decode(video=0))).to_ndarray(format="rgb24")
    r, g, b = (int(v) for v in frame[80, frame.shape[1] - 80])
    assert r > 200 and g < 70 and b > 200, (r, g, b)
    assert abs(job.result["duration"] - 1.5) < 0.6  # the video is as long as the narration, not the script


def test_publish_a_finished_video_and_watch_the_post_go_live(studio: Studio):
    auth = {"Authorization": f"Bearer {TOKENS['bob']}"}
    made = requests.post(f"{studio.base_url}/videos", headers=auth, timeout=10,
                         json={"script_title": "Posted", "script_content": "Off it goes.", "renderer": "fake"}).json()
    video_id = made["videos"][0]["id"]
    studio.sign_in(TOKENS["bob"], f"watch/{video_id}")
    target = studio.visible("#publish-targets input[data-platform=loopvid][data-account=loop-main]")
    assert target.is_selected()  # the only account there is: chosen already
    Select(studio.find("#publish-privacy")).select_by_value("unlisted")
    button = studio.find("#publish")
    button.click()
    studio.driver.execute_script("arguments[0].click()", button)  # an impatient second click
    post = "#publications [data-publication]"
    studio.wait(lambda d: [e.get_attribute("data-state") for e in studio.all(post)] == ["published"], timeout=30,
                what="the post to be published, live")
    (remote,) = studio.platform.videos.values()  # one post, whatever the clicks
    assert remote["privacy"] == "unlisted" and studio.platform.starts == 1
    link = studio.find(f"{post} a")
    assert link.get_attribute("href") == f"{studio.platform.url}/watch/{remote['id']}"
    assert "published" in studio.find(post).text and "loopvid · loop-main" in studio.find(post).text
    studio.screenshot("publish")
    # opened again later: the post is listed from the start, and clicking again posts nothing new
    studio.go("#videos")
    studio.go(f"#watch/{video_id}")
    studio.wait(lambda d: [e.get_attribute("data-state") for e in studio.all(post)] == ["published"],
                what="the post, listed again")
    studio.visible("#publish").click()
    studio.wait(lambda d: "Publishing video" in studio.find("#flash").text, what="the answer")
    assert len(studio.platform.videos) == 1 and len(studio.all(post)) == 1

    # the platform's own views come back into the analytics, next to the downloads made here
    remote["views"], remote["likes"] = 42, 7
    assert studio.run(studio.daemon.publishing.figures_once()) >= 1
    requests.get(f"{studio.base_url}/videos/{video_id}/download", headers=auth, timeout=10)  # a download
    studio.go("#analytics")
    studio.visible("#chart-platform svg")
    bars = {(r.get_attribute("data-key"), r.get_attribute("data-event")): int(r.get_attribute("data-value"))
            for r in studio.all("#chart-platform rect")}
    assert bars[("loopvid", "view")] == 42 and bars[("loopvid", "like")] == 7 and bars[("api", "download")] >= 1
