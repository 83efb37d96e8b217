"""The inbox end to end: a real daemon, real files, a real SQLite database."""

import asyncio
import json
import os

from avatar_daemon.testing import drop, make_daemon, running, wait_until
from tests.conftest import fixture_bytes


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_good_file_makes_jobs_and_moves_to_done(daemon, plugin):
    async with running(daemon):
        drop(daemon, "hn.json", fixture_bytes("hn_algolia.json"))
        await wait_until(lambda: _files(daemon.inbox.done) == ["hn.json"])
        jobs = await daemon.store.jobs()
        assert len(jobs) == 1 and jobs[0].format == "tiktok"
        await wait_until(lambda: "completed" in plugin.notifier.states(jobs[0].id))
    assert plugin.notifier.states(jobs[0].id)[0] == "queued"
    assert plugin.notifier.states(jobs[0].id)[-1] == "completed"
    events = [e.state.value for e in await _events(daemon, jobs[0].id)]
    assert events[0] == "queued" and events[-1] == "completed" and "rendering" in events


async def _events(daemon, job_id):
    from avatar_daemon.store import Store

    async with Store.open(daemon.settings.database) as store:
        return await store.events(job_id)


async def test_envelope_makes_one_job_per_format(daemon):
    env = {"request": {"formats": ["tiktok", "youtube", "square"], "avatar": "mike"},
           "research": json.loads(fixture_bytes("research_job.json"))}
    async with running(daemon):
        drop(daemon, "env.json", json.dumps(env))
        await wait_until(lambda: "env.json" in _files(daemon.inbox.done))
        jobs = await daemon.store.jobs()
    assert sorted(j.format for j in jobs) == ["square", "tiktok", "youtube"]
    assert {j.avatar_id for j in jobs} == {"mike"}
    assert len({j.research_job_id for j in jobs}) == 1


BAD = {
    "broken.json": (b'{"hits": [1, 2', "not valid JSON"),
    "empty.json": (b"", "the file is empty"),
    "junk.json": (bytes(range(256)) * 4, "not text"),
    "shape.json": (b'{"weather": "sunny"}', "no source recognises this dict"),
    "deleted.json": (b'[{"id": 5, "deleted": true, "type": "story"}]', "no stories left"),
}


async def test_bad_files_fail_with_sidecar_and_daemon_keeps_running(daemon):
    async with running(daemon):
        for name, (data, _) in BAD.items():
            drop(daemon, name, data)
        await wait_until(lambda: len([f for f in _files(daemon.inbox.failed) if not f.endswith(".txt")]) == len(BAD))
        drop(daemon, "good.json", fixture_bytes("github_search.json"))
        await wait_until(lambda: "good.json" in _files(daemon.inbox.done))
    for name, (data, reason) in BAD.items():
        assert (daemon.inbox.failed / name).read_bytes() == data  # nothing lost, byte for byte
        sidecar = (daemon.inbox.failed / f"{name}.error.txt").read_text()
        assert sidecar.startswith(name) and reason in sidecar


async def test_huge_file_refused_by_size(tmp_path, plugin):
    daemon = make_daemon(tmp_path, plugins=[plugin], inbox={"max_file_bytes": 1000})
    async with running(daemon):
        drop(daemon, "big.json", b"[" + b"1," * 2000 + b"1]")
        await wait_until(lambda: "big.json.error.txt" in _files(daemon.inbox.failed))
    assert "over the inbox limit of 1000 bytes" in (daemon.inbox.failed / "big.json.error.txt").read_text()


async def test_ignored_names_are_left_alone(daemon):
    async with running(daemon):
        for name in (".hidden.json", "x.json.tmp", "y.json.part"):
            (daemon.inbox.root / name).write_bytes(fixture_bytes("hn_algolia.json"))
        # A file after them: once it is taken, the watcher has reported (and the inbox passed over) those before it.
        drop(daemon, "after.json", fixture_bytes("github_search.json"))
        await wait_until(lambda: "after.json" in _files(daemon.inbox.done))
        assert sorted(p.name for p in daemon.inbox.root.iterdir() if p.is_file()) == [
            ".hidden.json", "x.json.tmp", "y.json.part"]
        made_from = {(await daemon.store.research_job(j.research_job_id)).filename for j in await daemon.store.jobs()}
        assert made_from == {"after.json"}


async def test_half_written_file_waits_until_stable(tmp_path, plugin):
    data = fixture_bytes("hn_algolia.json")
    daemon = make_daemon(tmp_path, plugins=[plugin], inbox={"settle_seconds": 1.0})
    async with running(daemon):
        path = daemon.inbox.root / "slow.json"
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            for _ in range(4):  # the writer keeps going for a while, pausing under the settle time
                await asyncio.sleep(0.2)
                os.utime(path)
            f.write(data[len(data) // 2:])
        await wait_until(lambda: "slow.json" in _files(daemon.inbox.done))
    assert _files(daemon.inbox.failed) == []


async def test_redrop_makes_no_duplicate_jobs_and_says_so(daemon):
    async with running(daemon):
        drop(daemon, "a.json", fixture_bytes("hn_items.json"))
        await wait_until(lambda: "a.json" in _files(daemon.inbox.done))
        drop(daemon, "a.json", fixture_bytes("hn_items.json"))
        await wait_until(lambda: "a.1.json.duplicate.txt" in _files(daemon.inbox.done))
        jobs = await daemon.store.jobs()
    assert len(jobs) == 1
    assert _files(daemon.inbox.done) == ["a.1.json", "a.1.json.duplicate.txt", "a.json"]
    note = (daemon.inbox.done / "a.1.json.duplicate.txt").read_text()
    assert note.startswith(f"a.1.json: no new video: the same content was already taken as research "
                           f"#{jobs[0].research_job_id} (videos #{jobs[0].id})")


async def test_crash_between_claim_and_commit_recovers_once(tmp_path, plugin):
    first = make_daemon(tmp_path, plugins=[plugin])
    first.inbox.prepare()
    # A claimed file whose jobs were committed before the crash, and one whose were not.
    (first.inbox.processing / "committed.json").write_bytes(fixture_bytes("github_search.json"))
    (first.inbox.processing / "fresh.json").write_bytes(fixture_bytes("hn_algolia.json"))
    async with first.started():
        await first.pipeline.ingest(fixture_bytes("github_search.json"), "committed.json", ".json")
    second = make_daemon(tmp_path, plugins=[plugin])
    async with running(second):
        await wait_until(lambda: _files(second.inbox.processing) == [] and len(_files(second.inbox.done)) == 2)
        jobs = await second.store.jobs()
    assert len(jobs) == 2  # one per file, never two for the committed one


async def test_files_dropped_while_down_are_picked_up(tmp_path, plugin):
    daemon = make_daemon(tmp_path, plugins=[plugin])
    daemon.inbox.prepare()
    (daemon.inbox.root / "early.json").write_bytes(fixture_bytes("serpapi.json"))
    async with running(daemon):
        await wait_until(lambda: "early.json" in _files(daemon.inbox.done))
