"""Inbox burst: 1,000 mixed research files dropped at once into a running daemon, rendering parked.

Prints files/s, p50/p99 latency from drop to job queued, peak RSS, and the floor measured
in the same run: parsing the same files and inserting the same rows in a plain loop.
Run: .venv/bin/python benchmarks/inbox_burst.py [N]
"""

from __future__ import annotations

import asyncio
import json
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, running, wait_until  # noqa: E402


class ParkedRenderer(FakeRenderer):
    """Takes one job and holds it until the daemon stops: the queue fills, nothing renders."""

    def __init__(self):
        super().__init__(max_concurrency=1)

    async def render(self, request, progress):
        await asyncio.Event().wait()

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "research"
KINDS = ["hn_algolia.json", "github_search.json", "praw_records.json", "research_job.json", "serpapi.json"]


def files(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        name = KINDS[i % len(KINDS)]
        payload = json.loads((FIXTURES / name).read_text())
        # unique content, so the hash dedup does not skip any
        wrapped = {"request": {"title": f"Burst {i}"}, "research": payload}
        out.append((f"burst-{i:04d}.json", json.dumps(wrapped).encode()))
    return out


async def burst(n: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    daemon = make_daemon(tmp, plugins=[RecordingPlugin(ParkedRenderer())], http={"enabled": False},
                         inbox={"workers": 16, "settle_seconds": 0.05})
    batch = files(n)
    async with running(daemon):
        dropped: dict[str, float] = {}

        def producer() -> None:
            """Another program dropping files: it must not borrow the daemon's event loop."""
            for name, data in batch:
                tmp_file = daemon.inbox.root / (name + ".part")
                tmp_file.write_bytes(data)
                tmp_file.rename(daemon.inbox.root / name)
                dropped[name] = time.time()

        start = time.time()
        await asyncio.to_thread(producer)
        await wait_until(lambda: daemon.inbox.stats.processed + daemon.inbox.stats.failed >= n, timeout=300)
        elapsed = time.time() - start
        rows = await daemon.store.db.execute_fetchall("SELECT filename, created_at FROM research_jobs")
    latencies = sorted(datetime.fromisoformat(r[1]).timestamp() - dropped[r[0]] for r in rows)
    done = len(list(daemon.inbox.done.iterdir()))
    failed = len([p for p in daemon.inbox.failed.iterdir() if not p.name.endswith(".txt")])
    print(f"daemon: {n} files in {elapsed:.2f} s = {n / elapsed:.0f} files/s; "
          f"p50 {latencies[len(latencies) // 2]:.3f} s, p99 {latencies[int(len(latencies) * 0.99) - 1]:.3f} s; "
          f"done {done}, failed {failed}, jobs {len(rows)}; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    assert done + failed == n, "a file went missing"

    # the floor: same parsing, same rows, a plain loop into SQLite
    db = sqlite3.connect(tmp / "floor.sqlite3")
    db.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, filename TEXT, research TEXT)")
    t0 = time.time()
    for name, data in batch:
        payload = json.loads(data)["research"]
        db.execute("INSERT INTO r (filename, research) VALUES (?, ?)", (name, json.dumps(payload)))
        db.commit()
    floor = time.time() - t0
    print(f"floor: {n} files in {floor:.2f} s = {n / floor:.0f} files/s; daemon is {elapsed / floor:.1f}x the floor")


if __name__ == "__main__":
    asyncio.run(burst(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
