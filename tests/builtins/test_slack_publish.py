"""Slack's "Publish to…" menu on a finished video, against the fake Slack and a platform on loopback."""

import json

import pytest
import yaml

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.builtins.test_slack import command, post, slack  # noqa: F401 (the fixture)
from tests.fake_platform import FakePlatform, LoopbackPublisher, PublishingPlugin

PLATFORM_TOKEN = "access-token-1"


@pytest.fixture
async def platform(monkeypatch):
    monkeypatch.setenv("AVATAR_DAEMON_LOOP_MAIN_TOKEN", PLATFORM_TOKEN)
    async with FakePlatform(token=PLATFORM_TOKEN).serve() as p:
        yield p


def publishing_slack_daemon(tmp_path, fake, platform):
    (tmp_path / "users.yaml").write_text(yaml.safe_dump({
        "default_tier": "free", "workspaces": {"T0EXAMPLE": {"tier": "pro"}, "TOTHER": {"tier": "pro"}}}))
    settings = make_settings(tmp_path, users_file="users.yaml", plugins={"settings": {"slack": {
        "mode": "http", "api_url": f"{fake.url}/api/", "progress_interval_seconds": 0.2}}}, publishing={
        "accounts": {"loop-main": {"platform": "loopvid", "channel": "UC1"}},
        "poll_seconds": 0.05, "retry_seconds": 0.05})
    recording = RecordingPlugin(FakeRenderer(seconds=0.1))
    return make_daemon(tmp_path, plugins=[recording, PublishingPlugin(LoopbackPublisher(platform.url))],
                       settings=settings)


def menu_pick(value, user="U1", team="T0EXAMPLE"):
    return {"payload": json.dumps({
        "type": "block_actions", "team": {"id": team}, "user": {"id": user, "team_id": team},
        "channel": {"id": "C1"}, "api_app_id": "A0APP", "trigger_id": "x",
        "actions": [{"action_id": "publish_to", "block_id": "after", "type": "static_select",
                     "selected_option": {"value": value}}]})}


def ephemerals(fake):
    return [c["text"] for c in fake.called("chat.postEphemeral")]


async def test_publish_to_from_the_finished_message_posts_once_and_tells_the_thread(tmp_path, slack, platform):
    daemon = publishing_slack_daemon(tmp_path, slack, platform)
    async with running(daemon):
        await post(daemon, command(slack, "A video to post."))
        # the finished message with its menu is posted after the upload completes, not with it
        (finished, *_) = await wait_until(lambda: [c for c in slack.called("chat.postMessage")
                                                   if "publish_to" in json.dumps(c.get("blocks") or "")], timeout=20)
        (job,) = await daemon.store.jobs()
        blocks = json.loads(finished["blocks"]) if isinstance(finished["blocks"], str) else finished["blocks"]
        (picker,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                     if e["action_id"] == "publish_to"]
        assert [o["value"] for o in picker["options"]] == [f"{job.id}:loopvid:loop-main"]

        assert (await post(daemon, menu_pick(f"{job.id}:loopvid:loop-main")))[0] == 200
        await wait_until(lambda: any("queued for loopvid (loop-main)" in t for t in ephemerals(slack)))
        told = await wait_until(lambda: [c for c in slack.called("chat.postMessage")
                                         if "is published on loopvid" in (c.get("text") or "")], timeout=20)
        (remote,) = platform.videos.values()
        url = f"{platform.url}/watch/{remote['id']}"
        assert url in told[0]["text"] and told[0]["thread_ts"]
        # the progress message itself lists the post, ending on published with the link
        await wait_until(lambda: url in json.dumps(slack.called("chat.update")[-1].get("blocks") or ""))
        last = slack.called("chat.update")[-1]
        assert "published" in json.dumps(last["blocks"]) and "Done" in last["text"]

        # picking it again answers the post there is; nothing is posted twice
        await post(daemon, menu_pick(f"{job.id}:loopvid:loop-main"))
        await wait_until(lambda: any(f"is on loopvid (loop-main) already: {url}" in t for t in ephemerals(slack)))
        assert len(platform.videos) == 1 and platform.starts == 1
        assert len([c for c in slack.called("chat.postMessage") if "is published on" in (c.get("text") or "")]) == 1


async def test_forged_or_foreign_publish_picks_are_refused_with_the_reason(tmp_path, slack, platform):
    daemon = publishing_slack_daemon(tmp_path, slack, platform)
    async with running(daemon):
        await post(daemon, command(slack, "A video nobody may post."))
        await wait_until(lambda: slack.called("files.completeUploadExternal"), timeout=10)
        (job,) = await daemon.store.jobs()
        for value, who, said in (("abc", "T0EXAMPLE", "publish: not a choice this menu offers"),
                                 (f"{job.id}:loopvid", "T0EXAMPLE", "publish: not a choice"),
                                 (f"{job.id}:myspace:main", "T0EXAMPLE", "no publisher for platform 'myspace'"),
                                 (f"{job.id}:loopvid:nobody", "T0EXAMPLE", "no account named 'nobody'"),
                                 (f"{job.id}:loopvid:loop-main", "TOTHER", f"No video {job.id} in your workspace")):
            before = len(ephemerals(slack))
            assert (await post(daemon, menu_pick(value, team=who)))[0] == 200
            await wait_until(lambda: len(ephemerals(slack)) > before)
            assert said in ephemerals(slack)[-1], (value, ephemerals(slack)[-1])
        assert await daemon.publishing.for_video(job.id) == [] and platform.starts == 0
