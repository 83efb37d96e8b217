"""Several daemons on one PostgreSQL: claim throughput, job throughput and failover time.

Measures, in one run:
  1. claims/s of 1, 2 and 4 stores (each its own connections, as a node has) claiming
     N queued jobs until none is left, against one SQLite store claiming the same N;
  2. jobs/s end to end with 1, 2 and 4 real `avatar-daemon run` processes on one
     PostgreSQL (the `parked` test renderer with no wait, so the 2 cores measure the
     coordination, not x264), against one daemon process on SQLite;
  3. seconds from kill -9 of a node holding jobs to those jobs running on another node
     (target: within the lease plus 5 s).
Prints each figure and its ratio to the same run's baseline. Needs PostgreSQL on
127.0.0.1:5432 (or AVATAR_DAEMON_TEST_POSTGRES).
Run: .venv/bin/python benchmarks/multi_node.py [CLAIMS] [JOBS]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avatar_daemon.store import NewJob, Store  # noqa: E402
from tests.postgres import scratch_database  # noqa: E402

LEASE = 3.0


def new_jobs(n: int, renderer: str = "parked") -> list[NewJob]:
    return [NewJob(renderer=renderer, format="tiktok", avatar_id="sarah", title=f"bench {i}",
                   request={"script": {"title": f"bench {i}", "text": f"Benchmark job number {i}.",
                                       "estimated_seconds": 2.0}})
            for i in range(n)]


async def claim_all(database: str | Path, nodes: int, n: int) -> float:
    """Queue n jobs, then `nodes` stores claim (and complete) them as fast as they can; claims/s."""
    async with Store.open(database, node_id="seed") as seed:
        await seed.add_jobs(new_jobs(n))
    claimed: list[int] = []

    async def node(i: int) -> None:
        async with Store.open(database, node_id=f"bench-{i}") as store:
            await start.wait()
            while (job := await store.claim_next("parked", f"bench-{i}", LEASE)) is not None:
                claimed.append(job.id)

    start = asyncio.Event()
    tasks = [asyncio.create_task(node(i)) for i in range(nodes)]
    await asyncio.sleep(0.5)  # every store connected
    t0 = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - t0
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == n, "a job was claimed twice or never"
    return n / seconds


def config(tmp: Path, name: str, database: str, **jobs) -> Path:
    own = tmp / name
    own.mkdir(parents=True, exist_ok=True)
    path = own / "daemon.yaml"
    path.write_text(json.dumps({
        "node_id": name, "data_dir": str(own / "var"), "database": database,
        "inbox": {"path": str(tmp / "inbox")}, "jobs": {"output_dir": str(tmp / "videos"), "lease_seconds": LEASE,
                                                       **jobs},
        "http": {"enabled": False}, "default_renderer": "parked", "notifiers": [],
        "campaigns_dir": str(tmp / "campaigns"),
        "plugins": {"plugins_dir": str(REPO / "tests/fixtures/cluster_plugins"),
                    "only": ["formats", "template_writer", "parked_renderer"]},
    }))
    return path


def spawn(path: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.fast_clock_daemon", "--config", str(path)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "FAST_CLOCK_START": datetime.now(timezone.utc).isoformat(),
            "FAST_CLOCK_ORIGIN": repr(time.time()), "FAST_CLOCK_SPEED": "1", **extra}


async def count(database: str | Path, sql_status: str) -> int:
    async with Store.open(database, node_id="bench-watch", migrate=False) as store:
        return (await store.counts()).get(sql_status, 0)


def end_to_end(database: str | Path, daemons: int, n: int) -> float:
    """`daemons` processes up and idle, then n jobs queued at once; jobs/s from the queueing to the last done.

    The parked renderer does not wait, so this is the cost of claiming, leasing, fencing and
    announcing each job (and of the wake-ups), not of rendering.
    """
    tmp = Path(tempfile.mkdtemp())
    env = environment(PARKED_SECONDS="0", PARKED_CONCURRENCY="8")
    procs = [spawn(config(tmp, f"e2e-{i}", str(database)), env) for i in range(daemons)]
    try:
        while asyncio.run(_nodes(database)) < daemons:  # every daemon has heartbeat: all are running
            time.sleep(0.1)
        t0 = time.perf_counter()
        asyncio.run(_queue(database, n))
        while asyncio.run(count(database, "completed")) < n:
            time.sleep(0.05)
        return n / (time.perf_counter() - t0)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


async def _nodes(database: str | Path) -> int:
    async with Store.open(database, node_id="bench-watch") as store:
        return len(await store.nodes())


async def _queue(database: str | Path, n: int) -> None:
    async with Store.open(database, node_id="seed") as store:
        await store.add_jobs(new_jobs(n))


async def _held_by(database: str, node: str) -> set[int]:
    async with Store.open(database, node_id="bench-watch", migrate=False) as store:
        return {j.id for j in await store.jobs("rendering", 1000) if j.claimed_by == node}


def failover(database: str) -> float:
    """Two nodes with long renders; kill -9 the one holding jobs; seconds until they run on the other."""
    asyncio.run(_queue(database, 4))
    tmp = Path(tempfile.mkdtemp())
    env = environment(PARKED_SECONDS="60", PARKED_CONCURRENCY="4")
    victim = spawn(config(tmp, "victim", database), env)
    while len(held := asyncio.run(_held_by(database, "victim"))) < 4:
        time.sleep(0.05)
    survivor = spawn(config(tmp, "survivor", database), env)
    try:
        time.sleep(2)  # the survivor is up and idle: nothing is queued
        victim.kill()
        victim.wait()
        killed = time.perf_counter()
        while asyncio.run(_held_by(database, "survivor")) != held:
            time.sleep(0.05)
        return time.perf_counter() - killed
    finally:
        survivor.terminate()
        survivor.wait(timeout=30)


def main() -> None:
    claims = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    print(f"claim throughput, {claims} jobs:")
    sqlite = asyncio.run(claim_all(Path(tempfile.mkdtemp()) / "claims.sqlite3", 1, claims))
    print(f"  baseline: 1 node on SQLite     {sqlite:8.0f} claims/s")
    for nodes in (1, 2, 4):
        with scratch_database("bench_claims") as url:
            rate = asyncio.run(claim_all(url, nodes, claims))
        print(f"  {nodes} node(s) on PostgreSQL      {rate:8.0f} claims/s   x{rate / sqlite:.2f} of SQLite")

    print(f"end-to-end job throughput, {jobs} jobs queued at once into running daemons (parked renderer, no wait):")
    base = end_to_end(Path(tempfile.mkdtemp()) / "e2e.sqlite3", 1, jobs)
    print(f"  baseline: 1 daemon on SQLite   {base:8.1f} jobs/s")
    for daemons in (1, 2, 4):
        with scratch_database("bench_e2e") as url:
            rate = end_to_end(url, daemons, jobs)
        print(f"  {daemons} daemon(s) on PostgreSQL    {rate:8.1f} jobs/s     x{rate / base:.2f} of SQLite")

    with scratch_database("bench_failover") as url:
        seconds = failover(url)
    verdict = "within" if seconds <= LEASE + 5 else "OVER"
    print(f"failover: kill -9 to the jobs running elsewhere: {seconds:.2f} s (lease {LEASE:g} s; target lease + 5 s "
          f"= {LEASE + 5:g} s: {verdict})")


if __name__ == "__main__":
    main()
