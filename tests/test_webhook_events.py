"""The outgoing webhook over real HTTP: each event says which video, whose, how long, and where to get it."""

import json
import socket
from datetime import timedelta

import aiohttp
from aiohttp import web

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.test_browser_access import START, Clock
from tests.test_http_api import Api, users_yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_finished_videos_event_carries_what_a_receiver_acts_on(tmp_path):
    received = []

    async def hook(request):
        received.append(json.loads(await request.read()))
        return web.json_response({"status": "processed"})

    app = web.Application()
    app.router.add_post("/webhooks/video-completed", hook)  # the seed's receiver
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    users_yaml(tmp_path)
    plugin = RecordingPlugin(FakeRenderer())
    public = f"http://127.0.0.1:{free_port()}"  # the address receivers reach the daemon at: its own here
    settings = make_settings(tmp_path, users_file="users.yaml", notifiers=["recording", "webhook"],
                             http={"port": int(public.rsplit(":", 1)[1])}, plugins={
        "settings": {"webhook": {"url": f"http://127.0.0.1:{port}/webhooks/video-completed",
                                 "states": ["completed"], "public_url": public + "/", "link_hours": 2}}})
    clock = Clock()
    try:
        async with running(make_daemon(tmp_path, plugins=[plugin], settings=settings, clock=clock)) as daemon, \
                aiohttp.ClientSession(public) as api_http, aiohttp.ClientSession() as http:
            video = await Api(api_http, daemon, plugin).video("alice", script_title="Weekly AI news")
            await wait_until(lambda: received)
            [event] = received
            job = await daemon.store.job(video["id"])
            # the receiver has no token: the links in the body play as they are
            async with http.get(event["video_url"]) as resp:
                assert resp.status == 200 and await resp.read() == open(job.result["video"], "rb").read()
            async with http.get(event["video_url"], headers={"Range": "bytes=0-3"}) as resp:
                assert resp.status == 206 and len(await resp.read()) == 4
            async with http.get(event["page_url"]) as resp:
                assert resp.status == 401  # the API's own page still needs a token
            clock.now = START + timedelta(hours=2, seconds=1)
            async with http.get(event["video_url"]) as resp:
                assert resp.status == 410 and "expired" in (await resp.json())["error"]
    finally:
        await runner.cleanup()
    assert event["type"] == "job.completed" and event["video_id"] == video["id"]
    assert (event["title"], event["workspace_id"], event["user_id"]) == ("Weekly AI news", "W1", "U1")
    assert event["duration"] == 1.0
    assert event["video_url"].startswith(f"{public}/shared/{video['id']}.")
    assert event["links_expire_at"] == (START + timedelta(hours=2)).isoformat(timespec="seconds")
    assert event["page_url"] == f"{public}/videos/{video['id']}"
    assert "thumbnail_url" not in event  # the fake renderer draws no still: no link to nothing
    assert str(tmp_path) not in json.dumps(event)  # no path on the daemon's disk
