"""Media by URL and by path: the one resolver every interface uses, against a real server on loopback.

With the default rules (https, public addresses only) the loopback server is itself out of
reach, which is how the refusals are tested; success needs the test-only allowance.
"""

import hashlib
import ipaddress
import json
import os

import pytest

from avatar_daemon.errors import InvalidRequest
from avatar_daemon.media import MediaResolver, Refused, address_allowed
from avatar_daemon.models import Background, Brand, VideoTemplate
from avatar_daemon.testing import FakeRenderer, RecordingPlugin, drop, make_daemon, make_settings, running, wait_until
from tests.conftest import fixture_bytes
from tests.media_server import MediaServer, png_bytes

LOOPBACK = {"schemes": ["http", "https"], "allow_networks": ["127.0.0.1/32"]}


@pytest.fixture
async def server():
    async with MediaServer().serve() as s:
        yield s


def resolver(tmp_path, **media) -> MediaResolver:
    return MediaResolver(make_settings(tmp_path, media=media))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fe80::1",
    "fd00:ec2::254", "100.100.100.200", "224.0.0.1", "ff02::1", "0.0.0.0", "::", "::ffff:127.0.0.1",
    "::ffff:169.254.169.254", "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "255.255.255.255",
])
def test_only_public_unicast_addresses_are_allowed(address):
    assert not address_allowed(ipaddress.ip_address(address), [])


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert address_allowed(ipaddress.ip_address(address), [])


def test_an_allowed_network_opens_only_itself():
    allow = [ipaddress.ip_network("127.0.0.1/32")]
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), allow)
    assert not address_allowed(ipaddress.ip_address("127.0.0.2"), allow)
    assert not address_allowed(ipaddress.ip_address("::1"), allow)


@pytest.mark.parametrize("url, words", [
    ("http://{host}/bg.png", "only https URLs are fetched, not http"),
    ("https://127.0.0.1:{port}/bg.png", "127.0.0.1 is not a public address"),
    ("https://localhost:{port}/bg.png", "localhost resolves to "),
    ("https://10.0.0.7/bg.png", "10.0.0.7 is not a public address"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address"),
    ("https://[fe80::1]/bg.png", "is not a public address"),
    ("https://[::ffff:127.0.0.1]:{port}/bg.png", "is not a public address"),
    ("https://224.0.0.1/bg.png", "224.0.0.1 is not a public address"),
    ("https://user:secret@example.com/bg.png", "user name or password"),
    ("file:///etc/passwd", "not file"),
    ("https:///bg.png", "names no host"),
])
async def test_the_default_rules_refuse_before_connecting(tmp_path, server, url, words):
    url = url.format(host=f"{server.host}:{server.port}", port=server.port)
    with pytest.raises(Refused, match=words) as err:
        await resolver(tmp_path).fetch(url, "image")
    assert server.hits == []  # refused before any connection
    assert "secret" not in str(err.value)


async def test_a_fetched_image_is_cached_by_content_hash(tmp_path, server):
    media = resolver(tmp_path, **LOOPBACK)
    name = await media.fetch(server.url("/bg.png"), "image")
    body = server.files["/bg.png"][0]
    assert name == hashlib.sha256(body).hexdigest() + ".png"
    assert (media.cache / name).read_bytes() == body
    assert await media.fetch(server.url("/redirect/2/bg.png"), "image") == name  # same bytes, same file
    assert [p.name for p in media.cache.iterdir()] == [name]  # no partial file left behind


async def test_video_and_audio_are_probed_as_what_they_claim(tmp_path, server):
    media = resolver(tmp_path, **LOOPBACK)
    assert (await media.fetch(server.url("/clip.mp4"), "video")).endswith(".mp4")
    assert (await media.fetch(server.url("/voice.wav"), "audio")).endswith(".wav")
    with pytest.raises(Refused, match="not an MP4, MOV or Matroska video"):
        await media.fetch(server.url("/playlist.mp4"), "video")  # an HLS playlist would open other files
    with pytest.raises(Refused, match="the file has no audio stream"):
        await media.fetch(server.url("/clip.mp4"), "audio")  # a silent video is no narration
    with pytest.raises(Refused, match="not .*audio"):
        await media.fetch(server.url("/bg.png"), "audio")
    assert not list(media.cache.glob("*.part")) and not list(media.cache.glob(".*"))


@pytest.mark.parametrize("path, words", [
    ("/not-an-image.png", "the bytes are not a PNG, JPEG, WEBP, GIF, BMP image"),
    ("/missing.png", "answered HTTP 404"),
    ("/redirect/4/bg.png", "more than 3 redirects"),
    ("/to?url=http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not a public address"),
    ("/to?url=http://10.0.0.1/bg.png", "10.0.0.1 is not a public address"),
    ("/to?url=file:///etc/passwd", "not file"),
    ("/big", "1,000,000,000,000 bytes; the limit is 100,000"),
    ("/stream/200000", "over the 100,000-byte limit"),
    ("/stall", "took longer than 0.5 s"),
])
async def test_what_the_allowance_still_refuses(tmp_path, server, path, words):
    media = resolver(tmp_path, **LOOPBACK, max_bytes=100_000, timeout_seconds=0.5)
    with pytest.raises(Refused, match=words):
        await media.fetch(server.url(path), "image")
    assert not media.cache.exists() or not any(media.cache.iterdir())


async def test_three_redirects_are_followed(tmp_path, server):
    media = resolver(tmp_path, **LOOPBACK)
    assert (await media.fetch(server.url("/redirect/3/bg.png"), "image")).endswith(".png")


async def test_every_redirect_is_resolved_and_checked_again(tmp_path):
    """The first host is allowed; the redirect names a host whose DNS answer is loopback, which is not."""
    async with MediaServer(host="127.0.0.2").serve() as other:
        media = resolver(tmp_path, schemes=["http"], allow_networks=["127.0.0.2/32"])
        assert (await media.fetch(other.url("/bg.png"), "image")).endswith(".png")
        with pytest.raises(Refused, match="localhost resolves to .* not a public address"):
            await media.fetch(other.url(f"/to?url=http://localhost:{other.port}/bg.png"), "image")


async def test_images_over_the_pixel_limit_are_refused(tmp_path, server):
    server.files["/huge.png"] = (png_bytes((400, 300)), "image/png")
    with pytest.raises(Refused, match="400x300 pixels; the limit is 100,000"):
        await resolver(tmp_path, **LOOPBACK, max_pixels=100_000).fetch(server.url("/huge.png"), "image")


async def test_remote_callers_name_no_server_file(tmp_path):
    media = resolver(tmp_path)
    existing = tmp_path / "daemon.yaml"
    answers = set()
    for path in (str(existing), str(tmp_path / "nothing-here.png"), "assets/x.png"):
        with pytest.raises(InvalidRequest) as err:
            await media.settle({"background": {"type": "image", "path": path}}, remote=True)
        assert err.value.field == "background.path"
        answers.add(str(err.value))
    assert answers == {"background.path: a remote caller cannot name a file on the server; give an https url "
                       "instead"}  # one answer, whether or not the file exists
    with pytest.raises(InvalidRequest, match="narration.path: a remote caller"):
        await media.settle({"narration": {"path": str(existing)}}, remote=True)


async def test_local_callers_name_files_only_in_the_assets_folder_or_the_inbox(tmp_path):
    settings = make_settings(tmp_path)
    media = MediaResolver(settings)
    settings.assets_dir.mkdir()
    (settings.assets_dir / "studio.png").write_bytes(png_bytes())
    (tmp_path / "outside.png").write_bytes(png_bytes())
    os.symlink(tmp_path / "outside.png", settings.assets_dir / "sneaky.png")
    settled = await media.settle({"background": {"type": "image", "path": "studio.png"}}, remote=False)
    assert settled["media"] == {"background": {"local": str(settings.assets_dir / "studio.png")}}
    refusals = set()
    for path in (str(tmp_path / "outside.png"), str(tmp_path / "absent.png"), "sneaky.png", "../outside.png",
                 "/etc/passwd"):
        with pytest.raises(InvalidRequest) as err:
            await media.settle({"background": {"type": "image", "path": path}}, remote=False)
        refusals.add(str(err.value))
    assert len(refusals) == 1 and "must be a file inside the assets folder" in refusals.pop()
    (settings.assets_dir / "notes.png").write_text("not an image")
    with pytest.raises(InvalidRequest, match="background.path: the bytes are not a PNG"):
        await media.settle({"background": {"type": "image", "path": "notes.png"}}, remote=False)


async def test_renders_get_local_files_only(tmp_path, server):
    settings = make_settings(tmp_path, media=LOOPBACK)
    media = MediaResolver(settings)
    settled = await media.settle({"background": {"type": "image", "url": server.url("/bg.png")},
                                  "narration": {"url": server.url("/voice.wav")}}, remote=True)
    hits = len(server.hits)
    fields = media.for_render(settled, None)
    assert fields["background"].url is None
    assert open(fields["background"].path, "rb").read() == server.files["/bg.png"][0]
    assert fields["narration"].read_bytes() == server.files["/voice.wav"][0]
    assert fields["talking_photo"] is None and len(server.hits) == hits  # nothing fetched for the render
    # A template's files are checked by the same rule when the job is rendered.
    template = VideoTemplate(id="t", name="T", format="tiktok", background=Background(type="image", path="/etc/hosts"),
                             brand=Brand(logo="logo.png"))
    with pytest.raises(InvalidRequest, match="template t: background.path: local media must be a file inside"):
        media.for_render({}, template)


def test_templates_name_files_not_urls():
    with pytest.raises(ValueError, match="a path in the assets folder, not a url"):
        VideoTemplate(id="t", name="T", format="tiktok", background={"type": "image", "url": "https://x.test/a.png"})


async def test_a_video_over_the_pixel_limit_is_refused_before_decoding(tmp_path, server):
    with pytest.raises(Refused, match="the video is 32x32 pixels; the limit is 1,000 pixels"):
        await resolver(tmp_path, **LOOPBACK, max_pixels=1000).fetch(server.url("/clip.mp4"), "video")


async def test_inbox_files_may_name_assets_and_nothing_else(tmp_path):
    plugin = RecordingPlugin(FakeRenderer())
    daemon = make_daemon(tmp_path, plugins=[plugin])
    assets = daemon.settings.assets_dir
    assets.mkdir()
    (assets / "studio.png").write_bytes(png_bytes())
    research = json.loads(fixture_bytes("hn_algolia.json"))
    async with running(daemon):
        drop(daemon, "good.json", json.dumps({"research": research, "request": {
            "background": {"type": "image", "path": "studio.png"}}}))
        drop(daemon, "bad.json", json.dumps({"research": research, "request": {
            "background": {"type": "image", "path": str(tmp_path / "daemon.yaml")}}}))
        await wait_until(lambda: daemon.inbox.stats.processed + daemon.inbox.stats.failed == 2)
        await wait_until(lambda: plugin.renderer.requests)
    assert plugin.renderer.requests[0].background.path == str(assets / "studio.png")
    reason = (daemon.inbox.failed / "bad.json.error.txt").read_text()
    assert "background.path: local media must be a file inside the assets folder" in reason
