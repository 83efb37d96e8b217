"""Share links over real HTTP: signed, expiring, playable without a token, with Range."""

from datetime import timedelta

import aiohttp

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.test_browser_access import START, Clock
from tests.test_http_api import TOKENS, Api, users_yaml


async def test_a_share_link_plays_without_a_token_until_it_expires(tmp_path):
    users_yaml(tmp_path)
    clock = Clock()
    plugin = RecordingPlugin(FakeRenderer())
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=make_settings(tmp_path, users_file="users.yaml"),
                         clock=clock)
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        api = Api(http, daemon, plugin)
        video = await api.video("alice")
        await wait_until(lambda: plugin.notifier.states(video["id"])[-1:] == ["completed"])
        assert (await api.call("POST", f"/videos/{video['id']}/share", "eve", json={}))[0] == 403
        status, shared, _ = await api.call("POST", f"/videos/{video['id']}/share", "alice",
                                           json={"expires_in_hours": 2})
        assert status == 201 and shared["url"].startswith("/shared/")
        assert shared["expires_at"].startswith((START + timedelta(hours=2)).isoformat()[:16])
        assert TOKENS["alice"] not in shared["url"]
        status, body, headers = await api.call("GET", shared["url"], None)
        file = (await daemon.store.job(video["id"])).result["video"]
        assert status == 200 and headers["Content-Type"] == "video/mp4" and body == open(file, "rb").read()
        status, part, headers = await api.call("GET", shared["url"], None, headers={"Range": "bytes=2-5"})
        assert status == 206 and part == body[2:6]
        status, page, headers = await api.call("GET", shared["url"] + "/page", None)
        assert status == 200 and f'src="{shared["url"]}"' in page.decode() and "Hello" in page.decode()
        # A stretched expiry or another video's id fails the signature.
        vid, until, sig = shared["url"].removeprefix("/shared/").split(".")
        for forged in (f"{vid}.{int(until) + 3600}.{sig}", f"{int(vid) + 1}.{until}.{sig}", "nonsense"):
            status, data, _ = await api.call("GET", f"/shared/{forged}", None)
            assert status == 404 and "not valid" in data["error"], forged
        _, counts, _ = await api.call("GET", f"/videos/{video['id']}/analytics", "alice")
        assert (counts["shares"], counts["views"]) == (1, 1)  # the full GET; neither the Range nor the page
        clock.now = START + timedelta(hours=2, seconds=1)
        status, data, _ = await api.call("GET", shared["url"], None)
        assert status == 410 and "expired" in data["error"]
        # Nothing to share before the video is finished.
        plugin.renderer.seconds = 30
        queued = await api.video("alice")
        status, data, _ = await api.call("POST", f"/videos/{queued['id']}/share", "alice", json={})
        assert status == 409 and "no file to share yet" in data["error"]
        status, data, _ = await api.call("POST", f"/videos/{queued['id']}/cancel", "alice")
        assert status == 200 and data["status"] == "cancelled"


async def test_a_players_range_requests_count_one_view_and_only_a_download_counts_a_download(tmp_path):
    users_yaml(tmp_path)
    clock = Clock()
    plugin = RecordingPlugin(FakeRenderer())
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=make_settings(tmp_path, users_file="users.yaml"),
                         clock=clock)
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        api = Api(http, daemon, plugin)
        video = await api.video("alice", script_content="A video long enough to be fetched in parts. " * 4)
        await wait_until(lambda: plugin.notifier.states(video["id"])[-1:] == ["completed"])
        whole = open((await daemon.store.job(video["id"])).result["video"], "rb").read()
        _, shared, _ = await api.call("POST", f"/videos/{video['id']}/share", "alice", json={})

        async def counts():
            _, c, _ = await api.call("GET", f"/videos/{video['id']}/analytics", "alice")
            return {p["key"]: {k: p.get(k, 0) for k in ("view", "download")} for p in c["by_platform"]}

        for path, who, platform in ((f"/videos/{video['id']}/download", "alice", "api"),
                                    (shared["url"], None, "link")):
            # a player: bytes=0- to start, a seek, bytes=0- again after the metadata: one play
            for ranged in ("bytes=0-", "bytes=40-", "bytes=0-"):
                status, part, headers = await api.call("GET", path, who, headers={"Range": ranged})
                assert status == 206 and part == whole[int(ranged[6:].rstrip("-")):], ranged
                assert headers["Content-Disposition"].startswith("inline")
            status, _, _ = await api.call("HEAD", path, who, headers={"Range": "bytes=0-"})
            assert status == 206
            assert (await counts())[platform] == {"view": 1, "download": 0}, platform
            # an explicit download counts one, and resuming it counts none
            status, body, headers = await api.call("GET", path + "?download=1", who)
            assert status == 200 and body == whole and headers["Content-Disposition"].startswith("attachment")
            status, _, _ = await api.call("GET", path + "?download=1", who, headers={"Range": "bytes=50-"})
            assert status == 206
            assert (await counts())[platform] == {"view": 1, "download": 1}, platform
            # the same viewer playing it again later: a second view; someone else: their own
            clock.now += timedelta(minutes=11)
            await api.call("GET", path, who, headers={"Range": "bytes=0-"})
            assert (await counts())[platform] == {"view": 2, "download": 1}, platform
        await api.call("GET", f"/videos/{video['id']}/download", "bob", headers={"Range": "bytes=0-"})
        assert (await counts())["api"]["view"] == 3
        # a whole-file GET of the download endpoint (curl, the seed's clients) is a download, as before
        status, body, headers = await api.call("GET", f"/videos/{video['id']}/download", "bob")
        assert status == 200 and headers["Content-Disposition"].startswith("attachment")
        assert (await counts())["api"] == {"view": 3, "download": 2}
        status, data, _ = await api.call("GET", f"/videos/{video['id']}/download?dl=1", "bob")
        assert status == 400 and data["field"] == "dl"
