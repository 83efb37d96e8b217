"""What only PostgreSQL can show: many connections at once, lost connections, a daemon on the server."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import psycopg
import pytest

from avatar_daemon.models import JobState
from avatar_daemon.store import NewJob, Store
from avatar_daemon.store.postgres import MIGRATIONS, PostgresStore
from avatar_daemon.testing import make_daemon, running, wait_for_final, wait_until
from tests.conftest import fixture_bytes
from tests.postgres import empty_tables, postgres_database, scratch_database  # noqa: F401  (a fixture)
from tests.test_store import Clock, job

# pg_locks is the whole server's: other test runs share it.
THIS_DATABASE = "database = (SELECT oid FROM pg_database WHERE datname = current_database())"


@pytest.fixture
def url(postgres_database):
    empty_tables(postgres_database)
    return postgres_database


@contextlib.asynccontextmanager
async def nodes(url, clock, n, pool=2):
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(PostgresStore.connect(url, clock, f"node-{i}", max_size=pool))
               for i in range(n)]


async def test_four_nodes_claiming_a_thousand_jobs_claim_each_once(url):
    clock = Clock()
    async with nodes(url, clock, 4) as stores:
        await stores[0].add_jobs([job(title=f"v{i}") for i in range(1000)])
        claims: list[tuple[str, int]] = []

        async def worker(store):
            while (claimed := await store.claim_next("local", store.node_id)) is not None:
                claims.append((store.node_id, claimed.id))

        await asyncio.gather(*(worker(s) for s in stores for _ in range(2)))  # 8 connections
    ids = Counter(job_id for _, job_id in claims)
    assert len(ids) == 1000 and max(ids.values()) == 1  # every job claimed, none twice
    per_node = Counter(node for node, _ in claims)
    assert len(per_node) == 4, per_node  # SKIP LOCKED: nodes took turns instead of queueing behind one


async def test_two_daemons_starting_together_migrate_once():
    with scratch_database("migrate") as fresh:
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.gather(*(stack.enter_async_context(Store.open(fresh)) for _ in range(3)))
        async with await psycopg.AsyncConnection.connect(fresh) as conn:
            names = [r[0] async for r in await conn.execute("SELECT name FROM schema_migrations")]
        assert sorted(names) == sorted(p.name for p in MIGRATIONS.glob("*.sql")) and len(set(names)) == len(names)


async def test_a_leader_whose_connection_dies_learns_it_and_another_node_takes_over(url):
    clock = Clock()
    async with nodes(url, clock, 2) as (a, b):
        async with a.leader("campaigns", check_seconds=0.1) as lead:
            assert lead.held
            async with b.leader("campaigns") as other:
                assert not other.held
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
                await admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_locks WHERE {THIS_DATABASE} "
                                    "AND locktype = 'advisory' AND granted")
            async with asyncio.timeout(10):
                await lead.lost.wait()
            assert not lead.held

            async def b_leads() -> bool:  # the server frees the lock as the killed session ends
                async with b.leader("campaigns") as taken:
                    return taken.held

            await wait_until(b_leads, timeout=10)


async def test_a_listener_on_a_dead_connection_raises_so_its_node_falls_back_to_polling(url):
    async with nodes(url, Clock(), 1) as (a,):
        async with a.listen(["jobs"]) as notes:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                    "datname = current_database() AND query LIKE 'LISTEN%%' "
                                    "AND pid <> pg_backend_pid()")
            with pytest.raises(psycopg.OperationalError):
                async with asyncio.timeout(10):
                    await anext(notes)


async def test_a_wrong_server_is_one_clear_error_without_the_password():
    from avatar_daemon.store.postgres import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable) as caught:
        async with Store.open("postgresql://someone:hunter2@127.0.0.1:1/nowhere"):
            pass
    assert "postgresql://someone@127.0.0.1:1/nowhere: cannot connect" in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_the_daemon_runs_on_postgresql(tmp_path, url, plugin):
    """The whole path on the server: a drop becomes research, a job, a claim, a render and a result."""
    daemon = make_daemon(tmp_path, plugins=[plugin], database=url)
    async with running(daemon):
        result = await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
        (job_id,) = result.job_ids
        assert await wait_for_final(daemon, job_id) == JobState.completed
        got = await daemon.store.job(job_id)
    assert got.result["video"].endswith("video.txt") and got.attempts == 1
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT state FROM events WHERE job_id = %s ORDER BY id", (job_id,))
        states = [r[0] for r in await cur.fetchall()]
    assert states[0] == "queued" and states[-1] == "completed"


async def test_job_requests_are_json_postgresql_can_query(url):
    async with Store.open(url) as s:
        (job_id,) = await s.add_jobs([NewJob("local", "tiktok", "sarah", "t", {"voice": "amy", "n": 2})])
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT request->>'voice', request FROM video_generations WHERE id = %s", (job_id,))
        assert await cur.fetchone() == ("amy", {"voice": "amy", "n": 2})


async def test_a_run_basis_waits_for_research_that_is_being_inserted(url):
    """Ids from a sequence commit out of order: a basis read past an uncommitted research row would mark
    it considered before any run saw it. Research inserts and the basis take one lock instead."""
    from avatar_daemon.store.postgres import _LOCKS, _RESEARCH

    async def basis_is_waiting() -> bool:
        async with await psycopg.AsyncConnection.connect(url) as probe:
            cur = await probe.execute(f"SELECT count(*) FROM pg_locks WHERE {THIS_DATABASE} "
                                      "AND locktype = 'advisory' AND NOT granted")
            return (await cur.fetchone())[0] == 1

    async with Store.open(url) as store:
        campaign = await store.upsert_campaign("daily", None, "{}")
        async with await psycopg.AsyncConnection.connect(url) as inserting:  # a transaction left open
            await inserting.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, _RESEARCH))
            cur = await inserting.execute(
                "INSERT INTO research_jobs (content_hash, source, title, topic, research, script, created_at) "
                "VALUES ('h', 'hackernews', 't', 'x', '{}', '{}', now()) RETURNING id")
            (research_id,) = await cur.fetchone()
            basis = asyncio.create_task(store.campaign_run_basis(campaign.id))
            await wait_until(basis_is_waiting)
            await inserting.commit()
        assert (await basis).research_through == research_id


def test_without_a_server_the_postgresql_tests_skip_saying_how_but_fail_in_ci(monkeypatch):
    from tests import postgres

    monkeypatch.setenv("AVATAR_DAEMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:1/none")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="AVATAR_DAEMON_TEST_POSTGRES=postgresql://... or start"):
        postgres.server()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        postgres.server()
