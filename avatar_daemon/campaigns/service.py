"""The campaign service: YAML files in, scheduled runs out, and the one API the CLI, Slack and HTTP share.

Files are the source of truth. Each file is re-read when it changes; an invalid edit that
stays invalid for a moment is reported once (`path:line: reason`) and the last good version
keeps running, as a campaign deleted and written anew keeps its schedule. Run times and the
research each campaign has considered live in the store, so a restart neither skips a due
run nor runs it twice, runs missed while the daemon was down happen once at start, and every
research row is considered by exactly one run of each campaign.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
import yaml
from pydantic import TypeAdapter, ValidationError

from ..catalogue import Catalogue
from ..errors import AvatarDaemonError, ConfigError, RenderError, ResearchError, UnknownNameError
from ..events import EventBus
from ..hookspecs import ChecksPhotos, FetchesLive, KeepsOldNotifyKeys
from ..jobs import Queued
from ..models import JobState, Notice, Research
from ..planning import awrite_script, check_profile_photo, job_request, videos_of, with_text
from ..store import CampaignRow, Clock, NewJob, Pick, RunConflict, SlotTaken, Store
from ..watching import watch
from ..yamlfile import YamlDocument
from .schema import Campaign
from .selection import Candidate, choose, insight_key

log = logging.getLogger(__name__)

BATCH = "batch"  # the implicit campaign `avatar-daemon batch` records its runs and used insights under
MAX_WAIT = 3600.0  # due campaigns are looked at least hourly, whatever the clock did (suspend, NTP)
Publish = Callable[..., Awaitable[list[dict[str, Any]]]]
"""Publications.request(job_id, platforms, by=...): queues a finished video's posts, each once."""
# A campaign file must stay invalid, or gone, this long before it counts: longer than the pauses
# of an editor or a script writing it in steps, short enough to tell a real mistake promptly.
SETTLE_SECONDS = 1.0
ATTEMPTS = 3  # a run raced by another process's run of the same campaign is made again, this often
MISSED_HOURS = 6.0  # auto_post catches up on videos that finished this recently while no node led


@dataclass
class RunReport:
    campaign: str
    run_id: int
    trigger: str
    considered: list[dict[str, Any]]
    job_ids: list[int]
    message: str


def load_campaign(catalogue: Catalogue, path: Path) -> Campaign:
    """A campaign file, checked: ConfigError with `path:line: reason` for each problem."""
    return check_campaign(catalogue, YamlDocument.load(path))


def check_campaign(catalogue: Catalogue, doc: YamlDocument) -> Campaign:
    """Schema first, then every name it uses must exist here, with the line that names it."""
    path = doc.path
    campaign = doc.validate(Campaign)
    c = catalogue
    checks: list[tuple[tuple, str | None, Any, str]] = [
        (("avatar",), campaign.avatar, c.settings.avatars, "avatar profile"),
        (("template",), campaign.template, c.settings.templates, "template"),
        (("renderer",), campaign.renderer, c.renderers, "renderer"),
    ]
    checks += [(("formats", i), f, c.formats, "format") for i, f in enumerate(campaign.formats)]
    checks += [(("sources", i, "source"), s.source, c.sources, "source") for i, s in enumerate(campaign.sources)]
    problems = []
    for loc, value, known, what in checks:
        if value is not None and value not in known:
            names = ", ".join(sorted(k if isinstance(k, str) else k.name for k in known)) or "none"
            problems.append(f"{path}:{doc.line_of(loc)}: {'.'.join(map(str, loc))}: no {what} named {value!r} "
                            f"(known: {names})")
    for i, spec in enumerate(campaign.sources):
        if spec.fetch is not None and spec.source in c.sources and not isinstance(c.sources[spec.source], FetchesLive):
            problems.append(f"{path}:{doc.line_of(('sources', i, 'fetch'))}: sources.{i}.fetch: source "
                            f"{spec.source!r} cannot fetch live research")
    problems += _check_notify(c, doc, campaign)
    if not problems:
        problems += _check_photo(c, doc, campaign)
    if problems:
        raise ConfigError(problems)
    return campaign


def _check_photo(c: Catalogue, doc: YamlDocument, campaign: Campaign) -> list[str]:
    """A talking-photo avatar its renderer cannot animate (no face found) is refused with the file, as a
    request for it is: otherwise every scheduled run would queue jobs bound to fail."""
    # the defaults are the settings' to check: a name they give that is not loaded is no fault of this file
    renderer = c.renderers.get(campaign.renderer or c.settings.default_renderer)
    if not isinstance(renderer, ChecksPhotos):
        return []
    try:
        profile = c.avatar(campaign.avatar or c.settings.default_avatar)
    except UnknownNameError:
        return []
    if profile.avatar_type != "talking_photo" or not profile.photo:
        return []
    try:
        renderer.check_photo(Path(profile.photo), profile.mouth)
    except RenderError as exc:
        line = doc.line_of(("avatar",)) if campaign.avatar else 1
        return [f"{doc.path}:{line}: avatar: profile {profile.id!r}: {exc}"]
    return []


def _check_notify(c: Catalogue, doc: YamlDocument, campaign: Campaign) -> list[str]:
    """Each `notify` key is read by the plugin that claims it, so that plugin's model says what is valid;
    the values are kept as that model dumps them. A key a plugin has renamed is moved first, with a warning."""
    path, problems = doc.path, []
    notify, where = dict(campaign.notify), {}
    for target in c.notify_targets:
        if not isinstance(target, KeepsOldNotifyKeys):
            continue
        for old, field in target.old_keys.items():
            if old not in notify or not isinstance(notify.get(target.name, {}), dict):
                continue
            value, where[target.name] = notify.pop(old), ("notify", old)
            log.warning("%s:%d: notify.%s is deprecated; write notify: {%s: {%s: %s}}", path,
                        doc.line_of(("notify", old)), old, target.name, field, json.dumps(value))
            if value is not None:
                notify[target.name] = {field: value, **notify.get(target.name, {})}
    for key, value in notify.items():
        loc = where.get(key, ("notify", key))
        target = c.notify_targets.get(key)
        if target is None:
            problems.append(f"{path}:{doc.line_of(loc)}: notify.{key}: no plugin reads a campaign notify key "
                            f"{key!r} (known: {', '.join(sorted(c.notify_targets.names())) or 'none'})")
            continue
        adapter = TypeAdapter(target.model)
        try:
            notify[key] = adapter.dump_python(adapter.validate_python(value), mode="json")
        except ValidationError as exc:
            problems += [f"{path}:{doc.line_of(loc + tuple(err['loc']))}: "
                         f"{'.'.join(map(str, ('notify', key, *err['loc'])))}: {err['msg']}" for err in exc.errors()]
    campaign.notify = notify
    return problems


class Campaigns:
    name = "campaigns"

    def __init__(self, catalogue: Catalogue, store: Store, bus: EventBus, http: aiohttp.ClientSession,
                 queued: Queued, publish: Publish, clock: Clock, stopping: asyncio.Event):
        self.catalogue = catalogue
        self.folder: Path = catalogue.settings.campaigns_dir
        self.store, self.bus, self.http = store, bus, http
        self.queued, self.publish = queued, publish
        self.clock = clock
        self.stopping = stopping
        self.good: dict[Path, Campaign] = {}        # the last good version of each file
        self.ids: dict[str, int] = {}               # campaign name -> its row, learnt as files load
        self.problems: dict[Path, list[str]] = {}   # reported problems of each invalid file
        self._unsettled: dict[Path, tuple[tuple | None, float]] = {}  # path -> (its stat, or None: gone; since)
        self.changed = asyncio.Event()
        self.listening = asyncio.Event()  # the folder watcher is in place: an edit from now on is seen
        self._publish_warned: set[tuple[str, str]] = set()
        self._reloading = asyncio.Lock()
        self._turns: dict[int, asyncio.Lock] = {}  # campaign id -> its runs take turns

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

    async def reload(self, settle: bool = False) -> list[str]:
        """Re-read every file; returns the problems found. Unchanged files cost a parse, nothing more.

        With `settle` (the watcher), a file must stay invalid, or gone, for SETTLE_SECONDS before
        that counts: editors and shell redirections truncate and then write, sometimes in pieces,
        and many tools save by deleting and writing anew. Until then nobody is told and the last
        good version keeps its schedule. A valid file counts at once.
        """
        async with self._reloading:  # the watcher and an HTTP write may ask at once
            return await self._reload(settle)

    async def _reload(self, settle: bool) -> list[str]:
        store = self.store
        now = self.clock()
        seen: set[Path] = set()
        names: dict[str, Path] = {}
        for path in sorted(self.folder.glob("*.y*ml")) if self.folder.is_dir() else []:
            if path.name.startswith("."):
                continue
            seen.add(path)
            try:
                campaign = await asyncio.to_thread(load_campaign, self.catalogue, path)
                if campaign.name in names:
                    raise ConfigError([f"{path}:1: name: {campaign.name!r} is already the name of the campaign "
                                       f"in {names[campaign.name].name}"])
                problems = None
            except ConfigError as exc:
                problems = exc.problems
            except Exception as exc:  # a bug in a check must not stop every other campaign
                log.exception("campaign file %s could not be checked", path.name)
                problems = [f"{path}:1: could not be checked: {type(exc).__name__}: {exc}"]
            if problems:
                if path in self.good:
                    names[self.good[path].name] = path
                if self.problems.get(path) == problems:
                    self._unsettled.pop(path, None)
                elif not settle or self._settled(path, _signature(path)):
                    self._unsettled.pop(path, None)
                    self.problems[path] = problems
                    self._report_invalid(path, problems)
                else:
                    log.debug("campaign file %s is invalid for now (%s); looking again in a moment", path.name,
                              problems[0])
                continue
            names[campaign.name] = path
            self.problems.pop(path, None)
            self._unsettled.pop(path, None)
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
            gone = self.good[path]
            if gone.name not in names and not self._settled(path, None):
                continue  # perhaps deleted to be written anew: it keeps running until it stays gone
            if gone.name not in names:  # not renamed into another file
                await store.remove_campaign(gone.name)  # first, so whoever sees it gone finds the store agreeing
                log.info("campaign %s removed (%s deleted)", gone.name, path.name)
            del self.good[path]
            self._unsettled.pop(path, None)
        for path in [p for p in self.problems if p not in seen]:
            del self.problems[path]
        for path in [p for p in self._unsettled if p not in seen and p not in self.good]:
            del self._unsettled[path]
        self.changed.set()
        return [p for problems in self.problems.values() for p in problems]

    def _settled(self, path: Path, signature: tuple | None) -> bool:
        """Has `path` stayed as it is now (the same bytes on disk, or gone) for SETTLE_SECONDS?"""
        now = time.monotonic()
        since = self._unsettled.get(path)
        if since is None or since[0] != signature:
            self._unsettled[path] = (signature, now)
            return False
        return now - since[1] >= SETTLE_SECONDS

    def _report_invalid(self, path: Path, problems: list[str]) -> None:
        kept = f"; the last good version of {self.good[path].name} keeps running" if path in self.good else ""
        for problem in problems:
            log.warning("campaign file invalid: %s%s", problem, kept)
        self.bus.notice(Notice(kind="campaign.invalid", message="; ".join(problems) + kept,
                               data={"path": str(path), "problems": problems}))

    async def write(self, campaign: Campaign) -> Path:
        """Create or replace a campaign's file (for the HTTP API): the file stays the source of truth.

        The text is checked as the watcher will check it before anything is written, so a
        refused campaign leaves no file behind (ConfigError, naming the file but not its folder).
        """
        async with self._reloading:
            path = self.path_of(campaign.name) or self.folder / f"{campaign.name}.yaml"
            data = campaign.model_dump(mode="json", exclude_defaults=True)
            data["name"] = campaign.name
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
            check_campaign(self.catalogue, YamlDocument(Path(path.name), text))
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name("." + path.name + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)
            await self._reload(settle=False)
        return path

    # ---- state the CLI, Slack and HTTP act on ---------------------------------------------

    async def rows(self) -> list[dict[str, Any]]:
        """Every campaign with its file, schedule, state and totals."""
        store = self.store
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
        await self.store.set_campaign_paused(name, paused)
        self.changed.set()
        log.info("campaign %s %s", name, "paused" if paused else "resumed")

    async def run_now(self, name: str) -> RunReport:
        row = await self.store.campaign_row(name)
        if row is None:
            raise UnknownNameError(f"no campaign named {name!r}")
        return await self.run_campaign(self.get(name), row, self.clock(), "manual")

    # ---- the schedule -----------------------------------------------------------------

    async def run_due(self, now: datetime | None = None) -> list[RunReport]:
        now = now or self.clock()
        reports = []
        rows = {r.name: r for r in await self.store.campaign_rows()}
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
            except SlotTaken as exc:  # another process made this run, and moved the schedule on
                log.info("campaign %s: %s", campaign.name, exc)
            except Exception as exc:  # one broken run must not stop the others, nor repeat in a tight loop
                if isinstance(exc, AvatarDaemonError):  # a reason to tell, not a fault to trace
                    log.warning("campaign %s: run refused: %s", campaign.name, exc)
                else:
                    log.exception("campaign %s: run failed", campaign.name)
                await self.store.set_campaign_schedule(row.id, next_run)
                self._notice("campaign.error", f"campaign {campaign.name}: run failed: {exc}", campaign)
        return reports

    async def next_wake(self) -> float:
        """Seconds until the earliest due campaign (at most an hour)."""
        now = self.clock()
        rows = await self.store.campaign_rows()
        active = {c.name for c in self.good.values() if c.active}
        times = [r.next_run_at for r in rows if r.name in active and not r.paused and r.next_run_at]
        if not times:
            return MAX_WAIT
        return max(0.0, min(MAX_WAIT, (min(times) - now).total_seconds()))

    async def run_campaign(self, campaign: Campaign, row: CampaignRow, now: datetime, trigger: str,
                           slot: datetime | None = None, next_run: datetime | None = None,
                           overrides: dict[str, Any] | None = None) -> RunReport:
        """Gather, judge, pick, queue and record, the last three in one transaction.

        Runs of one campaign take turns here; a run of another process recorded meanwhile
        makes this one start over from the new state (SlotTaken: its slot is answered).
        """
        async with self._turns.setdefault(row.id, asyncio.Lock()):
            attempt = 1
            while True:
                try:
                    return await self._run_once(campaign, row, now, trigger, slot, next_run, overrides or {})
                except RunConflict as exc:
                    if isinstance(exc, SlotTaken) or attempt == ATTEMPTS:
                        raise
                    attempt += 1
                    log.info("campaign %s: %s; making it again on the new state", campaign.name, exc)

    async def _run_once(self, campaign: Campaign, row: CampaignRow, now: datetime, trigger: str,
                        slot: datetime | None, next_run: datetime | None, overrides: dict[str, Any]) -> RunReport:
        store = self.store
        # Checked when the file loaded, but the photo may have changed or gone since: refused now,
        # before anything is considered, the research waits for a run that can use it.
        await check_profile_photo(self.catalogue, *self._renderer_and_avatar(campaign, overrides))
        rules = campaign.quality
        since = now - timedelta(hours=rules.max_age_hours)
        sources = sorted({s.source for s in campaign.sources})
        basis = await store.campaign_run_basis(row.id)
        # A run considers the research it has not considered before (max_age_hours still applies);
        # batch considers its window, whatever ran before.
        found = (await store.research_since(sources, since) if trigger == "batch"
                 else await store.research_unconsidered(basis, sources, since))
        candidates = [Candidate(r.research, r.id, datetime.fromisoformat(r.created_at)) for r in found]
        considered_errors = []
        for spec in campaign.sources:
            if spec.fetch is None:
                continue
            try:
                research = await self.catalogue.sources[spec.source].fetch(spec.fetch, self.http)
                candidates.append(Candidate(research, None, now))
            except AvatarDaemonError as exc:
                considered_errors.append({"source": spec.source, "verdict": f"live fetch failed: {exc}"})
            except Exception as exc:
                log.warning("campaign %s: %s fetch crashed: %s: %s", campaign.name, spec.source,
                            type(exc).__name__, exc)
                considered_errors.append({"source": spec.source, "verdict": f"live fetch failed: {type(exc).__name__}"})
        zone = campaign.schedule.zone
        day_start = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        made_today = await store.campaign_jobs_since(row.id, day_start)
        limit = campaign.max_videos_per_day if trigger != "batch" else 10**9
        used = await store.used_insights(row.id)
        chosen = choose(candidates, rules, used, now, max(0, limit - made_today), len(campaign.formats))
        picks = []
        for c in chosen:
            try:
                picks.append(await self._pick(campaign, row, c, overrides))
            except ResearchError as exc:  # a script too long for a format, and the campaign does not split
                considered_errors.append({"source": c.research.source, "verdict": f"refused: {exc}"})
        considered = [c.summary() for c in candidates] + considered_errors
        jobs = sum(len(p.jobs) for p in picks)
        message = (f"campaign {campaign.name} ({trigger}): {len(candidates)} research considered, "
                   f"{len(picks)} chosen, {jobs} video(s) queued")
        if limit - made_today <= 0:
            message += f"; today's limit of {campaign.max_videos_per_day} was already reached"
        run_id, job_ids = await store.record_campaign_run(basis, picks, trigger=trigger, slot=slot,
                                                          next_run_at=next_run, considered=considered,
                                                          message=message, ran_at=now)
        self.queued(job_ids, campaign=campaign.name)
        log.info("%s", message)
        self._notice("campaign.run", message, campaign, run_id=run_id, job_ids=job_ids, considered=considered)
        return RunReport(campaign.name, run_id, trigger, considered, job_ids, message)

    async def _pick(self, campaign: Campaign, row: CampaignRow, c: Candidate, overrides: dict[str, Any]) -> Pick:
        defaults = self.catalogue.settings
        research = c.research.model_copy(update={"insights": c.kept})
        formats = [overrides.get("format")] if overrides.get("format") else campaign.formats
        script = await awrite_script(self.catalogue, research, formats, campaign.voice_speed, campaign.writer)
        script = with_text(self.catalogue, script, campaign.template)
        if campaign.hashtags:
            own = ["#" + t.lstrip("#") for t in campaign.hashtags]
            script = script.model_copy(update={"hashtags": list(dict.fromkeys(own + script.hashtags))[:10]})
        script = campaign.metadata.over(script)
        request: dict[str, Any] = {k: v for k, v in (("voice_speed", campaign.voice_speed),
                                                     ("captions", campaign.captions)) if v is not None}
        renderer, avatar = self._renderer_and_avatar(campaign, overrides)
        # existing research is re-told from the insights this campaign may use: its jobs keep their script
        jobs = [NewJob(renderer, f, avatar, part.title, job_request(request, part, c.research_id is not None),
                       campaign.template or defaults.default_template, campaign_id=row.id)
                for f, part in videos_of(self.catalogue, script, formats, campaign.voice_speed, campaign.split)]
        digest = None if c.research_id is not None else _research_hash(c.research)
        return Pick(c.research_id, c.research, digest, script, jobs, [insight_key(i) for i in c.kept],
                    c.verdict)

    def _renderer_and_avatar(self, campaign: Campaign, overrides: dict[str, Any]) -> tuple[str, str]:
        defaults = self.catalogue.settings
        return (campaign.renderer or defaults.default_renderer,
                overrides.get("avatar") or campaign.avatar or defaults.default_avatar)

    def _notice(self, kind: str, message: str, campaign: Campaign, **data: Any) -> None:
        self.bus.notice(Notice(kind=kind, message=message, data={
            "campaign": campaign.name, "notify": campaign.notify, **data}))

    # ---- batch: the seed's batch_create_videos_from_research ------------------------------

    async def batch(self, hours_back: float, source: str | None = None, avatar: str | None = None,
                    format: str | None = None) -> RunReport:
        """Videos from the research ingested in the last `hours_back` hours, selected and de-duplicated like a run."""
        c = self.catalogue
        if source is not None:
            c.sources[source]  # UnknownNameError naming the known ones
        if avatar is not None:
            c.avatar(avatar)
        if format is not None:
            c.formats[format]
        sources = [source] if source else c.sources.names()
        campaign = Campaign.model_validate({
            "name": BATCH, "sources": [{"source": s} for s in sources], "schedule": {"every": "daily"},
            "formats": [format] if format else c.settings.default_formats,
            "quality": {"max_age_hours": hours_back, "min_insights": 1}})
        row = await self.store.upsert_campaign(BATCH, None, campaign.model_dump_json())
        await self.store.remove_campaign(BATCH)  # history only: never listed or scheduled
        return await self.run_campaign(campaign, row, self.clock(), "batch",
                                       overrides={"avatar": avatar, "format": format})

    # ---- the service ------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: watch the folder. Every node does, so each knows the campaigns it is asked about."""
        await self.reload()
        await self._watch()

    async def lead(self) -> None:
        """Until cancelled: run what is due and publish; the duty of one node at a time (leadership.Leader)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._publisher(), name="campaigns-publish")
            while True:
                self.changed.clear()
                await self.run_due()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(await self.next_wake()):
                        await self.changed.wait()

    async def _watch(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # A quiet spell yields an empty set, so a file waiting to settle is looked at again.
        async for changes in watch(self.folder, self.listening, stop_event=self.stopping, debounce=200,
                                   recursive=False, rust_timeout=250, yield_on_timeout=True):
            if changes or self._unsettled:
                await self.reload(settle=True)

    async def _publisher(self) -> None:
        """Finished videos of campaigns with `auto_post` are queued for publishing (each post once,
        whatever else asks for it too)."""
        async with self.bus.watch() as events:
            await self._post_missed()
            while True:
                event = await events.get()
                if event.state is not JobState.completed or event.publication is not None:
                    continue
                job = await self.store.job(event.job_id)
                campaign = self.by_id(job.campaign_id) if job is not None else None
                if campaign is not None and campaign.auto_post:
                    await self._auto_post(job, campaign, campaign.auto_post)

    async def _post_missed(self) -> None:
        """Videos that finished in the last MISSED_HOURS while no node led (a restart, a leader change) and were
        never asked for on a platform: asked for now. One that was asked for (even failed) is left alone."""
        await self.listening.wait()  # the campaigns are loaded
        since = self.clock() - timedelta(hours=MISSED_HOURS)
        for job in await self.store.jobs(JobState.completed.value, limit=1000):
            campaign = self.by_id(job.campaign_id) if job.campaign_id else None
            if campaign is None or not campaign.auto_post or datetime.fromisoformat(job.updated_at) < since:
                continue
            asked = {p.platform for p in await self.store.publications(job.id)}
            await self._auto_post(job, campaign, [p for p in campaign.auto_post if p not in asked])

    async def _auto_post(self, job: Any, campaign: Campaign, platforms: list[str]) -> None:
        for platform in platforms:  # one platform that cannot be served does not stop the others
            try:
                await self.publish(job.id, [platform], by=f"campaign {campaign.name}")
            except AvatarDaemonError as exc:
                if (campaign.name, platform) not in self._publish_warned:
                    self._publish_warned.add((campaign.name, platform))
                    self._notice("publish.missing", f"campaign {campaign.name} asks to post to {platform}, "
                                 f"but {exc}: its videos are kept on disk, not posted there", campaign, job_id=job.id)


def _signature(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _research_hash(research: Research) -> str:
    return "live:" + hashlib.sha256(research.model_dump_json(exclude={"meta"}).encode()).hexdigest()
