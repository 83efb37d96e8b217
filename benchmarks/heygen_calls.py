"""HeyGen API calls per video: 200 videos through the fake HeyGen, ours against the seed's polling.

Render times are HeyGen-like (3 to 15 minutes) scaled down 600x, with HeyGen's 10-job
concurrency cap. Three runs in one process, each on a fresh fake and database:

  webhooks   the daemon with a registered webhook (5% of deliveries dropped, 5% sent
             twice) and polling as its safety net;
  polling    the daemon with no public URL: status calls only;
  uncapped   polling again, with creates not held to HeyGen's render cap (account_concurrency
             far above it: the daemon before it had one), the baseline for creates per video;
  seed       the seed's strategy: create, then poll every 5 s for at most 10 minutes
             (given our concurrency cap, so only the waiting differs);
  two nodes  polling, two daemons on one PostgreSQL sharing the key, each with
             account_concurrency at the key's 10: the cap must hold for both together
             (skipped when no PostgreSQL is reachable).

Prints calls per video by endpoint, wall time, and checks every video completed and was
downloaded once, and none was created twice. Run: .venv/bin/python benchmarks/heygen_calls.py [N]
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from avatar_daemon.settings import load_settings  # noqa: E402
from avatar_daemon.store import NewJob  # noqa: E402
from avatar_daemon.testing import make_daemon, make_settings, running, wait_until  # noqa: E402
from avatar_daemon_plugins.heygen.client import HeyGenClient  # noqa: E402
from tests.fake_heygen import API_KEY, FakeHeyGen  # noqa: E402
from tests.postgres import scratch_database  # noqa: E402

SCALE = 600.0                   # one real minute is 0.1 s here
RENDER_MINUTES = (3, 15)
FIXTURE = Path(__file__).resolve().parents[1] / "tests/fixtures/research/hn_algolia.json"


def fake_heygen(tmp: Path, webhook: bool) -> FakeHeyGen:
    lo, hi = RENDER_MINUTES
    media = tmp / "media"
    media.mkdir()
    fake = FakeHeyGen(media, render_seconds=(lo + hi) / 2 * 60 / SCALE, render_jitter=(hi - lo) / (hi + lo),
                      concurrency=10, retry_after=1.0 / SCALE * 60, seed=7)
    if webhook:
        fake.webhook_drop, fake.webhook_duplicate = 0.05, 0.05
    profiles = load_settings(None, environ={}).avatars.values()
    fake.looks = {p.renderer_ids["heygen"]: {"id": p.renderer_ids["heygen"]} for p in profiles}
    fake.voices = [{"voice_id": p.voice_ids["heygen"], "type": "public"} for p in profiles]
    return fake


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def daemon_run(n: int, webhook: bool, account_concurrency: int = 10, database: str | None = None) -> dict:
    """One daemon, or with `database` (PostgreSQL) two daemons on it: the first ingests, either renders."""
    tmp = Path(tempfile.mkdtemp())
    fake = fake_heygen(tmp, webhook)
    async with fake.serve(), contextlib.AsyncExitStack() as others:
        port = free_port()
        cfg = {"base_url": fake.url, "upload_url": fake.url, "max_concurrency": 10,
               # HeyGen's real defaults, scaled: first poll >= 30 s, backoff x1.6 up to 5 min
               "poll_first_seconds": 30 / SCALE, "poll_max_interval_seconds": 300 / SCALE,
               "render_ratio": 6.0 / SCALE, "progress_tick_seconds": 2.0 / SCALE * 60,
               "backoff_seconds": 1 / SCALE, "retry_after_cap_seconds": 1.0, "check_quota": True,
               "quota_cache_seconds": 300 / SCALE,
               "account_concurrency": account_concurrency}
        if webhook:
            cfg["public_url"] = f"http://127.0.0.1:{port}"
        shared = {"database": database} if database else {}
        settings = make_settings(tmp, http={"port": port}, default_renderer="heygen", notifiers=[],
                                 plugins={"settings": {"heygen": cfg}}, node_id="n1", **shared)
        daemon = make_daemon(tmp, settings=settings)
        if database:
            (tmp / "n2").mkdir()
            second = make_settings(tmp / "n2", http={"enabled": False}, default_renderer="heygen", notifiers=[],
                                   plugins={"settings": {"heygen": cfg}}, node_id="n2", **shared)
            await others.enter_async_context(running(make_daemon(tmp / "n2", settings=second)))
        start = time.monotonic()
        async with running(daemon):
            if webhook:
                await wait_until(lambda: fake.endpoints, timeout=30)
            ingested = await daemon.pipeline.ingest(FIXTURE.read_bytes(), "hn.json", ".json")
            job = await daemon.store.job(ingested.job_ids[0])
            more = [NewJob("heygen", "tiktok", "sarah", f"{job.title} {i}", {}) for i in range(n - 1)]
            ids = ingested.job_ids + await daemon.store.add_jobs(more, ingested.research_id)
            daemon.jobs.wake.set()

            async def finished():
                counts = await daemon.store.counts()
                return sum(counts.get(s, 0) for s in ("completed", "failed", "timeout")) >= n

            with contextlib.suppress(TimeoutError):  # reported below as not completed
                await wait_until(finished, timeout=300 if database else 3600, interval=0.2)
            wall = time.monotonic() - start
            jobs = [await daemon.store.job(i) for i in ids]
        downloaded = sum(1 for j in jobs if j.result and Path(j.result["video"]).stat().st_size > 0)
        return {"wall": wall, "calls": dict(fake.calls), "videos": len(fake.videos), "n": n,
                "completed": sum(j.status == "completed" for j in jobs), "downloaded": downloaded,
                "errors": collections.Counter(j.error for j in jobs if j.error)}


async def two_node_run(n: int) -> dict | None:
    try:
        with scratch_database("heygen_bench") as url:
            return await daemon_run(n, webhook=False, database=url)
    except BaseException as exc:  # pytest's skip, raised when no PostgreSQL answers
        if type(exc).__name__ != "Skipped":
            raise
        print(f"two nodes: skipped ({exc})")
        return None


async def seed_run(n: int) -> dict:
    """The seed: POST, then GET status every 5 s for 10 minutes, then give up."""
    tmp = Path(tempfile.mkdtemp())
    fake = fake_heygen(tmp, webhook=False)
    async with fake.serve(), aiohttp.ClientSession() as session:
        client = HeyGenClient(session, API_KEY, fake.url, backoff=1 / SCALE, retry_after_cap=1.0)
        cap = asyncio.Semaphore(10)
        results = collections.Counter()

        async def one(i: int) -> None:
            async with cap:
                created = await client.create_video({"type": "avatar", "avatar_id": next(iter(fake.looks)),
                                                     "voice_id": "v", "script": f"Video {i}.",
                                                     "aspect_ratio": "9:16"}, f"seed-{i}")
                for _ in range(120):
                    await asyncio.sleep(5 / SCALE)
                    video = await client.get_video(created.video_id)
                    if video.status in ("completed", "failed"):  # the seed polled until one of these
                        if video.status == "completed":
                            dest = tmp / f"{i}.mp4"
                            await client.download(video.video_url, dest, 10**9)
                        results[video.status] += 1
                        return
                results["gave up after 10 minutes"] += 1

        start = time.monotonic()
        await asyncio.gather(*[one(i) for i in range(n)])
        return {"wall": time.monotonic() - start, "calls": dict(fake.calls), "videos": len(fake.videos), "n": n,
                "completed": results["completed"], "downloaded": results["completed"], "errors": results}


def creates(r: dict) -> float:
    return sum(v for k, v in r["calls"].items() if k == "create_video") / r["n"]


def report(name: str, r: dict) -> float:
    n = r["n"]
    status = r["calls"].get("get_video", 0) / n
    per = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(r["calls"].items()) if k != "unknown")
    print(f"{name:<9} wall {r['wall']:6.1f} s ({r['wall'] * SCALE / 3600:5.1f} h real)  completed {r['completed']}/{n}"
          f"  downloaded {r['downloaded']}  created {r['videos']}  status calls/video {status:5.2f}")
    print(f"          calls per video: {per}")
    if r["errors"]:
        print(f"          not completed: {dict(r['errors'])}")
    return status


async def main(n: int) -> int:
    os.environ["HEYGEN_API_KEY"] = API_KEY
    print(f"{n} videos, HeyGen renders {RENDER_MINUTES[0]}-{RENDER_MINUTES[1]} min scaled {SCALE:g}x, "
          "10 concurrent jobs per key")
    hooked = await daemon_run(n, webhook=True)
    polled = await daemon_run(n, webhook=False)
    uncapped = await daemon_run(n, webhook=False, account_concurrency=10_000)
    seed = await seed_run(n)
    pair = await two_node_run(n)
    a, b, c = report("webhooks", hooked), report("polling", polled), report("seed", seed)
    report("uncapped", uncapped)
    if pair:
        report("two nodes", pair)
        print(f"two nodes: creates per video {creates(pair):.2f}, refused creates (429) "
              f"{pair['calls'].get('create_video', 0) - pair['videos']}")
    print(f"status calls vs the seed: webhooks {c / max(a, 1e-9):.1f}x fewer, polling {c / max(b, 1e-9):.1f}x fewer")
    print(f"creates per video: webhooks {creates(hooked):.2f}, polling {creates(polled):.2f}, uncapped "
          f"{creates(uncapped):.2f} ({creates(uncapped) / max(creates(polled), 1e-9):.1f}x the capped polling run)")
    ok = (all(r["completed"] == r["downloaded"] == n and r["videos"] == n for r in (hooked, polled))
          and a <= 3 and b <= 12 and max(creates(hooked), creates(polled)) <= 1.1)
    print("targets (all completed and downloaded, none created twice, <= 3 status calls with webhooks, "
          f"<= 12 polling only, <= 1.1 creates per video): {'met' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)))
