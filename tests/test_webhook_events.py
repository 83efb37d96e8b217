"""The outgoing webhook over real HTTP: each event says which video, whose, how long, and where to get it."""

import json

import aiohttp
from aiohttp import web

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.test_http_api import Api, users_yaml


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
    settings = make_settings(tmp_path, users_file="users.yaml", notifiers=["recording", "webhook"], plugins={
        "settings": {"webhook": {"url": f"http://127.0.0.1:{port}/webhooks/video-completed",
                                 "states": ["completed"], "public_url": "https://videos.example.com/"}}})
    try:
        async with running(make_daemon(tmp_path, plugins=[plugin], settings=settings)) as daemon, \
                aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
            video = await Api(http, daemon, plugin).video("alice", script_title="Weekly AI news")
            await wait_until(lambda: received)
    finally:
        await runner.cleanup()
    [event] = received
    assert event["type"] == "job.completed" and event["video_id"] == video["id"]
    assert (event["title"], event["workspace_id"], event["user_id"]) == ("Weekly AI news", "W1", "U1")
    assert event["duration"] == 1.0
    assert event["video_url"] == f"https://videos.example.com/videos/{video['id']}/download"
    assert event["page_url"] == f"https://videos.example.com/videos/{video['id']}"
    assert str(tmp_path) not in json.dumps(event)  # no path on the daemon's disk
