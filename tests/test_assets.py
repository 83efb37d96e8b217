"""Uploads over real HTTP: probed bytes, size caps, one workspace's own, and named by id in requests."""

import aiohttp
import pytest

import json

from avatar_daemon.testing import (FakeRenderer, RecordingPlugin, drop, make_daemon, make_settings, running,
                                   wait_until)
from tests.conftest import fixture_bytes
from tests.media_server import mp4_bytes, png_bytes, wav_bytes
from tests.test_http_api import TOKENS, Api, users_yaml


@pytest.fixture
async def api(tmp_path):
    users_yaml(tmp_path)
    plugin = RecordingPlugin(FakeRenderer(seconds=0.05))
    settings = make_settings(tmp_path, users_file="users.yaml", media={"max_bytes": 200_000})
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=settings)
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        yield Api(http, daemon, plugin)


async def upload(api, data: bytes, who="alice", name="file.bin", field="file"):
    form = aiohttp.FormData()
    form.add_field(field, data, filename=name, content_type="application/octet-stream")
    return await api.call("POST", "/assets", who, data=form)


async def test_uploads_are_sniffed_by_their_bytes_not_their_names(api):
    made = {}
    for kind, data, ctype in (("image", png_bytes(), "image/png"), ("video", mp4_bytes(), "video/mp4"),
                              ("audio", wav_bytes(), "audio/wav")):
        status, body, headers = await upload(api, data, name="whatever.txt")
        assert status == 201, body
        assert (body["kind"], body["content_type"], body["bytes"]) == (kind, ctype, len(data))
        assert headers["Location"] == f"/assets/{body['asset_id']}" and body["workspace"] == "W1"
        made[kind] = body
    status, body, _ = await upload(api, b"<html>not a picture</html>", name="photo.png")
    assert status == 422 and body["field"] == "file" and "not an image" in body["error"]
    status, body, _ = await upload(api, b"\x00" * 300_000)
    assert status == 413 and "200,000-byte limit" in body["error"]
    status, body, _ = await upload(api, png_bytes(), field="picture")
    assert status == 422 and "no part named 'file'" in body["error"]
    status, body, _ = await api.call("POST", "/assets", "alice", json={"file": "x"})
    assert status == 415
    _, listed, _ = await api.call("GET", "/assets", "bob")  # same workspace
    assert {a["asset_id"] for a in listed["assets"]} == {a["asset_id"] for a in made.values()}
    _, theirs, _ = await api.call("GET", "/assets", "eve")
    assert theirs["assets"] == []
    leftovers = [p.name for p in (api.daemon.settings.data_dir / "media").iterdir() if p.name.endswith(".part")]
    assert leftovers == []  # refused uploads leave nothing behind


async def test_requests_name_uploads_by_id_within_their_workspace_only(api):
    _, photo, _ = await upload(api, png_bytes((64, 80)))
    _, voice, _ = await upload(api, wav_bytes(0.4))
    _, clip, _ = await upload(api, mp4_bytes())
    video = await api.video("alice", narration_asset_id=voice["asset_id"], photo_asset_id=photo["asset_id"],
                            background={"type": "video", "asset_id": clip["asset_id"]})
    await wait_until(lambda: api.plugin.notifier.states(video["id"])[-1:] == ["completed"], timeout=8)
    request = api.plugin.renderer.requests[-1]
    assert request.narration.read_bytes() == wav_bytes(0.4)
    assert request.talking_photo.read_bytes() == png_bytes((64, 80))
    assert open(request.background.path, "rb").read() == mp4_bytes()
    # Another workspace cannot use them, and hears the same words as for an id that does not exist.
    body = {"script_title": "x", "script_content": "y", "narration_asset_id": voice["asset_id"]}
    status, theirs, _ = await api.call("POST", "/videos", "eve", json=body)
    nobody = "as_" + "0" * 24
    status2, missing, _ = await api.call("POST", "/videos", "eve", json={**body, "narration_asset_id": nobody})
    assert (status, theirs["field"]) == (status2, missing["field"]) == (422, "narration.asset_id")
    assert theirs["error"].replace(voice["asset_id"], "ID") == missing["error"].replace(nobody, "ID")
    status, wrong, _ = await api.call("POST", "/videos", "alice",
                                      json={**body, "narration_asset_id": photo["asset_id"]})
    assert status == 422 and "is image; narration needs audio" in wrong["error"]
    status, both, _ = await api.call("POST", "/videos", "alice", json={
        **body, "narration": {"asset_id": voice["asset_id"]}})
    assert status == 422 and "not both" in both["error"]


async def test_an_inbox_envelope_names_an_upload_of_its_workspace(api):
    _, voice, _ = await upload(api, wav_bytes(0.3))
    research = json.loads(fixture_bytes("research_job.json"))
    for name, workspace in (("other.json", "W2"), ("mine.json", "W1")):
        drop(api.daemon, name, json.dumps({"request": {"workspace": workspace, "narration": {
            "asset_id": voice["asset_id"]}}, "research": research}))
    failed = api.daemon.settings.inbox.path / "failed"
    await wait_until(lambda: list(failed.glob("other.json*")) and api.plugin.renderer.requests)
    assert api.plugin.renderer.requests[-1].narration.read_bytes() == wav_bytes(0.3)
    reason = "".join(p.read_text() for p in failed.iterdir() if p.name != "other.json")
    assert f"narration.asset_id: no asset {voice['asset_id']!r} in workspace W2" in reason
