"""`avatar-daemon db copy` and `db migrate`: a SQLite install moves to PostgreSQL with nothing lost."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from avatar_daemon.cli import main
from avatar_daemon.models import JobState
from avatar_daemon.store import NewPublication, Pick, Store
from tests.postgres import scratch_database
from tests.test_store import T0, Clock, event, job, research


def run(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out = capsys.readouterr()
    return done.value.code, out.out + out.err


async def _fill(store: Store) -> None:
    """Some of everything a single-machine install holds."""
    r, s = research(1)
    _, (done_id, running_id), _ = await store.add_research_with_jobs("h1", r, s, "one.json", [job(), job("heygen")],
                                                                     workspace_id="acme")
    claimed = await store.claim(done_id)
    await store.record_event(event(done_id, JobState.rendering, "half", percent=50, at=T0), fence=claimed.fence)
    await store.record_event(event(done_id, JobState.completed, "done", percent=100, at=T0),
                             {"video": "v.mp4", "render_seconds": 3.0}, fence=claimed.fence)
    await store.claim(running_id)
    await store.record_event(event(running_id, JobState.rendering, "submitted", at=T0, data={"external_id": "hg-9"}))
    await store.record_usage(running_id, "heygen", 42.0, None)
    await store.add_analytics(done_id, "view", "tiktok")
    campaign = await store.upsert_campaign("daily", "daily.yaml", '{"name": "daily"}')
    await store.set_campaign_paused("daily", True)
    await store.set_campaign_schedule(campaign.id, T0)
    r2, s2 = research(2)
    await store.record_campaign_run(await store.campaign_run_basis(campaign.id),
                                    [Pick(None, r2, "live-2", s2, [job()], ["insight 2"], "fresh")],
                                    trigger="schedule", slot=T0, next_run_at=T0 + timedelta(days=1),
                                    considered=[{"research_id": None, "verdict": "chosen"}], message="1 video",
                                    ran_at=T0)
    await store.set_meta("heygen_webhook_secret", "s3cret")
    await store.heartbeat_node(store.node_id, "host", T0, ["local"])
    await store.request_publications(done_id, [NewPublication("youtube", "acme", {"privacy": "unlisted"}),
                                               NewPublication("tiktok", "acme-tt")], "campaign daily")
    pub = await store.claim_publication(["youtube"])
    await store.save_publication(pub.id, pub.fence, state="uploading", facts={"session": "https://u/s1",
                                                                              "offset": 262144})
    await store.end_publication(pub.id, pub.fence, "published", remote_id="yt1", url="https://youtu.be/yt1")
    await store.record_figures(pub.id, views=12, likes=3, comments=1)


async def _everything(store: Store) -> dict:
    jobs = await store.jobs(limit=1000)
    campaign = await store.campaign_row("daily")
    return {
        "jobs": [j.public() for j in jobs],
        "events": {j.id: await store.events(j.id) for j in jobs},
        "research": await store.research_page(None),
        "campaign": campaign,
        "runs": await store.campaign_runs(campaign.id),
        "insights": await store.used_insights(campaign.id),
        "totals": await store.campaign_totals(),
        "analytics": await store.analytics(None),
        "usage": await store.usage("heygen", T0 - timedelta(days=1)),
        "meta": (await store.instance_id(), await store.get_meta("heygen_webhook_secret")),
        "nodes": await store.nodes(),
        "publications": {j.id: await store.publications(j.id) for j in jobs},
    }


def test_copy_moves_everything_and_new_rows_continue_after_the_copied_ids(tmp_path, capsys):
    """Sync: the command runs its own event loop, as it does from a shell."""
    clock = Clock()
    source = tmp_path / "var" / "db.sqlite3"

    async def fill() -> dict:
        async with Store.open(source, clock, node_id="solo") as s:
            await _fill(s)
            return await _everything(s)

    async def after_the_move(url: str) -> tuple[dict, int, int]:
        async with Store.open(url, clock, node_id="solo") as pg:
            seen = await _everything(pg)
            (new_job,) = await pg.add_jobs([job()])
            run_id, _ = await pg.record_campaign_run(await pg.campaign_run_basis(seen["campaign"].id), [],
                                                     trigger="manual", slot=None, next_run_at=None, considered=[],
                                                     message="after the move", ran_at=T0)
        return seen, new_job, run_id

    before = asyncio.run(fill())
    with scratch_database("copy") as url:
        code, out = run(capsys, "db", "copy", "--from", str(source), "--to", url)
        assert code == 0, out
        assert re.search(r"video_generations +3\n", out) and re.search(r"events +6\n", out), out
        seen, new_job, new_run = asyncio.run(after_the_move(url))
        assert seen == before
        assert new_job == 4 and new_run == 2

        code, out = run(capsys, "db", "copy", "--from", str(source), "--to", url)
        assert code == 1 and "already holds 4 row(s) in video_generations" in out and "nothing was copied" in out


def test_copy_refuses_what_it_cannot_copy(tmp_path, capsys):
    code, out = run(capsys, "db", "copy", "--from", str(tmp_path / "missing.sqlite3"),
                    "--to", "postgresql://postgres@127.0.0.1/x")
    assert code == 1 and "missing.sqlite3: no such SQLite database" in out
    code, out = run(capsys, "db", "copy", "--from", str(tmp_path / "a.sqlite3"), "--to", str(tmp_path / "b.db"))
    assert code == 1 and "expected postgresql://user@host/dbname" in out


def test_migrate_upgrades_a_database_before_the_daemons_restart(tmp_path, capsys):
    with scratch_database("migrate") as url:
        code, out = run(capsys, "db", "migrate", "--database", url)
        assert code == 0 and "applied 0001_init.sql" in out
        code, out = run(capsys, "db", "migrate", "--database", url)
        assert code == 0 and "already up to date" in out
    (tmp_path / "daemon.yaml").write_text("database: var/db.sqlite3\n")
    code, out = run(capsys, "--config", str(tmp_path / "daemon.yaml"), "db", "migrate")
    assert code == 0 and "applied 0001_init.sql, 0002_meta_usage.sql" in out
    assert (tmp_path / "var" / "db.sqlite3").is_file()
