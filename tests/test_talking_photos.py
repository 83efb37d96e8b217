"""One talking-photo profile, any interface, either renderer: HTTP, the inbox, the CLI, Slack's picker, and a
real local render (HeyGen's side is tests/builtins/test_heygen_photos.py)."""

import json
from datetime import timedelta

import aiohttp
import av
import pytest

from avatar_daemon import AvatarProfile, InvalidRequest
from avatar_daemon.cli import main
from avatar_daemon.testing import (
    FakeRenderer, RecordingPlugin, drop, make_daemon, make_settings, running, wait_for_final, wait_until,
)
from avatar_daemon_plugins.slack import blocks
from tests.conftest import REPO, fixture_bytes
from tests.test_http_api import Api, users_yaml

PORTRAIT = REPO / "tests/fixtures/photos/astronaut.jpg"


def photo_profile(id="rosa", tier="free", **fields) -> AvatarProfile:
    return AvatarProfile.model_validate({"id": id, "name": id.title(), "avatar_type": "talking_photo", "tier": tier,
                                         "photo": str(PORTRAIT), "voice": "en-us-female", **fields})


async def test_a_talking_photo_profile_renders_locally_with_its_photo(tmp_path):
    settings = make_settings(tmp_path, default_renderer="local", notifiers=["log"])
    daemon = make_daemon(tmp_path, settings=settings)
    daemon.settings.avatars["rosa"] = photo_profile()
    async with running(daemon):
        from avatar_daemon.planning import VideoSettings
        photo = await daemon.pipeline.ingest(b"Hello from a photo.", "photo.txt", ".txt", fresh_jobs=True,
                                             overrides=VideoSettings(formats=["portrait-720"], avatar="rosa"))
        assert await wait_for_final(daemon, photo.job_ids[0], timeout=120) == "completed"
        job = await daemon.store.job(photo.job_ids[0])
    assert job.avatar_id == "rosa" and job.renderer == "local"
    with av.open(job.result["video"]) as box:
        assert box.streams.video and box.streams.audio
        seconds = float(box.duration) / av.time_base
    assert 0.5 < seconds < 6


@pytest.fixture
async def api(tmp_path):
    users_yaml(tmp_path)
    plugin = RecordingPlugin(FakeRenderer(seconds=0.05))
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=make_settings(tmp_path, users_file="users.yaml"))
    daemon.settings.avatars["rosa"] = photo_profile()
    daemon.settings.avatars["rosa_pro"] = photo_profile("rosa_pro", tier="pro")
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        yield Api(http, daemon, plugin)


async def test_a_free_caller_cannot_use_a_talking_photo_above_their_tier(api):
    _, free, _ = await api.call("GET", "/avatars", "alice")
    types = {a["id"]: a["avatar_type"] for a in free["avatars"]}
    assert types["rosa"] == "talking_photo" and types["sarah"] == "avatar" and "rosa_pro" not in types
    _, photos, _ = await api.call("GET", "/avatars?avatar_type=talking_photo", "bob")
    assert {a["id"] for a in photos["avatars"]} == {"rosa", "rosa_pro"}
    status, bad, _ = await api.call("GET", "/avatars?avatar_type=photo", "bob")
    assert status == 400 and bad["field"] == "avatar_type" and "not one of avatar, talking_photo" in bad["error"]
    status, refused, _ = await api.call("POST", "/videos", "alice", json={
        "script_title": "Hi", "script_content": "Hello there.", "avatar_profile_id": "rosa_pro"})
    assert status == 403 and refused["field"] == "avatar_profile_id"
    assert "avatar 'rosa_pro' needs the pro tier; alice is on the free tier" in refused["error"]
    status, _, _ = await api.call("GET", "/avatars/rosa_pro", "alice")
    assert status == 403
    video = await api.video("bob", avatar_profile_id="rosa_pro")  # bob is on the pro tier
    await wait_until(lambda: api.plugin.notifier.states(video["id"])[-1:] == ["completed"], timeout=8)
    (request,) = api.plugin.renderer.requests
    assert request.avatar.id == "rosa_pro" and request.avatar.avatar_type == "talking_photo"
    assert request.avatar.photo == str(PORTRAIT) and not api.plugin.renderer.requests[0].talking_photo
    assert not [r for r in api.plugin.renderer.requests if r.avatar.id == "rosa_pro" and r.job_id != video["id"]]


async def test_an_inbox_envelope_reaches_a_talking_photo_and_a_photo_file(tmp_path):
    plugin = RecordingPlugin(FakeRenderer(seconds=0.01))
    daemon = make_daemon(tmp_path, plugins=[plugin])
    daemon.settings.avatars["rosa"] = photo_profile()
    (tmp_path / "assets").mkdir(exist_ok=True)
    mine = tmp_path / "assets/mine.jpg"
    mine.write_bytes(PORTRAIT.read_bytes())
    async with running(daemon):
        research = json.loads(fixture_bytes("research_job.json"))
        drop(daemon, "a.json", json.dumps({"request": {"formats": ["tiktok"], "avatar": "rosa"},
                                           "research": research}))
        await wait_until(lambda: len(plugin.renderer.requests) == 1, timeout=15)
        drop(daemon, "b.json", json.dumps({"request": {"formats": ["youtube"], "avatar": "sarah",
                                                       "talking_photo": {"path": str(mine)}}, "research": research}))
        await wait_until(lambda: len(plugin.renderer.requests) == 2, timeout=15)
    profile, photo = plugin.renderer.requests
    assert profile.avatar.avatar_type == "talking_photo" and profile.talking_photo is None
    assert photo.avatar.id == "sarah" and photo.talking_photo.read_bytes() == mine.read_bytes()


def test_the_avatars_command_shows_each_profiles_type(tmp_path, capsys):
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"data_dir": "var", "database": "var/db.sqlite3"}))
    with pytest.raises(SystemExit) as exit_:
        main(["avatars", "--config", str(config)])
    assert exit_.value.code == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["sarah"] == "avatar" and set(rows.values()) == {"avatar"}


def test_the_slack_picker_badges_talking_photos():
    avatars = [{"id": "sarah", "name": "Sarah", "avatar_type": "avatar", "tier": "free", "style": "news"},
               {"id": "rosa", "name": "Rosa", "avatar_type": "talking_photo", "tier": "free", "style": "portrait"}]
    view = blocks.modal(avatars, [], [], {})
    (picker,) = [b for b in view["blocks"] if b.get("block_id") == "avatar"]
    labels = {o["value"]: o["text"]["text"] for o in picker["element"]["options"]}
    assert labels["rosa"].endswith("talking photo") and "talking photo" not in labels["sarah"]
    assert all(len(text) <= 75 for text in labels.values())  # Slack's limit for an option's text


async def test_a_campaign_makes_its_videos_with_a_talking_photo(tmp_path):
    from tests.test_campaigns import Clock, campaign_daemon, ingest_listing, write_campaign
    daemon, plugin = campaign_daemon(tmp_path, Clock("2026-11-24T07:00:00+00:00"))
    daemon.settings.avatars["rosa"] = photo_profile()
    write_campaign(tmp_path / "campaigns", avatar="rosa")
    async with running(daemon):
        await daemon.campaigns.reload()
        await ingest_listing(daemon, [("New open model tops the coding charts", 900),
                                      ("AI agents replace support scripts", 500)], url_prefix="https://a")
        (job_id,) = (await daemon.campaigns.run_now("ai")).job_ids
        await wait_until(lambda: [r for r in plugin.renderer.requests if r.job_id == job_id], timeout=10)
    (request,) = [r for r in plugin.renderer.requests if r.job_id == job_id]
    assert request.avatar.id == "rosa" and request.avatar.avatar_type == "talking_photo"


# ---- a photo the local renderer cannot animate is refused at request time, by every interface ----------


def faceless(path):
    """A wall: an image every probe accepts, with no face in it."""
    from PIL import Image

    Image.new("RGB", (400, 500), (200, 150, 120)).save(path)
    return path


@pytest.fixture
async def local_api(tmp_path):
    users_yaml(tmp_path)
    plugin = RecordingPlugin(FakeRenderer(seconds=0.05))
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=make_settings(tmp_path, users_file="users.yaml"))
    daemon.settings.avatars["wall"] = photo_profile("wall", photo=str(faceless(tmp_path / "wall.png")))
    daemon.settings.avatars["drawn"] = photo_profile("drawn", photo=str(tmp_path / "wall.png"),
                                                     mouth={"x": 200, "y": 330, "width": 100})
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        yield Api(http, daemon, plugin)


async def test_http_refuses_a_faceless_photo_for_the_local_renderer_naming_the_field(local_api, tmp_path):
    from tests.test_assets import upload

    api = local_api
    _, wall, _ = await upload(api, faceless(tmp_path / "up.png").read_bytes(), name="wall.png")
    body = {"script_title": "Hi", "script_content": "Hello there.", "renderer": "local"}
    status, refused, _ = await api.call("POST", "/videos", "alice", json={**body, "photo_asset_id": wall["asset_id"]})
    assert status == 422 and refused["field"] == "talking_photo.asset_id"
    assert refused["error"].startswith("talking_photo.asset_id: no face found in the photo: use a portrait")
    status, refused, _ = await api.call("POST", "/videos", "alice", json={**body, "avatar_profile_id": "wall"})
    assert status == 422 and refused["field"] == "avatar_profile_id"
    assert refused["error"].startswith("avatar_profile_id: profile 'wall': no face found in the photo")
    api.daemon.settings.avatars["gone"] = photo_profile("gone", photo=str(tmp_path / "assets/gone.jpg"))
    status, refused, _ = await api.call("POST", "/videos", "alice", json={**body, "avatar_profile_id": "gone"})
    assert status == 422 and refused["error"].startswith("avatar_profile_id: profile 'gone': the photo cannot be "
                                                         "read: [Errno 2] No such file or directory: 'gone.jpg'")
    _, listed, _ = await api.call("GET", "/videos", "alice")
    assert listed["videos"] == []  # nothing was queued
    # A renderer that does not check photos takes it as before (HeyGen: its service says), as does a
    # profile that places the mouth itself.
    assert (await api.video("alice", photo_asset_id=wall["asset_id"]))["id"]
    status, made, _ = await api.call("POST", "/videos", "alice", json={**body, "avatar_profile_id": "drawn"})
    assert status == 201, made
    await api.call("POST", f"/videos/{made['videos'][0]['id']}/cancel", "alice")


async def test_the_inbox_files_a_faceless_photo_under_failed_with_the_reason(tmp_path):
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer(seconds=0.01))])
    (tmp_path / "assets").mkdir(exist_ok=True)
    faceless(tmp_path / "assets/wall.jpg")
    research = json.loads(fixture_bytes("research_job.json"))
    async with running(daemon):
        drop(daemon, "wall.json", json.dumps({"request": {"formats": ["tiktok"], "renderer": "local",
                                                          "talking_photo": {"path": "wall.jpg"}},
                                              "research": research}))
        await wait_until(lambda: (daemon.inbox.failed / "wall.json.error.txt").exists(), timeout=15)
        assert await daemon.store.jobs() == []
    reason = (daemon.inbox.failed / "wall.json.error.txt").read_text()
    assert "talking_photo.path: no face found in the photo" in reason and (daemon.inbox.failed / "wall.json").exists()


def test_render_prints_why_a_photo_cannot_talk(tmp_path, capsys):
    from tests.test_systemd_and_cli import _config, _main

    script = tmp_path / "hello.txt"
    script.write_text("Hello from a wall.")
    code = _main("render", str(script), "--renderer", "local", "--photo", str(faceless(tmp_path / "wall.png")),
                 "--config", str(_config(tmp_path)))
    err = capsys.readouterr().err
    assert code == 1 and "error: talking_photo.asset_id: no face found in the photo" in err
    assert not list((tmp_path / "var/videos").glob("*/*.mp4"))


def test_a_dry_run_refuses_a_photo_that_cannot_talk_as_a_render_does(tmp_path, capsys):
    from tests.test_systemd_and_cli import _config, _main

    script = tmp_path / "hello.txt"
    script.write_text("Hello from a wall.")
    code = _main("render", str(script), "--renderer", "local", "--photo", str(faceless(tmp_path / "wall.png")),
                 "--dry-run", "--config", str(_config(tmp_path)))
    err = capsys.readouterr().err
    assert code == 1 and "error: talking_photo.asset_id: no face found in the photo" in err


async def test_a_campaign_with_a_faceless_talking_photo_is_refused_naming_its_file_and_field(local_api):
    api = local_api
    campaign = {"name": "walls", "sources": [{"source": "reddit"}], "schedule": {"every": "daily"},
                "avatar": "wall", "renderer": "local"}
    status, refused, _ = await api.call("POST", "/campaigns", "root", json=campaign)
    assert status == 422 and refused["field"] == "avatar"
    assert "walls.yaml:" in refused["error"] and "avatar: profile 'wall': no face found in the photo" in refused["error"]
    assert not (api.daemon.campaigns.folder / "walls.yaml").exists()
    # A file written by hand is reported with its path and line, and the others keep loading.
    folder = api.daemon.campaigns.folder
    (folder / "walls.yaml").write_text("name: walls\nsources: [{source: reddit}]\nschedule: {every: daily}\n"
                                       "renderer: local\navatar: wall\n")
    (folder / "fine.yaml").write_text("name: fine\nsources: [{source: reddit}]\nschedule: {every: daily}\n"
                                      "renderer: local\navatar: drawn\n")
    problems = await api.daemon.campaigns.reload()
    assert problems == [f"{folder / 'walls.yaml'}:5: avatar: profile 'wall': no face found in the photo: use a "
                        f"portrait{problems[0].split('use a portrait', 1)[1]}"]
    _, listed, _ = await api.call("GET", "/campaigns", "root")
    assert [c["name"] for c in listed["campaigns"]] == ["fine"]


async def test_a_campaign_whose_photo_lost_its_face_is_refused_at_each_run_and_its_research_waits(tmp_path):
    import shutil

    from tests.test_campaigns import Clock, campaign_daemon, ingest_listing, write_campaign

    clock = Clock("2026-11-24T07:00:00+00:00")
    daemon, plugin = campaign_daemon(tmp_path, clock)
    photo = tmp_path / "rosa.jpg"
    shutil.copy(PORTRAIT, photo)
    daemon.settings.avatars["rosa"] = photo_profile(photo=str(photo))
    write_campaign(tmp_path / "campaigns", avatar="rosa", renderer="local")
    async with running(daemon):
        assert await daemon.campaigns.reload() == []  # a face, when the file was read
        await ingest_listing(daemon, [("New open model tops the coding charts", 900),
                                      ("AI agents replace support scripts", 500)], url_prefix="https://a")
        faceless(photo)  # the same file, painted over afterwards
        with pytest.raises(InvalidRequest) as refused:
            await daemon.campaigns.run_now("ai")
        assert str(refused.value).startswith("avatar: profile 'rosa': no face found in the photo")
        # The scheduled run is refused the same way: the schedule moves on, and the channel hears why.
        (row,) = await daemon.store.campaign_rows()
        assert await daemon.campaigns.run_due(row.next_run_at + timedelta(minutes=1)) == []
        await wait_until(lambda: any(n.kind == "campaign.error" for n in plugin.notifier.notices))
        (error,) = [n for n in plugin.notifier.notices if n.kind == "campaign.error"]
        assert "campaign ai: run failed: avatar: profile 'rosa': no face found in the photo" in error.message
        (moved,) = await daemon.store.campaign_rows()
        assert moved.next_run_at > row.next_run_at and moved.last_run_at is None
        assert [j for j in await daemon.store.jobs() if j.campaign_id] == []
        # Nothing was considered: with a face again, the next run takes the same research.
        shutil.copy(PORTRAIT, photo)
        report = await daemon.campaigns.run_now("ai")
        assert len(report.job_ids) == 1 and report.considered
        await daemon.jobs.cancel(report.job_ids[0])
