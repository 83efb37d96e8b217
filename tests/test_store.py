"""One store contract, two backends: every test here runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta, timezone

import pytest

from avatar_daemon.models import JobEvent, JobState, Research, Script
from avatar_daemon.store import NewJob, Pick, RunConflict, SlotTaken, Store
from tests.postgres import empty_tables, postgres_database  # noqa: F401  (a fixture)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Clock:
    """The injected clock: a test moves it, nothing waits for real time to pass."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "store.sqlite3"
    url = request.getfixturevalue("postgres_database")
    empty_tables(url)
    return url


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def store(database, clock):
    async with Store.open(database, clock, node_id="node-a") as s:
        yield s


def job(renderer: str = "local", title: str = "a video") -> NewJob:
    return NewJob(renderer=renderer, format="tiktok", avatar_id="sarah", title=title, request={"n": 1})


def research(n: int = 1) -> tuple[Research, Script]:
    r = Research.model_validate({"source": "hackernews", "title": f"Story {n}", "topic": "tech",
                                 "insights": [{"text": f"insight {n}"}]})
    return r, Script(title=f"Story {n}", text=f"About story {n}.", estimated_seconds=2.0)


def event(job_id: int, state: JobState, message: str = "", **kw) -> JobEvent:
    return JobEvent(job_id=job_id, state=state, message=message, **kw)


async def test_research_and_its_jobs_are_made_once(store):
    r, s = research()
    rid, ids, created = await store.add_research_with_jobs("hash-1", r, s, "a.json", [job(), job(title="b")])
    again = await store.add_research_with_jobs("hash-1", r, s, "a.json", [job()])
    assert created and len(ids) == 2
    assert again == (rid, ids, False)
    assert (await store.research_job(rid)).research.title == "Story 1"
    assert [j.id for j in await store.jobs()] == sorted(ids, reverse=True)
    assert [e.state for e in await store.events(ids[0])] == [JobState.queued]


async def test_a_claim_leases_the_job_to_the_node(store, clock):
    (job_id,) = await store.add_jobs([job()])
    claimed = await store.claim_next("local", "node-a", lease_seconds=60)
    assert (claimed.id, claimed.status, claimed.attempts) == (job_id, JobState.rendering, 1)
    assert claimed.claimed_by == "node-a"
    assert datetime.fromisoformat(claimed.lease_until) == clock() + timedelta(seconds=60)
    assert claimed.fence == ("node-a", 1)
    assert await store.claim_next("local", "node-b") is None
    assert await store.claim_next("other") is None


async def test_a_lease_not_extended_runs_out_and_the_job_goes_to_another_node(store, clock):
    await store.add_jobs([job(), job()])
    first = await store.claim_next("local", "node-a", lease_seconds=60)
    second = await store.claim_next("local", "node-b", lease_seconds=60)
    await store.record_event(event(first.id, JobState.rendering, "submitted", data={"external_id": "remote-7"}),
                             fence=first.fence)
    clock.advance(50)
    assert await store.extend_leases("node-b", 60) == 1  # node-b heartbeats; node-a has died
    assert await store.reap_expired() == []
    clock.advance(20)
    assert await store.reap_expired() == [first.id]
    assert await store.reap_expired() == []  # idempotent
    requeued = await store.job(first.id)
    assert (requeued.status, requeued.claimed_by, requeued.external_id) == (JobState.queued, None, "remote-7")
    assert (await store.job(second.id)).status == JobState.rendering
    taken = await store.claim_next("local", "node-c")
    assert (taken.id, taken.attempts, taken.claimed_by) == (first.id, 2, "node-c")


async def test_a_node_that_lost_its_lease_cannot_overwrite_the_new_owners_work(store, clock):
    (job_id,) = await store.add_jobs([job()])
    old = await store.claim_next("local", "node-a", lease_seconds=10)
    clock.advance(11)
    assert await store.reap_expired() == [job_id]
    new = await store.claim_next("local", "node-b", lease_seconds=10)
    before = len(await store.events(job_id))

    assert not await store.record_event(event(job_id, JobState.rendering, "late progress", percent=90),
                                        fence=old.fence)
    assert not await store.record_event(event(job_id, JobState.completed, "late result", percent=100),
                                        {"video": "stale.mp4"}, fence=old.fence)
    got = await store.job(job_id)
    assert (got.status, got.result, got.claimed_by) == (JobState.rendering, None, "node-b")
    assert len(await store.events(job_id)) == before

    assert await store.record_event(event(job_id, JobState.completed, "done", percent=100),
                                    {"video": "new.mp4"}, fence=new.fence)
    got = await store.job(job_id)
    assert (got.status, got.result, got.lease_until) == (JobState.completed, {"video": "new.mp4"}, None)


async def test_a_late_progress_report_never_reopens_an_ended_job(store):
    (job_id,) = await store.add_jobs([job()])
    claimed = await store.claim(job_id)
    assert await store.record_event(event(job_id, JobState.cancelled, "cancelled"))  # a person: no fence
    assert not await store.record_event(event(job_id, JobState.rendering, "50%", percent=50), fence=claimed.fence)
    assert (await store.job(job_id)).status == JobState.cancelled


async def test_a_restart_requeues_only_the_nodes_own_jobs(store):
    await store.add_jobs([job(), job(), job()])
    mine = await store.claim_next("local", "node-a")
    theirs = await store.claim_next("local", "node-b")
    assert await store.requeue_interrupted("node-a") == [mine.id]
    assert (await store.job(theirs.id)).status == JobState.rendering
    assert await store.requeue_interrupted() == []  # the store's own node id is node-a


async def test_a_retried_job_is_a_new_try_that_keeps_its_remote_id(store):
    (job_id,) = await store.add_jobs([job()])
    claimed = await store.claim(job_id)
    await store.record_event(event(job_id, JobState.failed, "boom", data={"external_id": "r-1"}), fence=claimed.fence)
    requeued, ev = await store.requeue_ended(job_id, ["failed"], by="ops")
    assert (requeued.status, requeued.external_id, requeued.claimed_by) == (JobState.queued, "r-1", None)
    assert ev.data == {"retry": 1, "previous": "failed", "error": "boom", "by": "ops"}
    assert await store.requeue_ended(job_id, ["failed"]) is None
    assert await store.retries(job_id) == 1


async def test_nodes_say_they_are_alive(store, clock):
    await store.heartbeat_node("node-a", "host-1", T0, ["local", "heygen"])
    await store.heartbeat_node("node-b", "host-2", T0, ["local"])
    await store.add_jobs([job()])
    await store.claim_next("local", "node-b")
    clock.advance(10)
    await store.heartbeat_node("node-b", "host-2", T0, ["local"])
    nodes = {n.node_id: n for n in await store.nodes()}
    assert set(nodes) == {"node-a", "node-b"}
    assert nodes["node-a"].renderers == ["local", "heygen"] and nodes["node-a"].running == 0
    assert nodes["node-b"].running == 1
    assert datetime.fromisoformat(nodes["node-b"].heartbeat_at) == T0 + timedelta(seconds=10)
    assert datetime.fromisoformat(nodes["node-b"].started_at) == T0
    assert await store.remove_node("node-a") and not await store.remove_node("node-a")
    assert [n.node_id for n in await store.nodes()] == ["node-b"]


async def test_notify_reaches_another_store_on_the_same_database(database, clock):
    async with Store.open(database, clock, node_id="a") as a, Store.open(database, clock, node_id="b") as b:
        async with b.listen(["jobs", "job_events"]) as notes:
            await a.notify("job_events", '{"job_id": 1}')
            await a.add_jobs([job("heygen")])
            async with asyncio.timeout(10):
                heard = [await anext(notes), await anext(notes)]
    assert heard == [("job_events", '{"job_id": 1}'), ("jobs", "heygen")]


async def test_a_notify_payload_too_big_for_postgresql_is_refused_on_both(store):
    with pytest.raises(ValueError, match="8000|7999"):
        await store.notify("job_events", "x" * 8000)
    with pytest.raises(ValueError, match="channel"):
        await store.notify("jobs; DROP TABLE nodes", "")


async def _campaign(store, slot):
    row = await store.upsert_campaign("daily", "daily.yaml", "{}")
    await store.set_campaign_schedule(row.id, slot)
    return row


def _pick(n: int) -> Pick:
    r, s = research(n)
    return Pick(None, r, f"live-{n}", s, [job()], [f"insight {n}"], "new")


async def test_a_campaign_slot_runs_once_across_two_stores(database, clock):
    slot = T0 + timedelta(hours=1)
    async with Store.open(database, clock, node_id="a") as a, Store.open(database, clock, node_id="b") as b:
        row = await _campaign(a, slot)
        basis_a, basis_b = await a.campaign_run_basis(row.id), await b.campaign_run_basis(row.id)
        results = await asyncio.gather(
            a.record_campaign_run(basis_a, [_pick(1)], trigger="schedule", slot=slot, next_run_at=slot
                                  + timedelta(days=1), considered=[], message="a", ran_at=slot),
            b.record_campaign_run(basis_b, [_pick(2)], trigger="schedule", slot=slot, next_run_at=slot
                                  + timedelta(days=1), considered=[], message="b", ran_at=slot),
            return_exceptions=True)
        made = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(made) == 1 and len(refused) == 1 and isinstance(refused[0], RunConflict), results
        runs = await a.campaign_runs(row.id)
        assert len(runs) == 1 and len(await a.jobs()) == 1
        assert datetime.fromisoformat(runs[0]["slot"]) == slot


async def test_the_unique_slot_refuses_a_second_run_the_schedule_check_let_through(store):
    """A run that left the schedule where it was (a split brain's view): the key alone stops a repeat."""
    slot = T0 + timedelta(hours=1)
    row = await _campaign(store, slot)
    first, _ = await store.record_campaign_run(await store.campaign_run_basis(row.id), [_pick(1)],
                                               trigger="schedule", slot=slot, next_run_at=None, considered=[],
                                               message="first", ran_at=slot)
    with pytest.raises(SlotTaken):
        await store.record_campaign_run(await store.campaign_run_basis(row.id), [_pick(2)], trigger="schedule",
                                        slot=slot, next_run_at=None, considered=[], message="again", ran_at=slot)
    assert [r["id"] for r in await store.campaign_runs(row.id)] == [first]
    assert len(await store.jobs()) == 1 and await store.used_insights(row.id) == {"insight 1"}
    # Runs by hand have no slot and are never refused for one.
    for n in (3, 4):
        await store.record_campaign_run(await store.campaign_run_basis(row.id), [], trigger="manual", slot=None,
                                        next_run_at=None, considered=[], message="by hand", ran_at=slot)
    assert len(await store.campaign_runs(row.id)) == 3


async def test_leader_is_one_holder_at_a_time(database, clock):
    async with Store.open(database, clock, node_id="a") as a, Store.open(database, clock, node_id="b") as b:
        async with a.leader("campaigns") as first:
            assert first.held and not first.lost.is_set()
            async with b.leader("campaigns") as second:
                sqlite = str(database).endswith(".sqlite3")
                assert second.held is sqlite  # one daemon per SQLite file: always the leader
        async with b.leader("campaigns") as after:
            assert after.held


async def test_small_state_usage_and_analytics(store, clock):
    assert len(await store.instance_id()) == 12
    await store.set_meta("k", "v1")
    await store.set_meta("k", "v2")
    assert await store.get_meta("k") == "v2" and await store.get_meta("missing") is None
    (job_id,) = await store.add_jobs([job("heygen")])
    assert await store.record_usage(job_id, "heygen", 30.0, None)
    assert not await store.record_usage(job_id, "heygen", 30.0, None)
    assert await store.usage("heygen", T0 - timedelta(days=1)) == (1, 30.0)
    assert await store.usage("heygen", T0 - timedelta(days=1), exclude_job=job_id) == (0, 0.0)
    await store.add_analytics(job_id, "view", "tiktok")
    await store.add_analytics(job_id, "view", "youtube")
    got = await store.analytics(None)
    assert got["by_video"] == [{"key": job_id, "view": 2}]
    assert got["by_day"] == [{"key": "2026-03-02", "view": 2}]
    assert await store.counts() == {"queued": 1}


async def test_both_backends_hand_out_the_same_rows(tmp_path, clock, request):
    """The same calls on each backend give equal rows (ids, times and JSON alike)."""
    url = request.getfixturevalue("postgres_database")
    empty_tables(url)
    seen = []
    for database in (tmp_path / "same.sqlite3", url):
        async with Store.open(database, clock, node_id="n") as s:
            r, sc = research()
            _, ids, _ = await s.add_research_with_jobs("h", r, sc, "f.json", [job()], workspace_id="w")
            claimed = await s.claim(ids[0])
            await s.record_event(event(ids[0], JobState.completed, "done", percent=100, at=T0),
                                 {"video": "v.mp4", "render_seconds": 1.5}, fence=claimed.fence)
            row = await s.upsert_campaign("c", None, "{}")
            seen.append(((await s.job(ids[0])).public(), await s.events(ids[0]), await s.render_seconds(),
                         (await s.research_page("w"))[0], row, await s.ended_before(T0 + timedelta(1))))
    assert seen[0] == seen[1]
    assert seen[0][-1] == [1] and seen[0][2] == [1.5]


def test_migrations_split_where_sqlite_says_a_statement_ends():
    from avatar_daemon.store.sqlite import statements

    script = ("-- a comment; with a semicolon\nCREATE TABLE t (x TEXT DEFAULT 'a;b');\n"
              "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c;d'; END;\n-- the end\n")
    assert statements(script) == [
        "-- a comment; with a semicolon\nCREATE TABLE t (x TEXT DEFAULT 'a;b');",
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c;d'; END;"]
    with pytest.raises(ValueError, match="ends inside a statement"):
        statements("CREATE TABLE u (x TEXT")


async def test_an_old_sqlite_database_upgrades_and_its_running_jobs_are_requeued_at_start(tmp_path):
    """A database from before leases: its running jobs have no owner, and the first start takes them back."""
    import sqlite3

    from avatar_daemon.store.sqlite import MIGRATIONS, statements

    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        for sql in sorted(MIGRATIONS.glob("000[1-4]_*.sql")):
            for statement in statements(sql.read_text()):
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (sql.name, T0.isoformat()))
        db.execute("INSERT INTO video_generations (status, renderer, format, avatar_id, title, request, external_id, "
                   "attempts, created_at, updated_at) VALUES ('rendering', 'heygen', 'tiktok', 'sarah', 't', '{}', "
                   "'hg-1', 1, ?, ?)", (T0.isoformat(), T0.isoformat()))
        db.commit()
    async with Store.open(path, Clock(), node_id="node-a") as store:
        assert await store.requeue_interrupted() == [1]
        got = await store.job(1)
    assert (got.status, got.external_id, got.claimed_by) == (JobState.queued, "hg-1", None)


async def test_a_nul_in_a_renderers_output_never_fails_the_write(store):
    """PostgreSQL text refuses NUL, SQLite keeps it: on both the write lands and the job ends."""
    (job_id,) = await store.add_jobs([job()])
    claimed = await store.claim(job_id)
    assert await store.record_event(event(job_id, JobState.failed, "ffmpeg said \x00 then died",
                                          data={"stderr": "a\x00b", "n\x00": [1, "c\x00"]}),
                                    {"log": "x\x00y"}, fence=claimed.fence)
    got = await store.job(job_id)
    assert got.status == JobState.failed and got.error.startswith("ffmpeg said ")
    (last,) = [e for e in await store.events(job_id) if e.state == JobState.failed]
    assert last.data["stderr"] in ("a\x00b", "a\ufffdb") and got.result["log"] in ("x\x00y", "x\ufffdy")


def test_the_database_setting_takes_a_path_a_sqlite_url_or_a_postgresql_url(tmp_path):
    from avatar_daemon.errors import ConfigError
    from avatar_daemon.settings import load_settings
    from avatar_daemon.store import describe

    config = tmp_path / "daemon.yaml"
    config.write_text("database: sqlite:///var/db.sqlite3\n")
    assert load_settings(config, environ={}).database == tmp_path / "var" / "db.sqlite3"
    url = "postgresql://avatar:pw@db.example:5433/avatar"
    got = load_settings(config, environ={"AVATAR_DAEMON_DATABASE": url}).database
    assert got == url and describe(got) == "postgresql://avatar@db.example:5433/avatar"  # never the password
    config.write_text("database: mysql://root@localhost/avatar\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert "database" in str(caught.value.problems) and "mysql:// is not a database" in str(caught.value.problems)


async def test_events_keep_the_node_that_wrote_them(store, clock):
    (job_id,) = await store.add_jobs([job()])  # the queued event: the store's own node
    claimed = await store.claim_next("local", "node-b", lease_seconds=10)
    assert await store.record_event(event(job_id, JobState.rendering, "rendering", node_id="node-b"),
                                    fence=claimed.fence)
    clock.advance(11)
    assert await store.reap_expired() == [job_id]  # node-a reaps node-b's run-out lease
    assert [(e.state, e.node_id) for e in await store.events(job_id)] == [
        (JobState.queued, "node-a"), (JobState.rendering, "node-b"), (JobState.queued, "node-a")]


def waiting(job_id: int, at: datetime, **kw) -> JobEvent:
    return event(job_id, JobState.waiting_remote, "waiting for heygen", percent=5,
                 data={"next_check_at": at.isoformat()}, **kw)


async def test_a_remote_wait_holds_no_claim_and_any_node_checks_it_once_due(database, clock):
    async with Store.open(database, clock, node_id="node-a") as a, Store.open(database, clock, node_id="node-b") as b:
        (job_id,) = await a.add_jobs([job("heygen")])
        claimed = await a.claim_next("heygen", "node-a", lease_seconds=10)
        await a.record_event(event(job_id, JobState.rendering, "submitted", data={"external_id": "v1,v2"}),
                             fence=claimed.fence)
        assert await a.record_event(waiting(job_id, T0 + timedelta(seconds=30), node_id="node-a"),
                                    fence=claimed.fence)
        got = await b.job(job_id)
        assert (got.status, got.claimed_by, got.lease_until, got.external_id) == (
            JobState.waiting_remote, None, None, "v1,v2")
        assert (_t(got.next_check_at), _t(got.remote_since)) == (T0 + timedelta(seconds=30), T0)
        assert await b.next_check(["heygen"]) == T0 + timedelta(seconds=30) and await b.next_check(["local"]) is None
        assert await b.claim_check("heygen", "node-b") is None  # not due yet
        assert await a.claim_next("heygen", "node-a") is None  # and not queued: it holds no slot
        assert not await a.record_event(event(job_id, JobState.completed, "stale"), fence=claimed.fence)

        clock.advance(30)
        check = await b.claim_check("heygen", "node-b", lease_seconds=10)
        assert (check.id, check.status, check.claimed_by, check.attempts) == (job_id, JobState.waiting_remote,
                                                                            "node-b", 1)
        assert await a.claim_check("heygen", "node-a") is None  # one check at a time
        assert await a.extend_leases("node-b", 10) == 1
        # A progress report from the render's claim cannot turn it back into rendering.
        assert not await b.record_event(event(job_id, JobState.rendering, "late", percent=50), fence=check.fence)
        assert await b.record_event(event(job_id, JobState.waiting_remote, "HeyGen: processing", percent=50),
                                    fence=check.fence)  # progress during the check keeps the claim
        assert (await a.job(job_id)).claimed_by == "node-b"
        # The webhook lands during the check: the put-back must not push the check past it.
        assert await a.check_remote_now("heygen", "v2") == [job_id]
        assert await a.check_remote_now("heygen", "v") == [] and await a.check_remote_now("local", "v2") == []
        assert await b.record_event(waiting(job_id, T0 + timedelta(seconds=300), node_id="node-b"),
                                    fence=check.fence)
        again = await a.claim_check("heygen", "node-a", lease_seconds=10)
        assert again is not None and again.claimed_by == "node-a"
        assert _t((await b.job(job_id)).remote_since) == T0  # the wait began at the first submit

        # node-a dies mid-check: its lease runs out, and the check is anyone's again, at once.
        clock.advance(11)
        assert job_id in await b.reap_expired()
        got = await b.job(job_id)
        assert (got.status, got.claimed_by, _t(got.next_check_at)) == (JobState.waiting_remote, None, clock())
        last = await b.claim_check("heygen", "node-b", lease_seconds=10)
        assert await b.record_event(event(job_id, JobState.completed, "done", percent=100, node_id="node-b"),
                                    {"video": "v.mp4"}, fence=last.fence)
        assert not await a.record_event(event(job_id, JobState.failed, "late"), fence=again.fence)
        got = await a.job(job_id)
        assert (got.status, got.result, got.lease_until) == (JobState.completed, {"video": "v.mp4"}, None)


async def test_a_restart_gives_back_the_checks_it_was_making(store, clock):
    (job_id,) = await store.add_jobs([job("heygen")])
    claimed = await store.claim_next("heygen", "node-a")
    await store.record_event(waiting(job_id, T0), fence=claimed.fence)
    assert (await store.claim_check("heygen", "node-a")).claimed_by == "node-a"
    assert await store.requeue_interrupted("node-a") == [job_id]
    got = await store.job(job_id)
    assert (got.status, got.claimed_by) == (JobState.waiting_remote, None)
    assert await store.claim_check("heygen", "node-b") is not None


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_research_with_insights_is_found_behind_many_plain_scripts_page_by_page(store):
    """The studio lists research it can pick from: filtered in the query, not in the newest rows fetched."""
    older = []
    for n in range(3):
        r, s = research(n)
        older.append((await store.add_research_with_jobs(f"with-{n}", r, s, f"{n}.json", []))[0])
    plain = Research.model_validate({"source": "text", "title": "Plain", "topic": "script", "insights": [],
                                     "script_text": "Just words."})
    for n in range(120):  # a plain script is research without insights
        await store.add_research_with_jobs(f"plain-{n}", plain, Script(title="Plain", text="Just words.",
                                                                       estimated_seconds=1.0), f"p{n}.txt", [])
    assert all(not r.research.insights for r in await store.research_page(None, limit=100))
    first = await store.research_page(None, limit=2, with_insights=True)
    assert [r.id for r in first] == [older[2], older[1]]
    rest = await store.research_page("w", limit=2, with_insights=True, before=first[-1].id)
    assert [r.id for r in rest] == [older[0]]
    assert len(await store.research_page(None, limit=200)) == 123
