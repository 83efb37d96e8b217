"""The campaign service: YAML files in, scheduled runs out, and the one API the CLI, Slack and HTTP share.

Files are the source of truth. Each file is re-read when it changes; an invalid edit is
reported (`path:line: reason`) and the last good version keeps running. Run times live
in the store, so a restart neither skips a due run nor runs it twice, and runs missed
while the daemon was down happen once at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from watchfiles import awatch

from .campaign import Campaign
from .errors import AvatarDaemonError, ConfigError, UnknownNameError
from .models import JobEvent, JobState, Notice, Research
from .selection import Candidate, choose, insight_key
from .store import CampaignRow, NewJob, Pick
from .yamlfile import YamlDocument

if TYPE_CHECKING:
    from .daemon import Daemon

log = logging.getLogger(__name__)

BATCH = "batch"  # the implicit campaign `avatar-daemon batch` records its runs and used insights under
MAX_WAIT = 3600.0  # due campaigns are looked at least hourly, whatever the clock did (suspend, NTP)


@dataclass
class RunReport:
    campaign: str
    run_id: int
    trigger: str
    considered: list[dict[str, Any]]
    job_ids: list[int]
    message: str


class Campaigns:
    name = "campaigns"

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon
        self.clock = daemon.clock
        self.good: dict[Path, Campaign] = {}        # the last good version of each file
        self.ids: dict[str, int] = {}               # campaign name -> its row, learnt as files load
        self.problems: dict[Path, list[str]] = {}
        self.changed = asyncio.Event()
        self._publish_warned: set[str] = set()
        self._reloading = asyncio.Lock()

    @property
    def folder(self) -> Path:
        return self.daemon.settings.campaigns_dir

    def get(self, name: str) -> Campaign:
        for campaign in self.good.values():
            if campaign.name == name:
                return campaign
        known = ", ".join(sorted(c.name for c in self.good.values())) or "none"
        raise UnknownNameError(f"no campaign named {name!r} (known: {known})")

    def path_of(self, name: str) -> Path | None:
        return next((p for p, c in self.good.items() if c.name == name), None)

    def by_id(self, campaign_id: int | None) -> Campaign | None:
        """The running campaign a job was made by (None for other jobs and removed campaigns)."""
        return next((c for c in self.good.values() if self.ids.get(c.name) == campaign_id), None)

    # ---- files ------------------------------------------------------------------------

    async def reload(self) -> list[str]:
        """Re-read every file; returns the problems found. Unchanged files cost a parse, nothing more."""
        async with self._reloading:  # the watcher and an HTTP write may ask at once
            return await self._reload()

    async def _reload(self) -> list[str]:
        store = self.daemon.store
        now = self.clock()
        seen: set[Path] = set()
        names: dict[str, Path] = {}
        for path in sorted(self.folder.glob("*.y*ml")) if self.folder.is_dir() else []:
            if path.name.startswith("."):
                continue
            seen.add(path)
            try:
                campaign = await asyncio.to_thread(self._load, path)
                if campaign.name in names:
                    raise ConfigError([f"{path}:1: name: {campaign.name!r} is already the name of the campaign "
                                       f"in {names[campaign.name].name}"])
            except ConfigError as exc:
                if self.problems.get(path) != exc.problems:
                    self._report_invalid(path, exc.problems)
                self.problems[path] = exc.problems
                if path in self.good:
                    names[self.good[path].name] = path
                continue
            names[campaign.name] = path
            self.problems.pop(path, None)
            if self.good.get(path) == campaign:
                continue  # unchanged since the last reload: nothing to store or reschedule
            previous = await store.campaign_row(campaign.name)
            row = await store.upsert_campaign(campaign.name, str(path), campaign.model_dump_json())
            self.ids[campaign.name] = row.id
            old = Campaign.model_validate_json(previous.definition) if previous else None
            if row.next_run_at is None or previous is None or previous.removed_at or old.schedule != campaign.schedule:
                await store.set_campaign_schedule(row.id, campaign.schedule.next_after(now))
                if old is not None and old.schedule != campaign.schedule:
                    log.info("campaign %s: schedule now %s", campaign.name, campaign.schedule.describe())
            log.info("campaign %s loaded from %s", campaign.name, path.name)
            self.good[path] = campaign
        for path in [p for p in self.good if p not in seen]:
            gone = self.good.pop(path)
            self.problems.pop(path, None)
            if gone.name not in names:  # not renamed into another file
                await store.remove_campaign(gone.name)
                log.info("campaign %s removed (%s deleted)", gone.name, path.name)
        for path in [p for p in self.problems if p not in seen]:
            del self.problems[path]
        self.changed.set()
        return [p for problems in self.problems.values() for p in problems]

    def _load(self, path: Path) -> Campaign:
        """Schema first, then every name it uses must exist here, with the line that names it."""
        doc = YamlDocument.load(path)
        campaign = doc.validate(Campaign)
        d = self.daemon
        checks: list[tuple[tuple, str | None, Any, str]] = [
            (("avatar",), campaign.avatar, d.settings.avatars, "avatar profile"),
            (("template",), campaign.template, d.settings.templates, "template"),
            (("renderer",), campaign.renderer, d.renderers, "renderer"),
        ]
        checks += [(("formats", i), f, d.formats, "format") for i, f in enumerate(campaign.formats)]
        checks += [(("sources", i, "source"), s.source, d.sources, "source") for i, s in enumerate(campaign.sources)]
        problems = []
        for loc, value, known, what in checks:
            if value is not None and value not in known:
                names = ", ".join(sorted(k if isinstance(k, str) else k.name for k in known)) or "none"
                problems.append(f"{path}:{doc.line_of(loc)}: {'.'.join(map(str, loc))}: no {what} named {value!r} "
                                f"(known: {names})")
        for i, spec in enumerate(campaign.sources):
            if spec.fetch is not None and spec.source in d.sources and not hasattr(d.sources[spec.source], "fetch"):
                problems.append(f"{path}:{doc.line_of(('sources', i, 'fetch'))}: sources.{i}.fetch: source "
                                f"{spec.source!r} cannot fetch live research")
        if problems:
            raise ConfigError(problems)
        return campaign

    def _report_invalid(self, path: Path, problems: list[str]) -> None:
        kept = f"; the last good version of {self.good[path].name} keeps running" if path in self.good else ""
        for problem in problems:
            log.warning("campaign file invalid: %s%s", problem, kept)
        if self.daemon.bus:
            self.daemon.bus.notice(Notice(kind="campaign.invalid", message="; ".join(problems) + kept,
                                          data={"path": str(path), "problems": problems}))

    async def write(self, campaign: Campaign, filename: str | None = None) -> Path:
        """Create or replace a campaign's file (for the HTTP API): the file stays the source of truth."""
        path = self.path_of(campaign.name) or self.folder / (filename or f"{campaign.name}.yaml")
        self.folder.mkdir(parents=True, exist_ok=True)
        data = campaign.model_dump(mode="json", exclude_defaults=True)
        data["name"] = campaign.name
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        tmp.replace(path)
        await self.reload()
        return path

    # ---- state the CLI, Slack and HTTP act on ---------------------------------------------

    async def rows(self) -> list[dict[str, Any]]:
        """Every campaign with its file, schedule, state and totals."""
        store = self.daemon.store
        totals = await store.campaign_totals()
        by_name = {r.name: r for r in await store.campaign_rows()}
        out = []
        for path, campaign in sorted(self.good.items(), key=lambda kv: kv[1].name):
            row = by_name.get(campaign.name)
            if row is None:
                continue
            out.append({
                "id": row.id, "name": campaign.name, "file": path.name, "active": campaign.active,
                "paused": row.paused, "schedule": campaign.schedule.describe(),
                "next_run_at": row.next_run_at.isoformat() if row.next_run_at else None,
                "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
                "formats": campaign.formats, "max_videos_per_day": campaign.max_videos_per_day,
                "problems": self.problems.get(path, []), **totals.get(row.id, {"runs": 0, "videos": 0,
                                                                                "completed": 0}),
            })
        return out

    async def set_paused(self, name: str, paused: bool) -> None:
        self.get(name)
        await self.daemon.store.set_campaign_paused(name, paused)
        self.changed.set()
        log.info("campaign %s %s", name, "paused" if paused else "resumed")

    async def run_now(self, name: str) -> RunReport:
        row = await self.daemon.store.campaign_row(name)
        if row is None:
            raise UnknownNameError(f"no campaign named {name!r}")
        return await self.run_campaign(self.get(name), row, self.clock(), "manual")

    # ---- the schedule -----------------------------------------------------------------

    async def run_due(self, now: datetime | None = None) -> list[RunReport]:
        now = now or self.clock()
        reports = []
        rows = {r.name: r for r in await self.daemon.store.campaign_rows()}
        for campaign in list(self.good.values()):
            row = rows.get(campaign.name)
            if row is None or not campaign.active or row.paused or row.next_run_at is None or row.next_run_at > now:
                continue
            # Slots missed while the daemon was down collapse into this one run.
            late = now - row.next_run_at > timedelta(minutes=5)
            next_run = campaign.schedule.next_after(now)
            try:
                reports.append(await self.run_campaign(campaign, row, now, "catch-up" if late else "schedule",
                                                       slot=row.next_run_at, next_run=next_run))
            except Exception as exc:  # one broken run must not stop the others, nor repeat in a tight loop
                log.exception("campaign %s: run failed", campaign.name)
                await self.daemon.store.set_campaign_schedule(row.id, next_run)
                self._notice("campaign.error", f"campaign {campaign.name}: run failed: {exc}", campaign)
        return reports

    async def next_wake(self) -> float:
        """Seconds until the earliest due campaign (at most an hour)."""
        now = self.clock()
        rows = await self.daemon.store.campaign_rows()
        active = {c.name for c in self.good.values() if c.active}
        times = [r.next_run_at for r in rows if r.name in active and not r.paused and r.next_run_at]
        if not times:
            return MAX_WAIT
        return max(0.0, min(MAX_WAIT, (min(times) - now).total_seconds()))

    async def run_campaign(self, campaign: Campaign, row: CampaignRow, now: datetime, trigger: str,
                  slot: datetime | None = None, next_run: datetime | None = None,
                  overrides: dict[str, Any] | None = None) -> RunReport:
        """Gather, judge, pick, queue and record, the last three in one transaction."""
        d = self.daemon
        rules = campaign.quality
        since = now - timedelta(hours=rules.max_age_hours)
        if row.last_run_at and row.last_run_at > since and trigger != "batch":
            since = row.last_run_at
        sources = sorted({s.source for s in campaign.sources})
        candidates = [Candidate(r.research, r.id, datetime.fromisoformat(r.created_at))
                      for r in await d.store.research_since(sources, since)]
        considered_errors = []
        for spec in campaign.sources:
            if spec.fetch is None:
                continue
            try:
                research = await d.sources[spec.source].fetch(spec.fetch, d.http)
                candidates.append(Candidate(research, None, now))
            except AvatarDaemonError as exc:
                considered_errors.append({"source": spec.source, "verdict": f"live fetch failed: {exc}"})
            except Exception as exc:
                log.warning("campaign %s: %s fetch crashed: %s: %s", campaign.name, spec.source,
                            type(exc).__name__, exc)
                considered_errors.append({"source": spec.source, "verdict": f"live fetch failed: {type(exc).__name__}"})
        zone = campaign.schedule.zone
        day_start = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        made_today = await d.store.campaign_jobs_since(row.id, day_start)
        limit = campaign.max_videos_per_day if trigger != "batch" else 10**9
        used = await d.store.used_insights(row.id)
        chosen = choose(candidates, rules, used, now, max(0, limit - made_today), len(campaign.formats))
        picks = [await self._pick(campaign, row, c, overrides or {}) for c in chosen]
        considered = [c.summary() for c in candidates] + considered_errors
        jobs = sum(len(p.jobs) for p in picks)
        message = (f"campaign {campaign.name} ({trigger}): {len(candidates)} research considered, "
                   f"{len(picks)} chosen, {jobs} video(s) queued")
        if limit - made_today <= 0:
            message += f"; today's limit of {campaign.max_videos_per_day} was already reached"
        run_id, job_ids = await d.store.record_campaign_run(row.id, picks, trigger=trigger, slot=slot,
                                                            next_run_at=next_run, considered=considered,
                                                            message=message, ran_at=now)
        for job_id in job_ids:
            d.bus.announce(JobEvent(job_id=job_id, state=JobState.queued, percent=0, message="queued",
                                    data={"campaign": campaign.name}))
        if job_ids:
            d.wake_jobs()
        log.info("%s", message)
        self._notice("campaign.run", message, campaign, run_id=run_id, job_ids=job_ids, considered=considered)
        return RunReport(campaign.name, run_id, trigger, considered, job_ids, message)

    async def _pick(self, campaign: Campaign, row: CampaignRow, c: Candidate, overrides: dict[str, Any]) -> Pick:
        d = self.daemon
        research = c.research.model_copy(update={"insights": c.kept})
        formats = [overrides.get("format")] if overrides.get("format") else campaign.formats
        script = await d.pipeline.awrite_script(research, formats, campaign.voice_speed, campaign.writer)
        if campaign.hashtags:
            own = ["#" + t.lstrip("#") for t in campaign.hashtags]
            script = script.model_copy(update={"hashtags": list(dict.fromkeys(own + script.hashtags))[:10]})
        request: dict[str, Any] = {k: v for k, v in (("voice_speed", campaign.voice_speed),
                                                     ("captions", campaign.captions)) if v is not None}
        if c.research_id is not None:  # existing research, re-told from the insights this campaign may use
            request["script"] = script.model_dump(mode="json")
        avatar = overrides.get("avatar") or campaign.avatar or d.settings.default_avatar
        renderer = campaign.renderer or d.settings.default_renderer
        jobs = [NewJob(renderer, f, avatar, script.title, request, campaign.template or d.settings.default_template,
                       campaign_id=row.id) for f in formats]
        digest = None if c.research_id is not None else _research_hash(c.research)
        return Pick(c.research_id, c.research, digest, script, jobs, [insight_key(i) for i in c.kept],
                    c.verdict)

    def _notice(self, kind: str, message: str, campaign: Campaign, **data: Any) -> None:
        if self.daemon.bus:
            self.daemon.bus.notice(Notice(kind=kind, message=message, data={
                "campaign": campaign.name, "notify": campaign.notify.model_dump(exclude_none=True), **data}))

    # ---- batch: the seed's batch_create_videos_from_research ------------------------------

    async def batch(self, hours_back: float, source: str | None = None, avatar: str | None = None,
                    format: str | None = None) -> RunReport:
        """Videos from the research ingested in the last `hours_back` hours, selected and de-duplicated like a run."""
        d = self.daemon
        if source is not None and source not in d.sources:
            raise UnknownNameError(f"no source named {source!r} (known: {', '.join(d.sources.names())})")
        if avatar is not None:
            d.avatar(avatar)
        if format is not None:
            d.formats[format]
        sources = [source] if source else d.sources.names()
        campaign = Campaign.model_validate({
            "name": BATCH, "sources": [{"source": s} for s in sources], "schedule": {"every": "daily"},
            "formats": [format] if format else d.settings.default_formats,
            "quality": {"max_age_hours": hours_back, "min_insights": 1}})
        row = await d.store.upsert_campaign(BATCH, None, campaign.model_dump_json())
        await d.store.remove_campaign(BATCH)  # history only: never listed or scheduled
        return await self.run_campaign(campaign, row, self.clock(), "batch",
                                       overrides={"avatar": avatar, "format": format})

    # ---- the service ------------------------------------------------------------------------

    async def run(self, daemon: "Daemon" | None = None) -> None:
        """Until cancelled: watch the folder, run what is due, publish, clean up."""
        await self.reload()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._watch(), name="campaigns-watch")
            tg.create_task(self._publisher(), name="campaigns-publish")
            tg.create_task(self._cleaner(), name="campaigns-cleanup")
            while True:
                self.changed.clear()
                await self.run_due()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(await self.next_wake()):
                        await self.changed.wait()

    async def _watch(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        async for _ in awatch(self.folder, stop_event=self.daemon.stopping, debounce=200, recursive=False):
            await self.reload()

    async def _publisher(self) -> None:
        """Finished videos of campaigns with `auto_post` go to the `publish` hook."""
        d = self.daemon
        async with d.bus.watch() as events:
            while True:
                event = await events.get()
                if event.state is not JobState.completed:
                    continue
                job = await d.store.job(event.job_id)
                if job is None or job.campaign_id is None:
                    continue
                campaign = self.by_id(job.campaign_id)
                if campaign is None or not campaign.auto_post:
                    continue
                results = d.pm.hook.publish(video=job.public(), platforms=campaign.auto_post, daemon=d)
                for result in results:
                    if asyncio.iscoroutine(result):
                        await result
                if not results and campaign.name not in self._publish_warned:
                    self._publish_warned.add(campaign.name)
                    self._notice("publish.missing", f"campaign {campaign.name} asks to post to "
                                 f"{', '.join(campaign.auto_post)}, but no installed plugin implements the `publish` "
                                 "hook yet: the videos are kept on disk, not posted", campaign, job_id=job.id)

    async def _cleaner(self) -> None:
        """The seed's weekly clean-up: video folders of ended jobs older than `jobs.retention_days`."""
        d = self.daemon
        days = d.settings.jobs.retention_days
        if not days:
            return
        while True:
            last = await d.store.get_meta("cleanup.last_at")
            now = self.clock()
            due = datetime.fromisoformat(last) + timedelta(days=7) if last else now
            if due <= now:
                await self.clean(now - timedelta(days=days))
                await d.store.set_meta("cleanup.last_at", now.isoformat())
                due = now + timedelta(days=7)
            await asyncio.sleep(min(MAX_WAIT, (due - now).total_seconds()))

    async def clean(self, cutoff: datetime) -> int:
        removed = 0
        root = self.daemon.settings.jobs.output_dir
        for job_id in await self.daemon.store.ended_before(cutoff):
            folder = root / f"job-{job_id}"
            if folder.is_dir():
                await asyncio.to_thread(shutil.rmtree, folder, True)
                removed += 1
        if removed:
            log.info("clean-up: removed the files of %d video(s) that ended before %s", removed,
                     cutoff.date().isoformat())
        return removed


def _research_hash(research: Research) -> str:
    return "live:" + hashlib.sha256(research.model_dump_json(exclude={"meta"}).encode()).hexdigest()
