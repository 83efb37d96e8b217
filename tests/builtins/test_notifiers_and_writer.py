import asyncio
import contextlib
import hashlib
import hmac
import json

import aiohttp
from aiohttp import web

from avatar_daemon import JobEvent, JobState, Research, Insight
from avatar_daemon.planning import Limits
from avatar_daemon.testing import make_daemon
from avatar_daemon_plugins.webhook_notifier import WebhookNotifier


@contextlib.asynccontextmanager
async def receiver(hook, tmp_path, base_delay):
    """A webhook receiver on loopback and a notifier that posts to it, retrying twice."""
    app = web.Application()
    app.router.add_post("/x", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    daemon = make_daemon(tmp_path, notifiers=["log"])
    try:
        async with aiohttp.ClientSession() as http:
            daemon.http = http
            yield WebhookNotifier(daemon, f"http://127.0.0.1:{port}/x", None, retries=2, base_delay=base_delay)
    finally:
        await runner.cleanup()


async def test_webhook_signs_and_retries(tmp_path, monkeypatch):
    """A receiver on loopback that fails once: the retry lands, signed so it can be verified."""
    monkeypatch.setenv("AVATAR_DAEMON_WEBHOOK_SECRET", "s3cret-value")
    received = []

    async def hook(request):
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=503 if len(received) == 1 else 200)

    async with receiver(hook, tmp_path, base_delay=0.01) as notifier:
        await notifier.notify(JobEvent(job_id=3, state=JobState.completed, message="done"))
    assert len(received) == 2
    headers, body = received[-1]
    expected = hmac.new(b"s3cret-value", headers["X-Avatar-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Avatar-Signature"] == "sha256=" + expected
    assert json.loads(body)["type"] == "job.completed"


async def test_webhook_waits_what_retry_after_says_not_its_own_backoff(tmp_path):
    """A 429 with Retry-After: 0: the retry comes at once, though the backoff alone would wait 15-45 s."""
    received = []

    async def hook(request):
        received.append(await request.read())
        if len(received) == 1:
            return web.Response(status=429, headers={"Retry-After": "0"})
        return web.Response(status=200)

    async with receiver(hook, tmp_path, base_delay=30.0) as notifier, asyncio.timeout(10):
        await notifier.notify(JobEvent(job_id=4, state=JobState.failed, message="no"))
    assert len(received) == 2 and received[0] == received[1]


def test_template_writer_fits_the_format(daemon):
    insights = [Insight(text=f"Insight number {i} " + "with many extra words " * 6, score=100 - i) for i in range(12)]
    research = Research(source="reddit", title="t", topic="r/python", insights=insights)
    writer = daemon.script_writer()
    short = writer.write(research, "reddit", Limits(max_seconds=20, voice_speed=1.0))
    long = writer.write(research, "reddit", Limits(max_seconds=90, voice_speed=1.0))
    assert short.estimated_seconds <= 20 and short.insights_used < long.insights_used
    reddit = daemon.settings.script_templates["reddit"]
    assert short.paragraphs[0] in [i.replace("{topic}", "r/python") for i in reddit.intro]
    assert short.paragraphs[1].startswith("First:") and short.paragraphs[-1] in reddit.outro


def test_spoken_text():
    from avatar_daemon import to_spoken

    assert to_spoken("Up 300% to $5M in v2.1 🚀 https://x.io") == "Up 300 percent to 5 million dollars in version 2.1"
    assert to_spoken("## Big *news*\n- one\n- two") == "Big news. one. two."
