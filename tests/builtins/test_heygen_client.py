"""The HeyGen client, planner and media helpers against the fake HeyGen on loopback.

aioresponses 0.7.9 cannot patch aiohttp 3.14 (it builds ClientResponse without the new
`stream_writer` argument: pnuckowski/aioresponses#289, open), and aiohttp 3.14 is a
security release we will not pin below. So these tests speak real HTTP to
tests/fake_heygen.py instead: the same wire format, one layer more real.
"""

import asyncio
import re
import time

import aiohttp
import aiohttp.web
import av
import pytest

from avatar_daemon import Background, RenderError, RenderRequest, Script
from avatar_daemon.settings import load_settings
from avatar_daemon.testing import wait_until
from avatar_daemon_plugins.heygen import media
from avatar_daemon_plugins.heygen.answers import HeyGenError
from avatar_daemon_plugins.heygen.client import HeyGenClient, LinkExpired, until
from avatar_daemon_plugins.heygen.plan import make_plan, resolution, split_script
from avatar_daemon_plugins.heygen.settings import HeyGenSettings
from tests.fake_heygen import API_KEY, FakeHeyGen, make_mp4


@pytest.fixture
async def fake(tmp_path):
    server = FakeHeyGen(tmp_path, render_seconds=0.1)
    server.looks = {"look1": {"id": "look1", "name": "Abigail", "preview_image_url": "https://img/1.jpg",
                              "preview_video_url": "https://img/1.mp4", "avatar_type": "studio_avatar"}}
    server.voices = [{"voice_id": f"v{i}", "name": f"Voice {i}", "type": "public"} for i in range(130)]
    async with server.serve():
        yield server


@pytest.fixture
async def client(fake):
    async with aiohttp.ClientSession() as session:
        yield HeyGenClient(session, API_KEY, fake.url, fake.url, backoff=0.01, retry_after_cap=1.0)


async def test_every_endpoint_round_trips(client, fake, tmp_path):
    fake.hold = asyncio.Event()  # unfinished until we say so: a loaded machine cannot finish it early
    created = await client.create_video({"avatar_id": "look1", "voice_id": "v1", "script": "Hello.",
                                         "aspect_ratio": "9:16"}, "key-1")
    assert created.status == "waiting" and len(created.video_id) == 32
    video = await client.get_video(created.video_id)
    assert video.status in ("pending", "waiting", "processing") and video.video_url is None
    fake.hold.set()
    await wait_until(lambda: fake.videos[created.video_id].status == "completed", timeout=30)
    video = await client.get_video(created.video_id)
    assert video.status == "completed" and video.video_url and video.subtitle_url and video.duration == 2.0
    assert [v["id"] async for v in client.list_videos(limit=1)] == [created.video_id]
    with pytest.raises(HeyGenError) as err:
        await client.get_video("no-such-video")
    assert err.value.status == 404 and err.value.code == "not_found"

    look = await client.avatar_look("look1")
    assert look.preview_image_url == "https://img/1.jpg"
    assert len(await client.voices()) == 130  # paged: 100 + 30
    assert (await client.quota()).credits == 600

    bg = tmp_path / "bg.png"
    bg.write_bytes(b"\x89PNG fake")
    asset = await client.upload_asset(bg)
    assert asset.url and fake.uploads == [b"\x89PNG fake"]

    studio = await client.studio_generate({"video_inputs": [{"voice": {"input_text": "Hi"}}],
                                           "dimension": {"width": 1080, "height": 1080}})
    assert studio.video_id in fake.videos
    assert (await client.generate_from_template("tpl1", {"variables": {}})).video_id in fake.videos

    async def options(request):
        return aiohttp.web.Response()

    receiver = aiohttp.web.Application()
    receiver.router.add_route("OPTIONS", "/hook", options)
    runner = aiohttp.web.AppRunner(receiver)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"
    try:
        endpoint = await client.create_webhook(url)
        assert endpoint.secret.startswith("whsec_") and endpoint.secret not in repr(endpoint)
        assert [e.url for e in await client.webhooks()] == [url]
        rotated = await client.rotate_webhook_secret(endpoint.endpoint_id)
        assert rotated.secret != endpoint.secret
    finally:
        await runner.cleanup()


async def test_a_create_waits_for_a_free_render_and_gives_up_at_the_deadline(fake):
    fake.hold = asyncio.Event()
    body = {"avatar_id": "look1", "voice_id": "v1", "script": "One at a time.", "aspect_ratio": "9:16"}
    async with aiohttp.ClientSession() as session:
        client = HeyGenClient(session, API_KEY, fake.url, fake.url, backoff=0.01, max_renders=1)
        first = await client.create_video(body, "slot-1")
        with until(time.monotonic() + 0.3), pytest.raises(TimeoutError, match="account_concurrency"):
            await client.create_video(body, "slot-2")
        assert fake.calls["create_video"] == 1  # the wait cost no call
        second = asyncio.create_task(client.create_video(body, "slot-3"))
        await asyncio.sleep(0.1)
        assert not second.done()
        fake.hold.set()
        await wait_until(lambda: fake.videos[first.video_id].status == "completed", timeout=30)
        await client.get_video(first.video_id)  # the look that finds it finished frees its render
        assert (await asyncio.wait_for(second, 30)).video_id != first.video_id
    assert fake.calls["create_video"] == 2 and client.calls["create_video", "429"] == 0


async def test_idempotency_key_replays_the_first_video(client, fake):
    body = {"avatar_id": "look1", "voice_id": "v1", "script": "Once.", "aspect_ratio": "16:9"}
    first = await client.create_video(body, "job-7")
    again = await client.create_video(body, "job-7")
    assert first.video_id == again.video_id and len(fake.videos) == 1


@pytest.mark.parametrize("status, body, code, message", [
    (402, {"error": {"code": "insufficient_credit", "message": "Not enough credits", "param": None}},
     "insufficient_credit", "Not enough credits"),
    (401, {"code": 400599, "message": "Your account doesn't have API access"}, "400599", "API access"),
    (400, {"error": {"code": "internal_error", "message": "This avatar does not support unlimited mode."},
           "data": None}, "internal_error", "unlimited mode"),
    (400, {"error": "input_text exceeds 1500 characters", "data": None}, "http_400", "1500 characters"),
])
async def test_error_envelopes_fail_at_once_with_heygens_code(client, fake, status, body, code, message):
    fake.fail_next.append(("create_video", status, body))
    with pytest.raises(HeyGenError) as err:
        await client.create_video({"avatar_id": "look1", "voice_id": "v1", "script": "x", "aspect_ratio": "9:16"},
                                  "k")
    assert err.value.code == code and message in str(err.value) and f"HTTP {status}" in str(err.value)
    assert fake.calls["create_video"] == 1  # a 4xx is never retried
    assert API_KEY not in str(err.value) and API_KEY not in repr(client)


async def test_429_honours_retry_after_and_holds_every_caller(client, fake):
    fake.retry_after = 0.3
    fake.fail_next.append(("get_video", 429, {"error": {"code": "rate_limited", "message": "slow down"}}))
    created = await client.create_video({"avatar_id": "look1", "voice_id": "v", "script": "x",
                                         "aspect_ratio": "9:16"}, "k2")
    start = time.monotonic()
    await asyncio.gather(client.get_video(created.video_id), client.quota())
    assert time.monotonic() - start >= 0.28
    assert client.calls["get_video", "429"] == 1 and client.calls["get_video", "ok"] == 1


@pytest.mark.parametrize("code", ["concurrent_limit_exceeded", "rate_limit_exceeded"])
async def test_a_long_429_run_is_waited_out_until_the_jobs_deadline(client, fake, code):
    """More refusals in a row than `retries` allows: within a job's deadline the create still goes through."""
    fake.retry_after = 0.05
    client.retries = 1  # fewer tries than the refusals below, and a short test
    refusal = {"error": {"code": code, "message": "Too many"}}
    body = {"avatar_id": "look1", "voice_id": "v", "script": "x", "aspect_ratio": "9:16"}
    fake.fail_next += [("create_video", 429, refusal)] * (client.retries + 4)
    with until(time.monotonic() + 60):
        created = await client.create_video(body, "storm-1")
    assert created.video_id in fake.videos and client.calls["create_video", "429"] == client.retries + 4
    times = fake.call_times["create_video"]
    assert len(times) == client.retries + 5
    assert all(b - a >= 0.05 for a, b in zip(times, times[1:]))  # never sooner than Retry-After

    fake.fail_next += [("create_video", 429, refusal)] * (client.retries + 1)
    with pytest.raises(HeyGenError):  # outside a job (no deadline), the usual number of tries
        await client.create_video(body, "storm-2")
    assert not fake.fail_next


async def test_429s_past_the_deadline_end_in_a_timeout_and_other_429s_stay_bounded(client, fake):
    fake.retry_after = 0.05
    client.retries = 1
    fake.storm, fake.storm_endpoints = 1.0, {"create_video"}
    body = {"avatar_id": "look1", "voice_id": "v", "script": "x", "aspect_ratio": "9:16"}
    with until(time.monotonic() + 1.0), pytest.raises(TimeoutError, match="until the job's deadline"):
        await client.create_video(body, "storm-3")
    assert fake.calls["create_video"] > client.retries + 1 and not fake.videos
    fake.storm = 0
    quota = {"error": {"code": "quota_exceeded", "message": "Usage quota exceeded"}}
    fake.fail_next += [("create_video", 429, quota)] * (client.retries + 1)
    with until(time.monotonic() + 60), pytest.raises(HeyGenError, match="quota_exceeded"):
        await client.create_video(body, "storm-4")  # a used-up quota does not pass with time


async def test_5xx_retried_for_reads_and_idempotent_creates_only(client, fake):
    body = {"avatar_id": "look1", "voice_id": "v", "script": "x", "aspect_ratio": "9:16"}
    fake.fail_next.append(("create_video", 503, {"error": {"code": "unavailable", "message": "try later"}}))
    assert (await client.create_video(body, "k3")).video_id
    assert fake.calls["create_video"] == 2
    fake.fail_next.append(("studio_generate", 500, {"error": {"code": "internal", "message": "boom"}}))
    with pytest.raises(HeyGenError):  # v2 has no idempotency: a repeat could make a second paid video
        await client.studio_generate({"video_inputs": [{"voice": {"input_text": "x"}}]})
    assert fake.calls["studio_generate"] == 1
    fake.fail_next.append(("get_video", 502, "<html>bad gateway</html>"))
    assert (await client.get_video((await client.create_video(body, "k4")).video_id)).video_id


async def test_bad_key_is_named_and_not_leaked(fake):
    async with aiohttp.ClientSession() as session:
        client = HeyGenClient(session, "wrong-key-abcdef", fake.url)
        with pytest.raises(HeyGenError) as err:
            await client.quota()
    assert err.value.status == 401 and "Invalid API key" in str(err.value) and "wrong-key" not in str(err.value)


async def test_download_streams_with_cap_and_detects_expired_links(client, fake, tmp_path):
    created = await client.create_video({"avatar_id": "look1", "voice_id": "v", "script": "x",
                                         "aspect_ratio": "9:16"}, "k5")
    await asyncio.sleep(0.2)
    video = await client.get_video(created.video_id)
    dest = tmp_path / "v.mp4"
    size = await client.download(video.video_url, dest, 10_000_000)
    assert size == dest.stat().st_size > 0 and media.probe(dest) > 1.5
    with pytest.raises(HeyGenError, match="cap"):
        await client.download(video.video_url, tmp_path / "small.mp4", 100)
    assert not (tmp_path / "small.mp4").exists() and not list(tmp_path.glob("*.part"))
    with pytest.raises(LinkExpired):
        stale = re.sub(r"Expires=[0-9.]+", "Expires=1000.0", video.video_url)
        await client.download(stale, tmp_path / "old.mp4", 10_000_000)


# ---- planning: no network ---------------------------------------------------------------


def test_split_script_keeps_every_word_and_cuts_between_sentences():
    text = " ".join(f"Sentence number {i} says something useful." for i in range(60))
    chunks = split_script(text, 200)
    assert all(len(c) <= 200 for c in chunks) and len(chunks) > 5
    assert " ".join(chunks).split() == text.split()
    assert all(c.endswith(".") for c in chunks)
    giant = "word " * 300
    assert " ".join(split_script(giant.strip(), 100)).split() == giant.split()


def test_resolution_follows_format_within_plan_ceiling():
    assert resolution(1080, 1920, "1080p") == "1080p"
    assert resolution(720, 1280, "1080p") == "720p"
    assert resolution(2160, 3840, "1080p") == "1080p"


def _request(tmp_path, fmt="tiktok", text="Hello there. This is a test.", **kw):
    settings = load_settings(None, environ={})
    from avatar_daemon_plugins.formats import FORMATS
    formats = {f.name: f for f in FORMATS}
    avatar = settings.avatars["sarah"]
    return RenderRequest(job_id=42, script=Script(title="T", text=text, estimated_seconds=3), avatar=avatar,
                         format=formats[fmt], output_dir=tmp_path, **kw)


def test_plan_v3_body_from_request(tmp_path):
    plan = make_plan(_request(tmp_path, voice_speed=1.2), HeyGenSettings(), "abc", lambda p: p)
    (part,) = plan.parts
    assert part.path == "/v3/videos" and part.key == "avatar-daemon.abc.job-42"
    retried = make_plan(_request(tmp_path, retry=2), HeyGenSettings(), "abc", lambda p: p)
    assert retried.parts[0].key == retried.parts[0].body["callback_id"] == "avatar-daemon.abc.job-42.retry-2"
    body = part.body
    assert body["aspect_ratio"] == "9:16" and body["resolution"] == "1080p"
    assert body["voice_settings"]["speed"] == 1.2 and body["callback_id"] == part.key
    assert body["caption"] == {"file_format": "srt", "style": "default"} and "callback_url" not in body


def test_plan_square_crops_a_landscape_render_or_uses_studio(tmp_path):
    plan = make_plan(_request(tmp_path, "square"), HeyGenSettings(), "abc", lambda p: p)
    assert plan.square == "crop" and plan.parts[0].body["aspect_ratio"] == "16:9"
    studio = make_plan(_request(tmp_path, "square"), HeyGenSettings(square="studio"), "abc", lambda p: p)
    assert studio.api == "studio" and studio.parts[0].body["dimension"] == {"width": 1080, "height": 1080}


def test_plan_long_script_becomes_parts_or_scenes(tmp_path):
    text = " ".join(f"Point {i} matters a great deal to everyone." for i in range(40))
    plan = make_plan(_request(tmp_path, text=text), HeyGenSettings(text_limit=300), "abc", lambda p: p)
    assert len(plan.parts) > 1 and len({p.key for p in plan.parts}) == len(plan.parts)
    assert " ".join(p.body["script"] for p in plan.parts).split() == text.split()
    scenes = make_plan(_request(tmp_path, text=text), HeyGenSettings(text_limit=300, long_scripts="studio"),
                       "abc", lambda p: p)
    assert len(scenes.parts) == 1 and len(scenes.parts[0].body["video_inputs"]) == len(plan.parts)


def test_plan_refuses_what_heygen_documents_it_would_refuse(tmp_path):
    from avatar_daemon import FormatSpec
    huge = FormatSpec(name="wall", label="Video wall", width=4096, height=4096, caption_style="none")
    request = _request(tmp_path).model_copy(update={"format": huge})
    with pytest.raises(RenderError, match="HeyGen cannot take this video: width: Input should be less than 4096"):
        make_plan(request, HeyGenSettings(square="studio"), "abc", lambda p: p)
    text = " ".join(f"Scene {i} has its own sentence here, long enough to need a scene." for i in range(60))
    with pytest.raises(RenderError, match="needs 60 Studio scenes; HeyGen allows 50"):
        make_plan(_request(tmp_path, text=text), HeyGenSettings(text_limit=100, long_scripts="studio"), "abc",
                  lambda p: p)


def test_plan_refuses_a_profile_without_heygen_ids(tmp_path):
    request = _request(tmp_path)
    request.avatar = request.avatar.model_copy(update={"renderer_ids": {}})
    with pytest.raises(RenderError, match="'sarah' has no HeyGen renderer_ids.heygen"):
        make_plan(request, HeyGenSettings(), "abc", lambda p: p)


def test_plan_uploads_local_background_files(tmp_path):
    request = _request(tmp_path, background=Background(type="image", path=str(tmp_path / "bg.png")))
    plan = make_plan(request, HeyGenSettings(), "abc", lambda p: "https://assets/bg")
    assert plan.parts[0].body["background"] == {"type": "image", "url": "https://assets/bg"}


# ---- media -----------------------------------------------------------------------------


def test_square_crop_and_pad_make_square_videos_with_audio(tmp_path):
    src = make_mp4(tmp_path / "in.mp4", 320, 180, seconds=1.0)
    for mode in ("crop", "pad"):
        out = tmp_path / f"{mode}.mp4"
        media.square(src, out, 160, mode)
        with av.open(str(out)) as box:
            v = box.streams.video[0]
            assert (v.codec_context.width, v.codec_context.height) == (160, 160)
            assert box.streams.audio and box.duration / av.time_base == pytest.approx(1.0, abs=0.15)


def test_concat_joins_without_reencoding_and_shifts_subtitles(tmp_path):
    a = make_mp4(tmp_path / "a.mp4", 320, 180, seconds=1.0)
    b = make_mp4(tmp_path / "b.mp4", 320, 180, seconds=1.0)
    starts = media.concat([a, b], tmp_path / "ab.mp4")
    assert starts[0] == 0 and starts[1] == pytest.approx(1.0, abs=0.1)
    assert media.probe(tmp_path / "ab.mp4") == pytest.approx(2.0, abs=0.15)
    srt = media.join_srt(["1\n00:00:00,000 --> 00:00:00,900\nfirst\n", "1\n00:00:00,100 --> 00:00:00,800\nsecond\n"],
                         [0.0, 1.0])
    assert "2\n00:00:01,100 --> 00:00:01,800\nsecond" in srt
    assert media.srt_to_vtt(srt).startswith("WEBVTT\n\n1\n00:00:00.000 --> 00:00:00.900")
    c = make_mp4(tmp_path / "c.mp4", 180, 320, seconds=0.5)
    with pytest.raises(RenderError, match="encoded differently"):
        media.concat([a, c], tmp_path / "ac.mp4")


def test_subtitles_join_and_convert_with_windows_line_ends_and_two_line_cues():
    first = "1\r\n00:00:00,000 --> 00:00:01,500\r\nline one\r\nline two\r\n\r\n"
    second = "7\n00:00:00,250 --> 00:00:00,750\nafter\n"
    joined = media.join_srt([first, second], [0.0, 2.0])
    assert joined == ("1\n00:00:00,000 --> 00:00:01,500\nline one\nline two\n\n"
                      "2\n00:00:02,250 --> 00:00:02,750\nafter\n\n")
    assert media.srt_to_vtt(joined) == ("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.500\nline one\nline two\n\n"
                                        "2\n00:00:02.250 --> 00:00:02.750\nafter\n")


def test_probe_names_a_broken_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"<html>not a video</html>")
    with pytest.raises(RenderError, match="bad.mp4 from HeyGen is not a playable MP4"):
        media.probe(bad)
