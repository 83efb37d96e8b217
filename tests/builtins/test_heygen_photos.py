"""Talking photos on HeyGen v3: a photo-avatar look, or a portrait uploaded once and animated as `type: image`.

The fake HeyGen checks both shapes as developers.heygen.com documents them (and refuses
Avatar V for a look that does not list it, with HeyGen's error envelope); the daemon runs
real jobs against it over loopback.
"""

import json
import shutil

import aiohttp
import pytest
import yaml

from avatar_daemon import AvatarProfile, RenderError, RenderRequest, Script
from avatar_daemon.cli import main
from avatar_daemon.planning import VideoSettings
from avatar_daemon.settings import load_settings
from avatar_daemon.testing import running, wait_for_final
from avatar_daemon_plugins.formats import FORMATS as BUILT_IN_FORMATS
from avatar_daemon_plugins.heygen.answers import HeyGenError
from avatar_daemon_plugins.heygen.client import HeyGenClient
from avatar_daemon_plugins.heygen.plan import make_plan
from avatar_daemon_plugins.heygen.settings import HeyGenSettings
from tests.builtins.test_heygen_daemon import fake, heygen_daemon, ingest  # noqa: F401 (the fixture)
from tests.conftest import REPO
from tests.fake_heygen import API_KEY, FakeHeyGen
from tests.media_server import png_bytes

PORTRAIT = REPO / "tests/fixtures/photos/astronaut.jpg"
VOICE = "1bd001e7e50f421d891986aad5158bc8"
LOOK = "pa_rosa_look_01"


def rosa(**fields) -> AvatarProfile:
    """A talking-photo profile: a HeyGen photo-avatar look, and a portrait for the local renderer."""
    return AvatarProfile.model_validate({
        "id": "rosa", "name": "Rosa", "avatar_type": "talking_photo", "photo": str(PORTRAIT),
        "renderer_ids": {"heygen": LOOK}, "voice_ids": {"heygen": VOICE}, "expressiveness": "high",
        "motion_prompt": "nods now and then", **fields})


FORMATS = {f.name: f for f in BUILT_IN_FORMATS}


def request(tmp_path, avatar: AvatarProfile, **kw) -> RenderRequest:
    return RenderRequest(job_id=7, script=Script(title="T", text="Hello there. This is a photo.", estimated_seconds=3),
                         avatar=avatar, format=FORMATS["tiktok"], output_dir=tmp_path, **kw)


def plan(req, **cfg):
    return make_plan(req, HeyGenSettings(**cfg), "abc", lambda p: f"https://bg/{p}", lambda p: f"ast_{p[-8:]}")


# ---- what we send: no network ------------------------------------------------------------


def test_a_talking_photo_profile_is_its_photo_avatar_look_with_motion(tmp_path):
    (part,) = plan(request(tmp_path, rosa())).parts
    body = part.body
    assert (body["type"], body["avatar_id"], body["engine"]) == ("avatar", LOOK, {"type": "avatar_iv"})
    assert (body["expressiveness"], body["motion_prompt"]) == ("high", "nods now and then")
    assert "image" not in body and body["voice_id"] == VOICE


def test_a_photo_sent_with_the_request_is_an_image_video(tmp_path):
    photo = tmp_path / "me.png"
    sarah = load_settings(None, environ={}).avatars["sarah"]
    for avatar in (sarah, rosa(renderer_ids={})):  # a request's photo; a profile with a photo and no look
        req = request(tmp_path, avatar, talking_photo=photo) if avatar is sarah else request(tmp_path, avatar)
        body = plan(req).parts[0].body
        assert body["type"] == "image" and "avatar_id" not in body
        assert body["image"] == {"type": "asset_id", "asset_id": "ast_" + (str(photo) if avatar is sarah
                                                                            else str(PORTRAIT))[-8:]}
        assert body["engine"] == {"type": "avatar_iv"}


def test_engine_and_motion_come_from_the_template_before_the_profile(tmp_path):
    from avatar_daemon.models import VideoTemplate
    template = VideoTemplate(id="calm", name="Calm", format="tiktok", expressiveness="low", engine="avatar_iv")
    body = make_plan(request(tmp_path, rosa()), HeyGenSettings(), "abc", str, str, template).parts[0].body
    assert body["expressiveness"] == "low" and body["motion_prompt"] == "nods now and then"


def test_what_heygen_would_refuse_is_refused_here_with_the_reason(tmp_path):
    with pytest.raises(RenderError, match="avatar_v cannot animate an uploaded photo"):
        plan(request(tmp_path, rosa(renderer_ids={}, engine="avatar_v", expressiveness=None)))
    with pytest.raises(RenderError, match="test mode is the Studio API, which cannot render talking photos"):
        plan(request(tmp_path, rosa()), test_mode=True)
    with pytest.raises(RenderError, match="'rosa' has no HeyGen voice_ids.heygen"):
        plan(request(tmp_path, rosa(voice_ids={})))
    # Studio would refuse a photo avatar, so a square talking photo is cropped from a v3 render instead.
    square = request(tmp_path, rosa()).model_copy(update={"format": FORMATS["square"]})
    squared = plan(square, square="studio")
    assert squared.api == "v3" and squared.square == "crop" and "Studio cannot" in " ".join(squared.notes)


def test_an_avatar_gets_no_photo_motion_and_the_plan_says_why(tmp_path):
    from avatar_daemon.models import VideoTemplate
    sarah = load_settings(None, environ={}).avatars["sarah"]
    template = VideoTemplate(id="lively", name="Lively", format="tiktok", expressiveness="high")
    made = make_plan(request(tmp_path, sarah), HeyGenSettings(), "abc", str, str, template)
    assert "expressiveness" not in made.parts[0].body and made.parts[0].body["type"] == "avatar"
    assert "talking photos only, and 'sarah' is an avatar" in made.notes[0]


def test_profiles_refuse_settings_that_do_not_fit_them(tmp_path):
    (tmp_path / "avatars.yaml").write_text(json.dumps({"avatars": [
        {"id": "ok", "name": "Ok", "avatar_type": "talking_photo", "photo": "p.jpg"},
        {"id": "bad", "name": "Bad", "expressiveness": "high"},
        {"id": "v5", "name": "V", "avatar_type": "talking_photo", "photo": "p.jpg", "engine": "avatar_v",
         "expressiveness": "low"},
        {"id": "none", "name": "None", "avatar_type": "talking_photo"},
        {"id": "loud", "name": "Loud", "avatar_type": "talking_photo", "photo": "p.jpg", "expressiveness": "max"}]}))
    (tmp_path / "daemon.yaml").write_text(json.dumps({"avatars_file": "avatars.yaml", "default_avatar": "ok"}))
    from avatar_daemon.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "daemon.yaml", environ={})
    text = str(err.value)
    assert "expressiveness is for avatar_type talking_photo; avatar profile 'bad' is an avatar" in text
    assert "engine avatar_v takes no expressiveness" in text
    assert "talking-photo profile 'none' needs a photo" in text
    assert "'low', 'medium' or 'high'" in text
    assert "'ok'" not in text


# ---- the fake HeyGen keeps HeyGen's rules ------------------------------------------------------


async def test_the_fake_checks_v3_photo_shapes_as_heygen_documents_them(tmp_path):
    server = FakeHeyGen(tmp_path, render_seconds=0.05)
    server.looks = {LOOK: {"id": LOOK, "avatar_type": "photo_avatar", "supported_api_engines": ["avatar_iv"]},
                    "studio1": {"id": "studio1", "avatar_type": "studio_avatar",
                                "supported_api_engines": ["avatar_iv", "avatar_v"]},
                    "pa_v": {"id": "pa_v", "avatar_type": "photo_avatar", "supported_api_engines": ["avatar_iv", "avatar_v"]}}
    base = {"script": "Hi.", "voice_id": VOICE, "aspect_ratio": "9:16"}
    async with server.serve(), aiohttp.ClientSession() as session:
        client = HeyGenClient(session, API_KEY, server.url, server.url, backoff=0.01, retries=0)
        asset = await client.create_asset(PORTRAIT, PORTRAIT.read_bytes())
        assert asset.asset_id.startswith("ast_") and asset.mime_type == "image/jpeg"
        image = {"type": "image", "image": {"type": "asset_id", "asset_id": asset.asset_id}, "expressiveness": "high"}
        made = await client.create_video({**base, **image}, "k1")
        assert made.status == "waiting"
        refused = [
            ({**base, **image, "engine": {"type": "avatar_v"}}, "engine", "does not support image input"),
            ({**base, "type": "image", "image": {"type": "asset_id", "asset_id": "ast_nope"}}, "image", "not found"),
            ({**base, "type": "image", "image": {"asset_id": asset.asset_id}}, "image", "image must be"),
            ({**base, "avatar_id": LOOK, "engine": {"type": "avatar_v"}}, "engine", "does not support the avatar_v"),
            ({**base, "avatar_id": "studio1", "motion_prompt": "wave"}, "motion_prompt", "only supported for photo"),
            ({**base, "avatar_id": "pa_v", "engine": {"type": "avatar_v"}, "expressiveness": "low"},
             "expressiveness", "not supported by Avatar V"),
            ({**base, **image, "avatar_id": LOOK}, "avatar_id", "not allowed with type image"),
        ]
        for n, (body, param, words) in enumerate(refused):
            with pytest.raises(HeyGenError) as err:
                await client.create_video(body, f"bad-{n}")
            assert err.value.status in (400, 404) and words in err.value.detail, (param, err.value)
        assert (await client.create_video({**base, "avatar_id": "studio1", "engine": {"type": "avatar_v"}}, "k2")).video_id
        with pytest.raises(HeyGenError, match="unsupported file type"):
            await client.create_asset(tmp_path / "x.txt", b"not an image")
    assert len(server.videos) == 2


# ---- real jobs against the fake ------------------------------------------------------------


def add_rosa(daemon, fake, engines=("avatar_iv",), **fields):
    daemon.settings.avatars["rosa"] = rosa(**fields)
    fake.looks[LOOK] = {"id": LOOK, "name": "Rosa", "avatar_type": "photo_avatar",
                        "supported_api_engines": list(engines), "preview_image_url": "https://img/rosa.jpg"}


async def test_a_talking_photo_profiles_video_completes_on_heygen(tmp_path, fake):
    daemon = heygen_daemon(tmp_path, fake, webhook=False)
    add_rosa(daemon, fake)
    async with running(daemon):
        (job_id,) = await ingest(daemon, avatar="rosa")
        assert await wait_for_final(daemon, job_id) == "completed"
        job = await daemon.store.job(job_id)
    body = fake.videos[job.external_id].body
    assert body["type"] == "avatar" and body["avatar_id"] == LOOK and body["expressiveness"] == "high"
    assert (tmp_path / "var/videos" / f"job-{job_id}" / "video.mp4").stat().st_size > 0


async def test_an_uploaded_photo_is_uploaded_to_heygen_once_for_two_videos(tmp_path, fake):
    image = tmp_path / "assets/me.png"  # local callers' media live in the assets folder
    image.parent.mkdir(parents=True)
    image.write_bytes(png_bytes((96, 128), (180, 140, 120)))
    copy = tmp_path / "assets/me-again.png"  # the same bytes under another name: still one upload
    shutil.copy(image, copy)
    daemon = heygen_daemon(tmp_path, fake, webhook=False)
    async with running(daemon):
        for n, path in enumerate((image, copy)):
            done = await daemon.pipeline.ingest(b"Hello from my own photo. It talks.", f"p{n}.txt", ".txt",
                                                overrides=VideoSettings(formats=["tiktok"],
                                                                        talking_photo={"path": str(path)}),
                                                fresh_jobs=True)
            assert await wait_for_final(daemon, done.job_ids[0]) == "completed"
    assert list(fake.v3_assets.values()) == [image.read_bytes()] and fake.calls["create_asset"] == 1
    bodies = [v.body for v in fake.videos.values()]
    assert [b["type"] for b in bodies] == ["image", "image"] and bodies[0]["image"] == bodies[1]["image"]
    assert bodies[0]["image"] == {"type": "asset_id", "asset_id": next(iter(fake.v3_assets))}


async def test_an_engine_the_look_lacks_is_refused_before_any_submit(tmp_path, fake):
    daemon = heygen_daemon(tmp_path, fake, webhook=False, catalogue_max_age_hours=1e9)  # no sync at start
    add_rosa(daemon, fake, engines=("avatar_iv",), engine="avatar_v", expressiveness=None)
    async with running(daemon):
        (job_id,) = await ingest(daemon, avatar="rosa")
        assert await wait_for_final(daemon, job_id) == "failed"
        job = await daemon.store.job(job_id)
        assert "look 'pa_rosa_look_01' does not support engine avatar_v (it supports: avatar_iv)" in job.error
        assert fake.calls["create_video"] == 0 and fake.calls["avatar_look"] == 1
        fake.looks[LOOK]["supported_api_engines"] = ["avatar_iv", "avatar_v"]  # now it does
        (again,) = await ingest(daemon, avatar="rosa", data=b"A second take. Hello.", suffix=".txt")
        assert await wait_for_final(daemon, again) == "completed"
    (video,) = fake.videos.values()
    assert video.body["engine"] == {"type": "avatar_v"} and "expressiveness" not in video.body


async def test_avatars_sync_checks_photo_looks_as_it_checks_avatars(tmp_path, fake):
    daemon = heygen_daemon(tmp_path, fake, webhook=False)
    add_rosa(daemon, fake)
    daemon.settings.avatars["pic"] = rosa(id="pic", renderer_ids={})      # a portrait only: uploaded, fine
    daemon.settings.avatars["stiff"] = rosa(id="stiff", renderer_ids={"heygen": LOOKS_STUDIO})
    daemon.settings.avatars["v5"] = rosa(id="v5", engine="avatar_v", expressiveness=None)
    fake.looks[LOOKS_STUDIO] = {"id": LOOKS_STUDIO, "avatar_type": "studio_avatar", "supported_api_engines": []}
    renderer = daemon.renderers["heygen"]
    async with daemon.started():
        problems = await renderer.sync_catalogue()
    assert any("'stiff' is a talking photo, but HeyGen look 'Abigail_studio' is a studio_avatar" in p
               for p in problems)
    assert any("'v5': HeyGen look 'pa_rosa_look_01' does not support engine avatar_v" in p for p in problems)
    assert not any("'rosa'" in p or "'pic'" in p for p in problems)
    listed = {a.id: a for a in renderer.list_avatars()}
    assert "pic" in listed and listed["rosa"].preview_image_url == "https://img/rosa.jpg"
    assert renderer.catalogue.data["looks"][LOOK]["supported_api_engines"] == ["avatar_iv"]


LOOKS_STUDIO = "Abigail_studio"


def test_dry_run_prints_the_v3_photo_bodies(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HEYGEN_API_KEY", raising=False)
    (tmp_path / "assets").mkdir()
    shutil.copy(PORTRAIT, tmp_path / "assets/rosa.jpg")
    stock = yaml.safe_load((REPO / "avatar_daemon/defaults/avatars.yaml").read_text())["avatars"]
    (tmp_path / "avatars.yaml").write_text(json.dumps({"avatars": stock + [
        {"id": "rosa", "name": "Rosa", "avatar_type": "talking_photo", "photo": "rosa.jpg",
         "renderer_ids": {"heygen": LOOK}, "voice_ids": {"heygen": VOICE}, "expressiveness": "medium",
         "motion_prompt": "leans in"}]}))
    (tmp_path / "daemon.yaml").write_text(json.dumps({"data_dir": "var", "database": "var/db.sqlite3",
                                                      "assets_dir": "assets", "avatars_file": "avatars.yaml"}))
    script = tmp_path / "hello.txt"
    script.write_text("Hello from a photo.")
    common = ["render", str(script), "--renderer", "heygen", "--dry-run", "--config", str(tmp_path / "daemon.yaml")]
    for extra in (["--avatar", "rosa"], ["--photo", str(PORTRAIT)]):
        with pytest.raises(SystemExit) as exit_:
            main(common + extra)
        assert exit_.value.code == 0
        sent = json.loads(capsys.readouterr().out)
        assert sent["url"] == "https://api.heygen.com/v3/videos"
        body = sent["body"]
        if extra[0] == "--avatar":
            assert (body["type"], body["avatar_id"], body["expressiveness"], body["motion_prompt"]) == \
                ("avatar", LOOK, "medium", "leans in")
        else:
            assert body["type"] == "image" and body["image"]["type"] == "asset_id"
            assert body["image"]["asset_id"].startswith("<upload of ")  # a dry run uploads nothing
        assert body["engine"] == {"type": "avatar_iv"}
