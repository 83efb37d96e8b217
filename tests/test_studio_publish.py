"""Publishing over HTTP: POST /videos/{id}/publish, GET /videos/{id}/publications, the status WebSocket's
posts and the outgoing webhook's publication events, against a platform on 127.0.0.1."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.fake_platform import FakePlatform, LoopbackPublisher, PublishingPlugin
from tests.test_http_api import TOKENS, Api, users_yaml

PLATFORM_TOKEN = "access-token-1"
PUBLISHING = {"accounts": {"loop-main": {"platform": "loopvid", "channel": "UC1"},
                           "loop-second": {"platform": "loopvid", "channel": "UC2"}},
              "poll_seconds": 0.05, "retry_seconds": 0.05}


@pytest.fixture(autouse=True)
def tokens(monkeypatch):
    for account in ("LOOP_MAIN", "LOOP_SECOND"):
        monkeypatch.setenv(f"AVATAR_DAEMON_{account}_TOKEN", PLATFORM_TOKEN)


@pytest.fixture
async def site(tmp_path):
    """A daemon that publishes to the loopback platform, and a receiver of its webhook."""
    received: list[dict] = []

    async def hook(request):
        received.append(json.loads(await request.read()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    receiver = web.TCPSite(runner, "127.0.0.1", 0)
    await receiver.start()
    hook_url = f"http://127.0.0.1:{receiver._server.sockets[0].getsockname()[1]}/hook"
    users_yaml(tmp_path)
    async with FakePlatform(token=PLATFORM_TOKEN).serve() as platform:
        recording = RecordingPlugin(FakeRenderer(seconds=0.05))
        settings = make_settings(tmp_path, users_file="users.yaml", publishing=PUBLISHING,
                                 notifiers=["recording", "webhook"],
                                 plugins={"settings": {"webhook": {"url": hook_url, "retries": 0}}})
        daemon = make_daemon(tmp_path, plugins=[recording, PublishingPlugin(LoopbackPublisher(platform.url))],
                             settings=settings)
        try:
            async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
                yield Api(http, daemon, recording), platform, received
        finally:
            await runner.cleanup()


async def finished(api: Api, who: str = "alice") -> int:
    video = await api.video(who)
    await wait_until(lambda: api.plugin.notifier.states(video["id"])[-1:] == ["completed"])
    return video["id"]


async def test_publish_a_video_once_however_often_it_is_asked(site):
    api, platform, received = site
    status, offered, _ = await api.call("GET", "/publishing", "alice")
    assert status == 200 and offered == {"platforms": {"loopvid": ["loop-main", "loop-second"]}}
    video_id = await finished(api)
    path = f"/videos/{video_id}/publish"
    status, first, _ = await api.call("POST", path, "alice", json={"platforms": ["loopvid"], "accounts": ["loop-main"],
                                                                   "privacy": "unlisted"})
    assert status == 202, first
    (queued,) = first["publications"]
    assert (queued["platform"], queued["account"], queued["requested_by"]) == ("loopvid", "loop-main", "api:alice")
    # a double click, and bob of the same workspace: the same publication, not a second post
    for who in ("alice", "bob"):
        status, again, _ = await api.call("POST", path, who, json={"platforms": ["loopvid"],
                                                                   "accounts": ["loop-main"]})
        assert status == 200 and [p["id"] for p in again["publications"]] == [queued["id"]], again

    async def posted():
        _, listed, _ = await api.call("GET", f"/videos/{video_id}/publications", "alice")
        return listed if listed["publications"][0]["state"] in ("published", "failed") else None

    listed = await wait_until(posted, timeout=20)
    (row,) = listed["publications"]
    (remote,) = platform.videos.values()
    assert row["state"] == "published" and row["url"] == f"{platform.url}/watch/{remote['id']}"
    assert remote["privacy"] == "unlisted" and platform.starts == 1
    # the webhook heard it once, with the post's URL, and never as the video completing again
    await wait_until(lambda: any(b["type"] == "publication.published" for b in received))
    kinds = [b["type"] for b in received]
    assert kinds.count("publication.published") == 1 and kinds.count("job.completed") == 1, kinds
    said = next(b for b in received if b["type"] == "publication.published")
    assert said["publication"]["url"] == row["url"] and said["video_id"] == video_id
    assert PLATFORM_TOKEN not in json.dumps(received)


async def test_publishing_is_refused_with_the_reason(site):
    api, platform, _ = site
    video_id = await finished(api)
    path = f"/videos/{video_id}/publish"
    for who, body, status, field, said in (
            ("eve", {"platforms": ["loopvid"]}, 403, None, "another workspace"),
            ("alice", {"platforms": ["myspace"]}, 422, "platforms", "no publisher for platform 'myspace'"),
            ("alice", {"platforms": ["loopvid"], "accounts": ["nobody"]}, 422, "accounts", "no account named"),
            ("alice", {"platforms": ["loopvid"]}, 422, "accounts", "name one"),  # two accounts, none named
            ("alice", {"platforms": []}, 422, "platforms", ""),
            ("alice", {"platforms": ["loopvid"], "accounts": ["loop-main"], "privacy": "everyone"}, 422, "privacy",
             "")):
        code, data, _ = await api.call("POST", path, who, json=body)
        assert code == status and said in data["error"] and data.get("field") == field, (body, data)
    api.plugin.renderer.seconds = 30
    busy = await api.video("alice")
    code, data, _ = await api.call("POST", f"/videos/{busy['id']}/publish", "alice",
                                   json={"platforms": ["loopvid"], "accounts": ["loop-main"]})
    assert code == 422 and "only a finished video can be published" in data["error"], data
    code, data, _ = await api.call("GET", f"/videos/{video_id}/publications", "eve")
    assert code == 403
    await api.call("POST", f"/videos/{busy['id']}/cancel", "alice")
    assert platform.starts == 0 and await api.daemon.publishing.for_video(video_id) == []


async def test_a_cookie_session_publishes_with_its_csrf_token_and_the_socket_follows_the_post(site):
    api, platform, _ = site
    video_id = await finished(api)
    base = f"http://127.0.0.1:{api.daemon.http_port}"
    async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post("/session", json={"token": TOKENS["alice"]}) as resp:
            me = await resp.json()
        body = {"platforms": ["loopvid"], "accounts": ["loop-second"]}
        async with browser.post(f"/videos/{video_id}/publish", json=body) as resp:
            assert resp.status == 403 and "X-CSRF-Token" in (await resp.json())["error"]
        async with browser.post("/ws-tickets", headers={"X-CSRF-Token": me["csrf_token"]}) as resp:
            ticket = (await resp.json())["ticket"]
        async with browser.ws_connect(f"/videos/{video_id}/status-ws?ticket={ticket}&publications=1") as ws:
            state = await ws.receive_json(timeout=5)
            assert state["status"] == "completed"
            assert await ws.receive_json(timeout=5) == {"type": "publications", "video_id": video_id,
                                                        "publications": []}
            async with browser.post(f"/videos/{video_id}/publish", json=body,
                                    headers={"X-CSRF-Token": me["csrf_token"]}) as resp:
                assert resp.status == 202
            seen = []
            while not seen or seen[-1]["state"] not in ("published", "failed"):
                message = await ws.receive_json(timeout=10)
                assert message["type"] == "publication" and "status" not in message  # never "completed" again
                seen.append(message["publication"])
    states = [p["state"] for p in seen]
    assert states[0] == "pending" and states[-1] == "published" and "uploading" in states, states
    assert seen[-1]["url"].startswith(f"{platform.url}/watch/") and seen[-1]["account"] == "loop-second"
    # without ?publications=1 a finished video's socket says its state and closes, as before
    async with api.http.ws_connect(f"/videos/{video_id}/status-ws",
                                   headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as ws:
        assert (await ws.receive_json(timeout=5))["status"] == "completed"
        assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
