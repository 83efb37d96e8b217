"""Several daemons on one database, in one process: node ids, leases and fencing, shared events, the inbox.

The real-process version (kills, three nodes, a shared inbox) is tests/test_multi_node.py.
"""

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from avatar_daemon.events import MAX_SHARED_DATA, shared_payload
from avatar_daemon.models import JobEvent, JobState
from avatar_daemon.node_commands import table
from avatar_daemon.nodes import node_id
from avatar_daemon.store import NewJob, Store
from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.postgres import scratch_database
from tests.builtins.test_slack import command, post, slack  # noqa: F401 (slack: a fixture)
from tests.conftest import REPO, fixture_bytes


class Clock:
    """A clock the test moves: leases and heartbeats are stamped with it."""

    def __init__(self):
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now


def test_a_node_id_is_made_once_per_data_dir_and_kept(tmp_path):
    first = node_id(None, tmp_path / "a")
    assert first == node_id(None, tmp_path / "a")  # a restart is the same node: it requeues its own jobs
    assert first != node_id(None, tmp_path / "b")  # two daemons on one host are two nodes
    assert node_id("studio-1", tmp_path / "a") == "studio-1"
    assert (tmp_path / "a/node-id").read_text().strip() == first


def test_a_node_id_that_could_not_name_a_folder_is_refused(tmp_path):
    from avatar_daemon.errors import ConfigError

    with pytest.raises(ConfigError, match="node_id"):
        make_settings(tmp_path, node_id="../elsewhere")
    (tmp_path / "var").mkdir()
    (tmp_path / "var/node-id").write_text("a/b\n")
    with pytest.raises(ConfigError, match="node-id:1: 'a/b' is not a node id"):
        node_id(None, tmp_path / "var")


async def test_a_claim_whose_lease_ran_out_writes_nothing_and_its_render_stops(tmp_path):
    """Node A stalls past its lease; node B takes the job; A's progress and result are refused."""
    clock = Clock()
    renderer = GatedRenderer()
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(renderer)], clock=clock, jobs={"lease_seconds": 5})
    async with daemon.started():
        (job_id,) = (await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "x.json", ".json")).job_ids
        job = await daemon.store.claim_next("fake", daemon.node_id, 5)
        render = asyncio.create_task(daemon.jobs.execute(job))
        await asyncio.wait_for(renderer.entered.wait(), 10)
        clock.now += timedelta(seconds=6)  # no heartbeat came: the lease ran out
        assert await daemon.store.reap_expired() == [job_id]
        other = await daemon.store.claim_next("fake", "node-b", 5)
        assert other.id == job_id and other.attempts == job.attempts + 1
        renderer.gate.set()  # A wakes from its stall: its next write (its 25 % report) is refused; it stops
        assert await asyncio.wait_for(render, 30) is None
        now = await daemon.store.job(job_id)
        assert (now.status, now.claimed_by, now.attempts) == (JobState.rendering, "node-b", other.attempts)
        # B's writes land.
        assert await daemon.bus.publish(JobEvent(job_id=job_id, state=JobState.completed, percent=100),
                                        {"video": "b.mp4"}, fence=("node-b", other.attempts))
        assert (await daemon.store.job(job_id)).result == {"video": "b.mp4"}
        states = [e.state for e in await daemon.store.events(job_id)]
        assert states.count(JobState.completed) == 1


async def test_the_heartbeat_keeps_a_long_render_leased(tmp_path):
    clock = Clock()
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer())], clock=clock,
                         jobs={"lease_seconds": 5})
    async with daemon.started():
        await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "x.json", ".json")
        job = await daemon.store.claim_next("fake", daemon.node_id, 5)
        cluster = daemon.cluster  # its tasks are not running: the test beats by hand
        for _ in range(4):  # 12 s in all: past two leases, renewed each time
            clock.now += timedelta(seconds=3)
            assert await cluster.beat() == 1
            assert await cluster.reap() == []
        assert (await daemon.store.job(job.id)).claimed_by == daemon.node_id
        nodes = await daemon.store.nodes()
        assert [(n.node_id, n.running, n.renderers) for n in nodes] == [(daemon.node_id, 1, daemon.renderers.names())]


async def test_a_dead_nodes_inbox_folder_is_taken_over_and_a_live_ones_is_left(tmp_path):
    clock = Clock()
    plugin = RecordingPlugin(FakeRenderer())
    daemon = make_daemon(tmp_path, plugins=[plugin], clock=clock, jobs={"lease_seconds": 5}, http={"enabled": False})
    processing = tmp_path / "inbox/processing"
    for node in ("dead", "alive"):
        (processing / node).mkdir(parents=True)
        (processing / node / f"{node}.json").write_bytes(fixture_bytes("hn_algolia.json" if node == "dead"
                                                                       else "github_search.json"))
    async with Store.open(daemon.settings.database, clock) as store:  # two other nodes, one long silent
        clock.now -= timedelta(seconds=60)
        await store.heartbeat_node("dead", "h", clock(), ["fake"])
        clock.now += timedelta(seconds=60)
        await store.heartbeat_node("alive", "h", clock(), ["fake"])
    async with running(daemon):
        await wait_until(lambda: (tmp_path / "inbox/done/dead.json").exists())
        assert (processing / "alive/alive.json").exists()  # its node still heartbeats: it is its own to finish
        assert not (processing / "dead").exists()
        research = await daemon.store.research_page(None)
        assert [r.filename for r in research] == ["dead.json"]


async def test_a_file_claimed_by_a_daemon_before_node_folders_is_recovered(tmp_path):
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin()], http={"enabled": False})
    (tmp_path / "inbox/processing").mkdir(parents=True)
    (tmp_path / "inbox/processing/old.json").write_bytes(fixture_bytes("hn_algolia.json"))
    async with running(daemon):
        await wait_until(lambda: (tmp_path / "inbox/done/old.json").exists())
    assert [p.name for p in (tmp_path / "inbox/processing").iterdir()] == [daemon.node_id]


def test_a_shared_event_fits_a_notify_however_big_the_event():
    event = JobEvent(job_id=1, state=JobState.completed, message="é" * 50_000, data={"x": "y" * 50_000},
                     node_id="n1")
    payload = shared_payload(event)
    assert len(payload.encode()) < 8000
    back = JobEvent.model_validate_json(payload)
    assert (back.job_id, back.state, back.node_id, back.data) == (1, JobState.completed, "n1", {})
    small = JobEvent(job_id=2, state=JobState.rendering, data={"external_id": "abc"})
    assert JobEvent.model_validate_json(shared_payload(small)).data == {"external_id": "abc"}
    assert len(json.dumps({"x": "y" * MAX_SHARED_DATA})) > MAX_SHARED_DATA


async def test_healthz_and_metrics_name_the_node_and_the_database_without_its_password(tmp_path):
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin()], node_id="studio-1")
    async with running(daemon), aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{daemon.http_port}"
        health = await (await http.get(f"{base}/healthz")).json()
        metrics = await (await http.get(f"{base}/metrics")).text()
    assert health["node"] == "studio-1" and health["database"] == f"sqlite:///{tmp_path / 'var/db.sqlite3'}"
    assert 'avatar_daemon_node_info{node="studio-1"} 1' in metrics


async def test_the_nodes_command_lists_each_daemon_with_its_heartbeat_and_running_jobs(tmp_path):
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer(seconds=30))], node_id="studio-1",
                         http={"enabled": False}, notifiers=["log"], default_renderer="local")
    async with running(daemon):
        await daemon.store.add_jobs([NewJob("fake", "tiktok", "sarah", "held", {"script": {
            "title": "held", "text": "A job held while the command looks.", "estimated_seconds": 2}})])
        daemon.jobs.wake.set()
        await wait_until(lambda: daemon.jobs.running)
        await daemon.cluster.beat()
        rows = json.loads(await _nodes_cli(daemon.settings.config_path, "--json"))
    assert [(r["node_id"], r["running"], r["renderers"], r["alive"]) for r in rows] == [
        ("studio-1", 1, daemon.renderers.names(), True)]
    header, line = table(rows)
    assert header.split()[:3] == ["NODE", "HOST", "STARTED"] and line.split()[0] == "studio-1"
    assert "ago (gone)" in table([{**rows[0], "alive": False}])[1]


async def test_a_gone_node_can_be_forgotten_and_a_live_one_cannot(tmp_path):
    # the command runs in its own process on the real clock: the heartbeats are stamped on it too
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin()], node_id="here", http={"enabled": False},
                         notifiers=["log"])
    now = datetime.now(timezone.utc)
    async with Store.open(daemon.settings.database, lambda: now - timedelta(seconds=600)) as store:
        await store.heartbeat_node("retired", "old-host", now - timedelta(seconds=600), ["local"])
    async with Store.open(daemon.settings.database) as store:
        await store.heartbeat_node("busy", "h", now, ["local"])
    refused = await _nodes_cli_run(daemon.settings.config_path, "forget", "busy")
    assert refused.returncode != 0 and "'busy' still sends heartbeats" in refused.stderr
    unknown = await _nodes_cli_run(daemon.settings.config_path, "forget", "nobody")
    assert unknown.returncode != 0 and "no node 'nobody' (known: busy, retired)" in unknown.stderr
    assert "forgotten" in (await _nodes_cli_run(daemon.settings.config_path, "forget", "retired")).stdout
    async with Store.open(daemon.settings.database) as store:
        assert [n.node_id for n in await store.nodes()] == ["busy"]


async def _nodes_cli_run(config, *args) -> subprocess.CompletedProcess:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "avatar_daemon", "--config", str(config),
                                                "nodes", *args, cwd=REPO, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


async def _nodes_cli(config, *args) -> str:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "avatar_daemon", "--config", str(config),
                                                "nodes", *args, cwd=REPO, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


class GatedRenderer(FakeRenderer):
    """Renders once the test opens the gate, so a watcher elsewhere is surely listening first."""

    def __init__(self):
        super().__init__(seconds=0.4)
        self.gate, self.entered = asyncio.Event(), asyncio.Event()

    async def render(self, request, progress):
        self.entered.set()
        await self.gate.wait()
        return await super().render(request, progress)


class OtherRenderer(FakeRenderer):
    name = "other"


async def test_a_websocket_on_one_node_follows_a_job_another_node_renders(tmp_path):
    """Node `web` serves the API and renders nothing of this kind; node `worker` renders; events cross over."""
    from tests.test_http_api import TOKENS, users_yaml

    with scratch_database("cluster_ws") as url:
        shared = {"inbox": {"path": str(tmp_path / "inbox"), "settle_seconds": 0.05}, "database": url,
                  "jobs": {"output_dir": str(tmp_path / "videos")}}
        for node in ("web", "worker"):
            (tmp_path / node).mkdir()
        users_yaml(tmp_path / "web")
        web_plugin = RecordingPlugin(OtherRenderer())
        web = make_daemon(tmp_path / "web", plugins=[web_plugin], node_id="web", users_file="users.yaml",
                          default_renderer="other", **shared)
        renderer = GatedRenderer()
        worker_plugin = RecordingPlugin(renderer)
        worker = make_daemon(tmp_path / "worker", plugins=[worker_plugin], node_id="worker",
                             http={"enabled": False}, **shared)
        async with running(web), running(worker):
            ingested = await worker.pipeline.ingest(fixture_bytes("hn_algolia.json"), "x.json", ".json")
            (job_id,) = ingested.job_ids
            seen = []
            async with aiohttp.ClientSession(f"http://127.0.0.1:{web.http_port}") as http, \
                    web.bus.watch(job_id) as events:
                async with http.ws_connect(f"/videos/{job_id}/status-ws",
                                           headers={"Authorization": f"Bearer {TOKENS['root']}"}) as ws:
                    seen.append(json.loads((await ws.receive()).data))
                    renderer.gate.set()
                    async for msg in ws:
                        seen.append(json.loads(msg.data))
                        if seen[-1]["status"] in ("completed", "failed"):
                            break
                heard = []
                while not heard or not heard[-1].state.final:
                    heard.append(await asyncio.wait_for(events.get(), 10))
        assert seen[0]["status"] in ("queued", "rendering") and seen[-1]["status"] == "completed", seen
        assert any(m["status"] == "rendering" and 0 < (m["percent"] or 0) < 100 for m in seen), seen
        assert {e.node_id for e in heard} == {"worker"}
        # Notifiers are told once, by the node that made the event: web's heard nothing of the worker's job.
        assert worker_plugin.notifier.states(job_id)[-1] == "completed"
        assert web_plugin.notifier.states(job_id) == []


async def test_a_slack_progress_message_posted_by_one_node_follows_a_job_another_node_renders(tmp_path, slack):
    """Node `web` takes the slash command and posts the message; node `worker` renders; web edits it to Done."""
    with scratch_database("cluster_slack") as url:
        shared = {"database": url, "jobs": {"output_dir": str(tmp_path / "videos")},
                  "inbox": {"path": str(tmp_path / "inbox"), "settle_seconds": 0.05}}
        (tmp_path / "web").mkdir()
        (tmp_path / "worker").mkdir()
        blocker = GatedRenderer()  # web's one slot stays taken, so only the worker can claim the Slack job
        blocker.max_concurrency = 1
        (tmp_path / "web/users.yaml").write_text(json.dumps({"workspaces": {"T0EXAMPLE": {"tier": "pro"}}}))
        settings = make_settings(tmp_path / "web", users_file="users.yaml", node_id="web", plugins={"settings": {
            "slack": {"mode": "http", "api_url": f"{slack.url}/api/", "progress_interval_seconds": 0.3}}}, **shared)
        web = make_daemon(tmp_path / "web", plugins=[RecordingPlugin(blocker)], settings=settings)
        worker_plugin = RecordingPlugin(FakeRenderer(seconds=0.8))
        worker = make_daemon(tmp_path / "worker", plugins=[worker_plugin], node_id="worker",
                             http={"enabled": False}, notifiers=["recording"], **shared)
        async with running(web):
            await web.store.add_jobs([NewJob("fake", "tiktok", "sarah", "blocker", {"script": {
                "title": "blocker", "text": "Held by web the whole test.", "estimated_seconds": 2}})])
            web.jobs.wake.set()
            await asyncio.wait_for(blocker.entered.wait(), 10)
            async with running(worker):
                status, _, _ = await post(web, command(slack, "Robots are learning to cook. Here is how."))
                assert status == 200
                await wait_until(lambda: slack.called("files.completeUploadExternal"), timeout=30)
                job = next(j for j in await web.store.jobs() if j.title != "blocker")
            blocker.gate.set()
    assert job.status.value == "completed" and job.claimed_by == "worker"
    assert worker_plugin.notifier.states(job.id)[-1] == "completed"
    (posted, *_) = [p for p in slack.called("chat.postMessage") if not p.get("thread_ts")]
    assert posted["channel"] == "C1"
    updates = slack.called("chat.update")
    assert updates and "Done" in updates[-1]["text"]
    assert any("rendering" in json.dumps(u).lower() or "%" in json.dumps(u) for u in updates[:-1]), updates
