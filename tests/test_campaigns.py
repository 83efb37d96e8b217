"""Campaigns: schedules in their timezone, hot-reloaded files, runs that pick, dedup and record.

The clock is simulated (make_daemon(clock=...), shared by the store and the scheduler), so nothing here sleeps until a
schedule fires; files are real YAML edited on disk, the store is real SQLite, and live
fetches go to a fake Reddit / HN / GitHub / Google Trends on 127.0.0.1.
"""

import asyncio
import json
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp import web

from avatar_daemon.campaigns.schema import Campaign, Schedule
from avatar_daemon.campaigns.service import load_campaign
from avatar_daemon.cli import campaign_schema
from avatar_daemon.daemon import Daemon
from avatar_daemon.errors import ConfigError
from avatar_daemon.plugin_loading import LoadSpec
from avatar_daemon.testing import RecordingPlugin, make_daemon, make_settings, running, wait_until
from avatar_daemon.yamlfile import YamlDocument
from tests.conftest import FIXTURES, REPO

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# ---- schedules ------------------------------------------------------------------------


def test_daily_runs_at_local_time_in_its_zone():
    s = Schedule(every="daily", at="09:00", timezone="America/New_York")
    assert s.next_after(at("2026-11-24T12:00:00+00:00")) == at("2026-11-24T14:00:00+00:00")  # 09:00 EST
    assert s.next_after(at("2026-07-01T12:00:00+00:00")) == at("2026-07-01T13:00:00+00:00")  # 09:00 EDT


def test_spring_forward_runs_after_the_gap_and_fall_back_runs_once():
    s = Schedule(every="daily", at="02:30", timezone="Europe/Berlin")
    # 2026-03-29: 02:00 -> 03:00, so 02:30 does not exist: the run comes at 03:00 CEST (01:00 UTC)
    assert s.next_after(at("2026-03-28T12:00:00+00:00")) == at("2026-03-29T01:00:00+00:00")
    # 2026-10-25: 03:00 -> 02:00, so 02:30 happens twice: one run, the first (00:30 UTC)
    first = s.next_after(at("2026-10-24T12:00:00+00:00"))
    assert first == at("2026-10-25T00:30:00+00:00")
    assert s.next_after(first) == at("2026-10-26T01:30:00+00:00")  # not again at 01:30 UTC on the 25th


def test_weekly_biweekly_and_cron():
    weekly = Schedule(every="weekly", day="friday", at="16:00", timezone="Europe/London")
    assert weekly.next_after(at("2026-11-24T00:00:00+00:00")) == at("2026-11-27T16:00:00+00:00")
    biweekly = Schedule(every="biweekly", day="monday", at="10:30", timezone="UTC", starts=date(2026, 11, 23))
    first = biweekly.next_after(at("2026-11-24T00:00:00+00:00"))
    assert first == at("2026-12-07T10:30:00+00:00")
    assert biweekly.next_after(first) == at("2026-12-21T10:30:00+00:00")
    cron = Schedule(cron="0 9 * * 1-5", timezone="UTC")
    assert cron.next_after(at("2026-11-27T10:00:00+00:00")) == at("2026-11-30T09:00:00+00:00")  # Fri -> Mon


@pytest.mark.parametrize("schedule, message", [
    ({"every": "daily", "timezone": "Mars/Olympus"}, "not a known timezone"),
    ({"every": "daily", "cron": "0 9 * * *"}, "either `every`"),
    ({"cron": "61 * * * *"}, "is not valid"),
    ({"every": "daily", "at": "25:00"}, "not a time like 09:00"),
])
def test_bad_schedules_are_refused_with_the_reason(tmp_path, schedule, message):
    f = tmp_path / "c.yaml"
    f.write_text(json.dumps({"name": "c", "sources": [{"source": "reddit"}], "schedule": schedule}, indent=1))
    with pytest.raises(ConfigError) as err:
        YamlDocument.load(f).validate(Campaign)
    assert message in str(err.value) and str(f) in str(err.value)


@pytest.mark.parametrize("cron, reason", [("61 * * * *", "is not valid: Bad minute"),
                                          ("*/5 * * * * *", "needs 5 fields"), ("@daily", "needs 5 fields")])
def test_a_bad_cron_is_reported_at_the_cron_line(tmp_path, cron, reason):
    f = tmp_path / "c.yaml"
    f.write_text(f"name: c\nsources: [{{source: reddit}}]\nschedule:\n  timezone: UTC\n  cron: '{cron}'\n")
    with pytest.raises(ConfigError) as err:
        YamlDocument.load(f).validate(Campaign)
    (problem,) = err.value.problems
    assert problem.startswith(f"{f}:5: schedule.cron: ") and reason in problem


def test_schema_export_matches_the_committed_file_and_the_examples_load():
    assert json.loads((REPO / "config/campaign.schema.json").read_text()) == campaign_schema()
    names = {YamlDocument.load(f).validate(Campaign).name for f in (REPO / "config/campaigns").glob("*.yaml")}
    assert names == {"daily-ai-trends", "weekly-hn-summary", "multi-platform-github"}


def test_the_example_files_load_through_the_plugins_that_read_their_notify_keys(tmp_path):
    """Slack has no tokens here: it still claims `notify.slack`, so the examples load on any daemon."""
    daemon, _ = campaign_daemon(tmp_path)
    notify = {f.stem: load_campaign(daemon.catalogue, f).notify for f in (REPO / "config/campaigns").glob("*.yaml")}
    assert notify["daily-ai-trends"] == {"slack": {"channel": "#ai-videos"}}
    assert notify["weekly-hn-summary"] == {"webhook": None}


def test_a_notify_key_is_checked_by_the_plugin_that_claims_it(tmp_path):
    daemon, _ = campaign_daemon(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text("name: c\nsources: [{source: reddit}]\nschedule: {every: daily}\nnotify:\n"
                    "  slack: {channel: 5, colour: red}\n  teams: {channel: general}\n  webhook: [1]\n")
    with pytest.raises(ConfigError) as err:
        load_campaign(daemon.catalogue, path)
    assert sorted(err.value.problems) == sorted([
        f"{path}:5: notify.slack.channel: Input should be a valid string",
        f"{path}:5: notify.slack.colour: Extra inputs are not permitted",
        f"{path}:6: notify.teams: no plugin reads a campaign notify key 'teams' (known: slack, webhook)",
        f"{path}:7: notify.webhook: Input should be a valid string",
    ])
    path.write_text("name: c\nsources: [{source: reddit}]\nschedule: {every: daily}\nnotify: {slack: {channel: C1}}\n")
    assert load_campaign(daemon.catalogue, path).notify == {"slack": {"channel": "C1"}}


def test_without_the_plugin_that_reads_it_a_notify_key_is_refused(tmp_path):
    daemon = Daemon(make_settings(tmp_path), LoadSpec(installed=False, disabled=["slack"]))
    path = tmp_path / "c.yaml"
    path.write_text("name: c\nsources: [{source: reddit}]\nschedule: {every: daily}\nnotify: {slack: {channel: C1}}\n")
    with pytest.raises(ConfigError) as err:
        load_campaign(daemon.catalogue, path)
    assert err.value.problems == [
        f"{path}:4: notify.slack: no plugin reads a campaign notify key 'slack' (known: webhook)"]


def test_the_old_slack_channel_still_loads_with_a_deprecation_line(tmp_path, caplog):
    daemon, _ = campaign_daemon(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text("name: c\nsources: [{source: reddit}]\nschedule: {every: daily}\nnotify:\n"
                    "  webhook: https://example.invalid/hook\n  slack_channel: '#ai'\n")
    with caplog.at_level("WARNING"):
        campaign = load_campaign(daemon.catalogue, path)
    assert campaign.notify == {"webhook": "https://example.invalid/hook", "slack": {"channel": "#ai"}}
    assert f'{path}:6: notify.slack_channel is deprecated; write notify: {{slack: {{channel: "#ai"}}}}' \
        in caplog.messages


# ---- helpers ------------------------------------------------------------------------------


def listing(titles_scores, url_prefix="https://example.com/p", age_hours=1.0):
    now = time.time()
    return {"kind": "Listing", "data": {"children": [
        {"kind": "t3", "data": {"title": t, "score": s, "url": f"{url_prefix}/{i}", "subreddit": "artificial",
                                "permalink": f"/r/artificial/comments/{abs(hash(url_prefix)) % 10**6}{i}",
                                "created_utc": now - age_hours * 3600}}
        for i, (t, s) in enumerate(titles_scores)]}}


def write_campaign(folder: Path, name="ai", filename=None, **fields) -> Path:
    data = {"name": name, "sources": [{"source": "reddit"}],
            "schedule": {"every": "daily", "at": "09:00", "timezone": "Europe/Berlin"},
            "max_videos_per_day": 2, "formats": ["tiktok"], "quality": {"min_insights": 2}, **fields}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (filename or f"{name}.yaml")
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text(json.dumps(data, indent=2))  # JSON is YAML
    tmp.replace(path)
    return path


class Clock:
    def __init__(self, now: str):
        self.now = at(now)

    def __call__(self):
        return self.now


def campaign_daemon(tmp_path, clock=None, **overrides):
    plugin = RecordingPlugin()
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=make_settings(tmp_path, **overrides), clock=clock)
    return daemon, plugin


async def ingest_listing(daemon, items, name="r.json", **kw):
    data = json.dumps(listing(items, **kw)).encode()
    return await daemon.pipeline.ingest(data, name, ".json")


def research_job(*insights: str) -> bytes:
    """The seed's research-job JSON: insights with no URL and no date, so no test depends on the calendar."""
    return json.dumps({"config": {"keywords": ["test"]}, "analysis": {"key_insights": list(insights)}}).encode()


# ---- runs --------------------------------------------------------------------------------


async def test_a_run_applies_quality_rules_dedups_and_records_why(tmp_path):
    clock = Clock("2026-11-24T07:00:00+00:00")
    daemon, plugin = campaign_daemon(tmp_path, clock)
    write_campaign(tmp_path / "campaigns", quality={"min_insights": 2, "min_score": 100,
                                                     "exclude_keywords": ["crypto"]})
    async with daemon.started():
        await daemon.campaigns.reload()
        await ingest_listing(daemon, [("New open model tops the coding charts", 900),
                                      ("AI agents replace support scripts", 500),
                                      ("Crypto AI coin moons", 800), ("Tiny post", 3)], url_prefix="https://a")
        first = await daemon.campaigns.run_now("ai")
        (job_id,) = first.job_ids  # one format, one research
        job = await daemon.store.job(job_id)
        assert job.campaign_id is not None and "coding charts" in job.request["script"]["text"]
        assert "Crypto" not in job.request["script"]["text"] and "Tiny post" not in job.request["script"]["text"]
        verdict = first.considered[0]["verdict"]
        assert verdict.startswith("chosen: 2 usable insights") and "exclude keyword" in verdict
        # the same stories again (a later fetch of the same page): their insights are used, nothing new is made
        clock.now += timedelta(hours=1)
        await ingest_listing(daemon, [("New open model tops the coding charts", 950),
                                      ("AI agents replace support scripts", 520)], url_prefix="https://a",
                             name="again.json", age_hours=2)
        again = await daemon.campaigns.run_now("ai")
        assert again.job_ids == [] and "2 already used" in again.considered[0]["verdict"]
        runs = await daemon.store.campaign_runs(job.campaign_id)
    assert [r["trigger"] for r in runs] == ["manual", "manual"] and runs[1]["job_ids"] == [job_id]
    notices = [n for n in plugin.notifier.notices if n.kind == "campaign.run"]
    assert len(notices) == 2 and "1 video(s) queued" in notices[0].message


async def test_max_videos_per_day_counts_jobs_per_local_day(tmp_path):
    clock = Clock("2026-11-24T20:00:00+00:00")  # 21:00 in Berlin
    daemon, _ = campaign_daemon(tmp_path, clock)
    write_campaign(tmp_path / "campaigns", max_videos_per_day=2, formats=["tiktok", "youtube"])
    async with daemon.started():
        await daemon.campaigns.reload()
        for n in range(3):
            await ingest_listing(daemon, [(f"Story {n} about robots", 50), (f"More {n} on robots", 40)],
                                 name=f"{n}.json", url_prefix=f"https://s{n}")
        run = await daemon.campaigns.run_now("ai")
        assert len(run.job_ids) == 2 and "today's video limit" in " ".join(c["verdict"] for c in run.considered)
        assert (await daemon.campaigns.run_now("ai")).job_ids == []
        clock.now = at("2026-11-24T23:30:00+00:00")  # 00:30 the next day in Berlin: a new day's budget
        await ingest_listing(daemon, [("Story 3 about robots", 50), ("More 3 on robots", 40)],
                             name="3.json", url_prefix="https://s3")
        assert len((await daemon.campaigns.run_now("ai")).job_ids) == 2


@pytest.fixture
async def research_campaign(tmp_path):
    """A started daemon whose campaign `ai` takes stored research (10 a day, one insight is enough), and its clock."""
    clock = Clock("2026-11-24T07:00:00+00:00")
    daemon, _ = campaign_daemon(tmp_path, clock)
    write_campaign(tmp_path / "campaigns", sources=[{"source": "research_job"}], max_videos_per_day=10,
                   quality={"min_insights": 1})
    async with daemon.started():
        await daemon.campaigns.reload()
        yield daemon, clock


async def test_research_committed_after_a_run_but_stamped_before_it_is_considered_once(research_campaign):
    """The inbox stamps a row before its transaction commits: a run in between must not lose it.

    The clock steps back for the ingest to stamp the row as the race did (before the run began,
    committed after the run had looked).
    """
    daemon, clock = research_campaign
    early = await daemon.pipeline.ingest(research_job("Early story about tides"), "early.json", ".json")
    first = await daemon.campaigns.run_now("ai")
    clock.now = at("2026-11-24T06:59:59+00:00")
    late = await daemon.pipeline.ingest(research_job("Late story about moons"), "late.json", ".json")
    clock.now = at("2026-11-24T08:00:00+00:00")
    runs = [first, await daemon.campaigns.run_now("ai"), await daemon.campaigns.run_now("ai")]
    assert [[c["research_id"] for c in r.considered] for r in runs] == [[early.research_id], [late.research_id], []]
    assert [len(r.job_ids) for r in runs] == [1, 1, 0]


async def test_upgrading_keeps_what_campaigns_had_considered_by_time(research_campaign):
    """Migration 0004 seeds each campaign's research mark from its last run, the old rule's boundary."""
    daemon, clock = research_campaign
    old = await daemon.pipeline.ingest(research_job("Seen before the upgrade"), "old.json", ".json")
    clock.now = at("2026-11-24T09:00:00+00:00")
    new = await daemon.pipeline.ingest(research_job("Arrived after the last run"), "new.json", ".json")
    db = daemon.store.db
    await db.execute("UPDATE video_campaigns SET last_run_at = '2026-11-24T08:00:00+00:00'")
    await db.execute("ALTER TABLE video_campaigns DROP COLUMN considered_through")  # as before 0004
    await db.execute("DELETE FROM schema_migrations WHERE name LIKE '0004%'")
    assert await daemon.store.migrate() == ["0004_campaign_research_mark.sql"]
    run = await daemon.campaigns.run_now("ai")
    assert old.research_id < new.research_id
    assert [c["research_id"] for c in run.considered] == [new.research_id]


class RacingSource:
    """A live source whose first fetch lets another process run the same campaign meanwhile."""

    name = "racer"

    def __init__(self):
        self.meanwhile = None
        self.fetches = 0

    def detect(self, payload, filename):
        return 0.0

    def extract(self, payload):
        raise AssertionError("not used")

    async def fetch(self, spec, http):
        from avatar_daemon.models import Insight, Research
        self.fetches += 1
        if self.meanwhile:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return Research(source="racer", title="Live", topic="live",
                        insights=[Insight(text="A live story about comets")])


async def test_a_run_raced_by_another_process_is_made_again_so_nothing_is_considered_or_used_twice(tmp_path):
    from avatar_daemon.hookspecs import hookimpl
    from avatar_daemon.store import RunConflict

    class Plugin:
        __name__ = "racer"

        def __init__(self):
            self.source = RacingSource()

        @hookimpl
        def register_sources(self, register):
            register(self.source)

    racing = Plugin()
    clock = Clock("2026-11-24T07:00:00+00:00")
    one = make_daemon(tmp_path, plugins=[RecordingPlugin(), racing], clock=clock)
    other = make_daemon(tmp_path, plugins=[RecordingPlugin(), Plugin()], clock=clock)  # a second process
    write_campaign(tmp_path / "campaigns", max_videos_per_day=10, quality={"min_insights": 1},
                   sources=[{"source": "research_job"}, {"source": "racer", "fetch": {}}])
    async with one.started(), other.started():
        await one.campaigns.reload()
        await other.campaigns.reload()
        research = await one.pipeline.ingest(research_job("A stored story about tides"), "r.json", ".json")
        racing.source.meanwhile = lambda: other.campaigns.run_now("ai")
        mine = await one.campaigns.run_now("ai")
        row = await one.store.campaign_row("ai")
        runs = await one.store.campaign_runs(row.id)
        basis = await one.store.campaign_run_basis(row.id)
        await other.campaigns.run_now("ai")
        with pytest.raises(RunConflict):  # the store refuses a run begun before the last one was recorded
            await one.store.record_campaign_run(basis, [], trigger="manual", slot=None, next_run_at=None,
                                                considered=[], message="stale", ran_at=clock.now)
    assert racing.source.fetches == 2  # made again after the other process's run was recorded
    theirs, ours = reversed(runs)
    assert [c["research_id"] for c in theirs["considered"]] == [research.research_id, None]
    assert [c["research_id"] for c in ours["considered"]] == [None] and mine.job_ids == []
    assert "already used" in ours["considered"][0]["verdict"]  # the live story went into their video


async def test_schedule_runs_once_per_slot_and_catches_up_once(tmp_path):
    clock = Clock("2026-11-24T07:00:00+00:00")  # 08:00 in Berlin; the campaign runs at 09:00
    daemon, _ = campaign_daemon(tmp_path, clock)
    write_campaign(tmp_path / "campaigns", quality={"min_insights": 1, "max_age_hours": 1000})
    async with daemon.started():
        await daemon.campaigns.reload()
        row = await daemon.store.campaign_row("ai")
        assert row.next_run_at == at("2026-11-24T08:00:00+00:00")
        assert await daemon.campaigns.run_due(at("2026-11-24T07:59:00+00:00")) == []
        (run,) = await daemon.campaigns.run_due(at("2026-11-24T08:00:30+00:00"))
        assert run.trigger == "schedule"
        assert await daemon.campaigns.run_due(at("2026-11-24T08:01:00+00:00")) == []
    # a restart a minute later, on the same database: the 09:00 run is not repeated
    again, _ = campaign_daemon(tmp_path, Clock("2026-11-24T08:02:00+00:00"))
    async with again.started():
        await again.campaigns.reload()
        assert await again.campaigns.run_due() == []
        assert (await again.store.campaign_row("ai")).next_run_at == at("2026-11-25T08:00:00+00:00")
    # down for three days: the missed runs happen once, at start, and the next is tomorrow's
    later, _ = campaign_daemon(tmp_path, Clock("2026-11-28T12:00:00+00:00"))
    async with later.started():
        await later.campaigns.reload()
        (catch_up,) = await later.campaigns.run_due()
        assert catch_up.trigger == "catch-up"
        assert await later.campaigns.run_due() == []
        row = await later.store.campaign_row("ai")
        runs = await later.store.campaign_runs(row.id)
    assert row.next_run_at == at("2026-11-29T08:00:00+00:00") and len(runs) == 2


async def test_restart_inside_a_due_window_still_runs_it(tmp_path):
    daemon, _ = campaign_daemon(tmp_path, Clock("2026-11-24T07:30:00+00:00"))
    write_campaign(tmp_path / "campaigns")
    async with daemon.started():
        await daemon.campaigns.reload()  # stopped at 08:30 Berlin, before the 09:00 run
    back, _ = campaign_daemon(tmp_path, Clock("2026-11-24T08:02:00+00:00"))  # back at 09:02
    async with back.started():
        await back.campaigns.reload()
        (run,) = await back.campaigns.run_due()
    assert run.trigger == "schedule"


async def test_paused_and_inactive_campaigns_do_not_run_but_can_be_run_by_hand(tmp_path):
    clock = Clock("2026-11-24T09:00:00+00:00")
    daemon, _ = campaign_daemon(tmp_path, clock)
    write_campaign(tmp_path / "campaigns")
    write_campaign(tmp_path / "campaigns", name="off", active=False)
    async with daemon.started():
        await daemon.campaigns.reload()
        await daemon.campaigns.set_paused("ai", True)
        assert await daemon.campaigns.run_due(at("2026-11-26T09:00:00+00:00")) == []
        assert (await daemon.campaigns.run_now("off")).trigger == "manual"
        rows = {r["name"]: r for r in await daemon.campaigns.rows()}
        assert rows["ai"]["paused"] and not rows["off"]["active"]
        await daemon.campaigns.set_paused("ai", False)
        assert len(await daemon.campaigns.run_due(at("2026-11-26T09:00:00+00:00"))) == 1


# ---- files ------------------------------------------------------------------------------------


async def test_files_are_hot_reloaded_and_a_bad_edit_keeps_the_last_good_version(tmp_path):
    daemon, plugin = campaign_daemon(tmp_path)
    folder = tmp_path / "campaigns"
    async with running(daemon):
        path = write_campaign(folder, formats=["tiktok"])
        await wait_until(lambda: daemon.campaigns.path_of("ai"))
        first_id = (await daemon.store.campaign_row("ai")).id
        await daemon.campaigns.run_now("ai")

        path.write_text("name: ai\nsources:\n  - source: reddit\nschedule:\n  every: daily\n  timezone: Nowhere/City\n")
        await wait_until(lambda: daemon.campaigns.problems)
        (problem,) = daemon.campaigns.problems[path]
        assert problem.startswith(f"{path}:6: schedule.timezone") or problem.startswith(f"{path}:4: schedule")
        assert daemon.campaigns.get("ai").formats == ["tiktok"]  # the last good version still runs
        await wait_until(lambda: any(n.kind == "campaign.invalid" for n in plugin.notifier.notices))

        path.write_text("name: ai\nsources: [{source: reddit}]\nformats: [nosuchformat]\n"
                        "schedule: {every: daily}\n")
        await wait_until(lambda: "nosuchformat" in str(daemon.campaigns.problems.get(path)))
        assert f"{path}:3: formats.0: no format named 'nosuchformat'" in daemon.campaigns.problems[path][0]

        write_campaign(folder, formats=["youtube"])
        await wait_until(lambda: daemon.campaigns.get("ai").formats == ["youtube"] and not daemon.campaigns.problems)

        renamed = path.rename(folder / "ai-renamed.yaml")
        await wait_until(lambda: daemon.campaigns.path_of("ai") == renamed)
        row = await daemon.store.campaign_row("ai")
        assert row.id == first_id and row.removed_at is None
        assert len(await daemon.store.campaign_runs(row.id)) == 1  # history kept across the rename

        renamed.unlink()
        await wait_until(lambda: daemon.campaigns.path_of("ai") is None)
        assert await daemon.store.campaign_rows() == []
        assert daemon.inbox  # the daemon is still running


def invalid_notices(plugin):
    return [n for n in plugin.notifier.notices if n.kind == "campaign.invalid"]


async def test_a_file_written_in_steps_is_not_reported_and_a_real_mistake_is_once(tmp_path):
    """Editors and `>` truncate, then write, sometimes in pieces: only a problem that stays is one."""
    daemon, plugin = campaign_daemon(tmp_path)
    folder = tmp_path / "campaigns"
    async with running(daemon):
        path = write_campaign(folder)
        await wait_until(lambda: daemon.campaigns.path_of("ai"))
        text = path.read_text().replace('"tiktok"', '"youtube"')
        with path.open("w") as f:  # truncated: an empty file, then half of one, each for a while
            f.flush()
            await asyncio.sleep(0.3)  # the writer's pauses (the watcher reports within 0.05 s)
            f.write(text[: len(text) // 2])
            f.flush()
            await asyncio.sleep(0.3)
            f.write(text[len(text) // 2:])
        await wait_until(lambda: daemon.campaigns.get("ai").formats == ["youtube"])

        path.write_text(text.replace("Europe/Berlin", "Nowhere/City"))  # a real mistake
        await wait_until(lambda: invalid_notices(plugin))
        write_campaign(folder, name="other")  # more reloads: the mistake is not told again
        await wait_until(lambda: daemon.campaigns.path_of("other"))
    (notice,) = invalid_notices(plugin)
    assert notice.message.startswith(f"{path}:") and "schedule.timezone" in notice.message
    assert "Nowhere/City" in notice.message and "keeps running" in notice.message


async def test_a_file_deleted_and_written_anew_keeps_its_schedule_and_history(tmp_path):
    clock = Clock("2026-11-24T07:30:00+00:00")  # 08:30 in Berlin, the run is at 09:00
    daemon, plugin = campaign_daemon(tmp_path, clock)
    folder = tmp_path / "campaigns"
    path = write_campaign(folder)
    text = path.read_text()
    async with running(daemon):
        row = await daemon.store.campaign_row("ai")
        assert row.next_run_at == at("2026-11-24T08:00:00+00:00")
        clock.now = at("2026-11-24T08:00:30+00:00")  # the 09:00 slot falls in the gap
        path.unlink()

        async def runs():
            return await daemon.store.campaign_runs(row.id)

        (run,) = await wait_until(runs)  # the last good version keeps running through the gap
        path.write_text(text.replace('"tiktok"', '"youtube"'))
        await wait_until(lambda: daemon.campaigns.get("ai").formats == ["youtube"])
        (folder / "bad.yaml").write_text("name: [")  # an unrelated mistake, told once the grace has passed
        await wait_until(lambda: invalid_notices(plugin))
        after = await daemon.store.campaign_row("ai")
        assert [r["name"] for r in await daemon.campaigns.rows()] == ["ai"]
    assert (run["trigger"], run["slot"]) == ("schedule", "2026-11-24T08:00:00+00:00")
    assert after.id == row.id and after.removed_at is None
    assert after.next_run_at == at("2026-11-25T08:00:00+00:00")  # tomorrow's, not recomputed


async def test_a_check_that_crashes_is_one_files_problem_not_every_campaigns(tmp_path):
    """A plugin's source that breaks while a file is checked: that file is reported, the others load."""
    from avatar_daemon.hookspecs import hookimpl

    class Broken:
        name = "broken"

        def detect(self, payload, filename):
            return 0.0

        @property
        def __class__(self):  # the contract's isinstance(source, FetchesLive) asks for it
            raise RuntimeError("the plugin fell over")

    class Plugin:
        __name__ = "broken"

        @hookimpl
        def register_sources(self, register):
            register(Broken())

    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(), Plugin()])
    folder = tmp_path / "campaigns"
    write_campaign(folder, name="a", sources=[{"source": "broken", "fetch": {}}])
    write_campaign(folder, name="b")
    async with daemon.started():
        problems = await daemon.campaigns.reload()
        assert [c["name"] for c in await daemon.campaigns.rows()] == ["b"]
    assert problems == [f"{folder / 'a.yaml'}:1: could not be checked: RuntimeError: the plugin fell over"]


async def test_two_files_with_one_name_are_refused(tmp_path):
    daemon, _ = campaign_daemon(tmp_path)
    folder = tmp_path / "campaigns"
    write_campaign(folder, filename="a.yaml")
    write_campaign(folder, filename="b.yaml")
    async with daemon.started():
        problems = await daemon.campaigns.reload()
    assert problems == [f"{folder / 'b.yaml'}:1: name: 'ai' is already the name of the campaign in a.yaml"]


async def test_write_creates_the_yaml_file_the_daemon_then_runs(tmp_path):
    daemon, _ = campaign_daemon(tmp_path)
    async with daemon.started():
        campaign = Campaign.model_validate({"name": "api-made", "sources": [{"source": "hackernews"}],
                                            "schedule": {"every": "weekly", "day": "friday"}})
        path = await daemon.campaigns.write(campaign)
        assert path == tmp_path / "campaigns/api-made.yaml"
        assert "every: weekly" in path.read_text()
        assert [r["name"] for r in await daemon.campaigns.rows()] == ["api-made"]


async def test_a_campaign_refused_over_http_leaves_no_file_and_its_name_free(tmp_path):
    import hashlib

    import aiohttp

    token = "tok-campaign-manager"
    (tmp_path / "users.yaml").write_text(json.dumps({"api_tokens": [
        {"name": "ops", "sha256": hashlib.sha256(token.encode()).hexdigest(), "workspace": "W1", "user": "U1",
         "campaigns": True}]}))
    daemon, _ = campaign_daemon(tmp_path, users_file="users.yaml")
    body = {"name": "api-made", "sources": [{"source": "hackernews"}], "schedule": {"every": "daily"},
            "avatar": "nobody"}
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}",
                                                      headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post("/campaigns", json=body) as resp:
            refused = (resp.status, await resp.json())
        files = sorted(p.name for p in (tmp_path / "campaigns").iterdir())
        async with http.post("/campaigns", json={**body, "avatar": "mike"}) as resp:
            made = (resp.status, await resp.json())
    status, data = refused
    assert status == 422 and data["field"] == "avatar" and files == []
    assert data["error"].startswith("api-made.yaml:") and "no avatar profile named 'nobody'" in data["error"]
    assert str(tmp_path) not in data["error"]  # the server's folders are not the caller's business
    assert made[0] == 201 and made[1]["name"] == "api-made"


# ---- live fetch, at the HTTP boundary ---------------------------------------------------------


@pytest.fixture
async def research_apis():
    """Reddit, HN Algolia, GitHub search and Google Trends RSS, as their real payload shapes."""
    calls: list[str] = []
    state = {"reddit_429": 1, "github_500": 99}

    async def reddit(request):
        calls.append(request.path)
        if state["reddit_429"]:
            state["reddit_429"] -= 1
            return web.json_response({"message": "Too Many Requests", "error": 429}, status=429,
                                     headers={"Retry-After": "0.1"})
        assert request.headers["User-Agent"].startswith("avatar-daemon")
        return web.json_response(listing([("Open model beats GPT on reasoning", 1500),
                                          ("AI agent writes its own tests", 700),
                                          ("Robots learn to fold laundry with AI", 400)], url_prefix="https://rd"))

    async def hn(request):
        calls.append(request.path_qs)
        hits = json.loads((FIXTURES / "research/hn_algolia.json").read_text())
        now = int(time.time())
        for h in hits["hits"]:
            h["created_at_i"] = now - 3600
            h.pop("created_at", None)
        return web.json_response(hits)

    async def github(request):
        calls.append(request.path_qs)
        if state["github_500"]:
            return web.json_response({"message": "Server Error"}, status=500)
        return web.json_response(json.loads((FIXTURES / "research/github_search.json").read_text()))

    async def trends(request):
        calls.append(request.path_qs)
        return web.Response(text=(FIXTURES / "research/trends_rss.xml").read_text(), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/r/{sub}/{listing}.json", reddit)
    app.router.add_get("/api/v1/search", hn)
    app.router.add_get("/search/repositories", github)
    app.router.add_get("/trending/rss", trends)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield base, calls, state
    await runner.cleanup()


async def test_live_fetch_from_every_source_with_retries_and_a_failure_reported(tmp_path, research_apis):
    base, calls, state = research_apis
    settings = {name: {"base_url": base, "min_interval": 0} for name in
                ("reddit", "hackernews", "github", "google_trends")}
    daemon, _ = campaign_daemon(tmp_path, Clock("2026-11-24T09:00:00+00:00"), plugins={"settings": settings})
    write_campaign(tmp_path / "campaigns", max_videos_per_day=10, quality={"min_insights": 1, "max_age_hours": 10**6},
                   sources=[{"source": "reddit", "fetch": {"subreddit": "artificial"}},
                            {"source": "hackernews", "fetch": {"query": "ai", "hours": 24}},
                            {"source": "github", "fetch": {"q": "topic:llm"}},
                            {"source": "google_trends", "fetch": {"geo": "us"}}])
    async with daemon.started():
        await daemon.campaigns.reload()
        run = await daemon.campaigns.run_now("ai")
    verdicts = {c.get("source"): c["verdict"] for c in run.considered}
    assert verdicts["reddit"].startswith("chosen") and verdicts["hackernews"].startswith("chosen")
    assert verdicts["google_trends"].startswith("chosen")
    assert "github: " in verdicts["github"] and "HTTP 500" in verdicts["github"]
    assert len(run.job_ids) == 3
    assert calls.count("/r/artificial/top.json") == 2  # the 429 was retried after Retry-After
    assert any("numericFilters=created_at_i" in c for c in calls) and any("geo=US" in c for c in calls)
    assert sum("/search/repositories" in c for c in calls) == 4  # 5xx retried three times, then given up


async def test_batch_uses_the_window_and_never_repeats_an_insight(tmp_path):
    daemon, _ = campaign_daemon(tmp_path)
    async with daemon.started():
        await ingest_listing(daemon, [("Quantum chips get cheaper", 300), ("Fusion startup hits milestone", 200)],
                             url_prefix="https://q")
        report = await daemon.campaigns.batch(24, source="reddit", avatar="mike", format="youtube")
        (job_id,) = report.job_ids
        job = await daemon.store.job(job_id)
        assert (job.avatar_id, job.format) == ("mike", "youtube")
        assert (await daemon.campaigns.batch(24)).job_ids == []
        assert await daemon.campaigns.rows() == []  # batch history is not a listed campaign
        with pytest.raises(Exception, match="no source named 'myspace'"):
            await daemon.campaigns.batch(24, source="myspace")


async def test_cleanup_removes_old_video_files_only(tmp_path):
    daemon, plugin = campaign_daemon(tmp_path)
    async with running(daemon):
        done = await daemon.pipeline.ingest((FIXTURES / "research/hn_algolia.json").read_bytes(), "x.json", ".json")
        (job_id,) = done.job_ids
        await wait_until(lambda: (tmp_path / f"var/videos/job-{job_id}").exists())
        await wait_until(lambda: "completed" in plugin.notifier.states(job_id))
        assert await daemon.cleanup.clean(datetime.now(UTC) - timedelta(days=1)) == 0
        assert await daemon.cleanup.clean(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert not (tmp_path / f"var/videos/job-{job_id}").exists()
