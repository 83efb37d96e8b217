"""A request's own brand logo (`brand_logo`): an upload of the caller's workspace, drawn by the local
renderer in the brand corner, through HTTP, the inbox envelope and `render --logo`; refused where it
cannot be drawn or is not the caller's to use."""

import json
from pathlib import Path

import aiohttp
import av
import pytest
from PIL import Image

from avatar_daemon.testing import RecordingPlugin, drop, make_daemon, make_settings, running, wait_until
from tests.conftest import fixture_bytes
from tests.test_assets import upload
from tests.test_http_api import Api, users_yaml

MAGENTA = (255, 0, 255)
SQUARE = 1080  # the square format's side


def logo_png(tmp_path: Path) -> bytes:
    path = tmp_path / "logo.png"
    Image.new("RGBA", (240, 240), (*MAGENTA, 255)).save(path)
    return path.read_bytes()


def first_frame(video: str):
    with av.open(video) as box:
        return next(iter(box.decode(video=0))).to_ndarray(format="rgb24")


def has_logo(frame, x: int, y: int) -> bool:
    r, g, b = (int(v) for v in frame[y, x])
    return r > 200 and g < 70 and b > 200


@pytest.fixture
async def api(tmp_path):
    users_yaml(tmp_path)
    plugin = RecordingPlugin()
    settings = make_settings(tmp_path, users_file="users.yaml", default_formats=["square"],
                             plugins={"settings": {"local": {"preset": "ultrafast"}}})
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=settings)
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        yield Api(http, daemon, plugin)


async def _finished(api: Api, video_id: int):
    await wait_until(lambda: api.plugin.notifier.states(video_id)[-1:] in (["completed"], ["failed"]), timeout=90)
    job = await api.daemon.store.job(video_id)
    assert job.status.value == "completed", job.error
    return job


async def test_an_uploaded_logo_is_drawn_in_the_brand_corner(api, tmp_path):
    _, logo, _ = await upload(api, logo_png(tmp_path), name="logo.png")
    assert logo["kind"] == "image"
    video = await api.video("alice", renderer="local", format="square", script_content="Our own logo.",
                            brand_logo_asset_id=logo["asset_id"])
    job = await _finished(api, video["id"])
    frame = first_frame(job.result["video"])
    # the default brand corner is top-right; the opposite corner has none
    assert has_logo(frame, SQUARE - 80, 80), frame[80, SQUARE - 80]
    assert not has_logo(frame, 80, SQUARE - 80)


async def test_an_envelope_and_a_research_request_carry_the_logo(api, tmp_path):
    _, logo, _ = await upload(api, logo_png(tmp_path), name="logo.png")
    research = json.loads(fixture_bytes("research_job.json"))
    drop(api.daemon, "branded.json", json.dumps({"request": {
        "workspace": "W1", "renderer": "local", "formats": ["square"], "brand_logo": {"asset_id": logo["asset_id"]}},
        "research": research}))
    await wait_until(lambda: api.plugin.notifier.events, timeout=20)
    queued = api.plugin.notifier.events[0].job_id
    job = await _finished(api, queued)
    assert has_logo(first_frame(job.result["video"]), SQUARE - 80, 80)
    # POST /videos/from-research with a stored research job: the same field, kept on the job for the render
    status, made, _ = await api.call("POST", "/videos/from-research", "alice", json={
        "research_job_id": job.research_job_id, "renderer": "local", "format": "square",
        "brand_logo_asset_id": logo["asset_id"]})
    assert status == 201, made
    again = await api.daemon.store.job(made["videos"][0]["id"])
    assert again.request["media"]["brand_logo"] == {"cached": api.daemon.media.uploads.usable(
        logo["asset_id"], "W1").file}


async def test_another_workspaces_logo_and_a_renderer_that_cannot_draw_one_are_refused(api, tmp_path):
    _, logo, _ = await upload(api, logo_png(tmp_path), name="logo.png")  # alice's, in W1
    body = {"script_title": "x", "script_content": "y", "renderer": "local", "brand_logo_asset_id": logo["asset_id"]}
    status, theirs, _ = await api.call("POST", "/videos", "eve", json=body)  # eve is in W2
    assert (status, theirs["field"]) == (422, "brand_logo.asset_id"), theirs
    assert f"no asset {logo['asset_id']!r} in workspace W2" in theirs["error"]
    _, voice_like, _ = await upload(api, fixture_bytes("research_job.json"), name="x.json")
    assert "not" in voice_like["error"]  # not media at all: refused at upload
    status, refused, _ = await api.call("POST", "/videos", "alice", json={**body, "renderer": "fake"})
    assert (status, refused["field"]) == (422, "brand_logo"), refused
    assert "renderer 'fake' cannot put a logo on its videos" in refused["error"] and "'local'" in refused["error"]
    status, research, _ = await api.call("POST", "/videos/from-research", "eve", json={
        "research": json.loads(fixture_bytes("research_job.json")), "renderer": "local",
        "brand_logo_asset_id": logo["asset_id"]})
    assert (status, research["field"]) == (422, "brand_logo.asset_id"), research
    assert await api.daemon.store.jobs_page(None) == []  # nothing was queued for any of them


def test_render_logo_draws_the_file_and_heygen_refuses_one(tmp_path):
    from tests.test_render_uploads import _render

    (tmp_path / "logo.png").write_bytes(logo_png(tmp_path))
    refused = _render(tmp_path, "--logo", str(tmp_path / "logo.png"), "--renderer", "heygen", "--dry-run")
    assert refused.returncode == 1 and "renderer 'heygen' cannot put a logo on its videos" in refused.stderr, \
        refused.stderr
    out = _render(tmp_path, "--logo", str(tmp_path / "logo.png"))
    assert out.returncode == 0, out.stderr
    frame = first_frame(out.stdout.strip().splitlines()[-1])
    assert has_logo(frame, frame.shape[1] - 60, 60), frame[60, frame.shape[1] - 60]
