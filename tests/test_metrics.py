"""/metrics as Prometheus scrapes it: parsed by prometheus_client's own parsers, both formats, HEAD."""

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, running, wait_until


@pytest.fixture
async def scraped(tmp_path):
    plugin = RecordingPlugin(FakeRenderer(seconds=0.1))
    daemon = make_daemon(tmp_path, plugins=[plugin])
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        (tmp_path / "inbox" / "hello.txt").write_text("Hello from the inbox, counted by the metrics.")
        await wait_until(lambda: any(e.state.value == "completed" for e in plugin.notifier.events))
        yield http


def samples(families):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


async def test_text_format_parses_and_counts_the_work(scraped):
    async with scraped.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await resp.text()
    got = samples(text_string_to_metric_families(text))
    assert got[("avatar_daemon_jobs", (("state", "completed"),))] == 1
    assert got[("avatar_daemon_jobs", (("state", "failed"),))] == 0
    assert got[("avatar_daemon_inbox_files_total", (("outcome", "processed"),))] == 1
    assert got[("avatar_daemon_render_seconds_count", ())] == 1
    assert got[("avatar_daemon_render_seconds_bucket", (("le", "+Inf"),))] == 1
    assert got[("avatar_daemon_render_seconds_bucket", (("le", "5.0"),))] == 1  # a 0.1 s fake render
    # The process's own figures, from prometheus_client's collectors.
    assert got[("process_resident_memory_bytes", ())] > 1_000_000
    assert any(name == "python_info" for name, _ in got)


async def test_openmetrics_when_asked(scraped):
    async with scraped.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}) as resp:
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        text = await resp.text()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["avatar_daemon_inbox_files"].type == "counter"
    assert families["avatar_daemon_render_seconds"].type == "histogram"
    assert samples(families.values())[("avatar_daemon_jobs", (("state", "completed"),))] == 1


async def test_head_answers_like_get_without_a_body(scraped):
    async with scraped.get("/metrics") as got:
        length = len(await got.read())
    async with scraped.head("/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        assert await resp.read() == b""
        # The length of what a GET would get (the process figures move a little between scrapes).
        assert abs(int(resp.headers["Content-Length"]) - length) < 200
