"""What every store backend holds and promises: the rows it hands out and the errors it raises.

`Store` is the contract the core programs against; `sqlite.py` and `postgres.py` keep it,
with the same semantics, and one test suite (tests/test_store.py) runs against both.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib
import json
import logging
import socket
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, TypeVar

from ..errors import AvatarDaemonError
from ..models import AvatarProfile, JobEvent, JobState, Research, Script, VideoTemplate, utcnow

Clock = Callable[[], datetime]
"""Now, timezone-aware. Injected, so the store and the campaign scheduler stamp and compare the same time."""

T = TypeVar("T")
log = logging.getLogger("avatar_daemon.store")

LEASE_SECONDS = 60.0
"""How long a claim holds without a heartbeat: long enough to ride out a slow write, short enough
that a dead node's jobs run elsewhere within about a minute."""

NOTIFY_LIMIT = 7999
"""PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; SQLite keeps the same limit so code
that works on one backend works on the other."""

RUNNING = ("rendering", "submitting")
WAITING = "waiting_remote"
HELD = (*RUNNING, WAITING)
"""A job a node holds a lease on: running, or waiting remotely while that node checks on it
(a waiting job nobody is checking has no claim at all)."""

ANALYTICS_GROUPS = ("by_video", "by_campaign", "by_platform", "by_day")

# SQLSTATEs after which the whole transaction can simply run again: serialization failure,
# deadlock detected, lock not available, and a connection lost (the pool replaces it).
_PG_TRANSIENT = {"40001", "40P01", "55P03", "57P01", "08000", "08003", "08006"}


def busy(exc: BaseException) -> bool:
    """Trying later works: SQLite's BUSY/LOCKED past busy_timeout, or PostgreSQL's transient failures."""
    if isinstance(exc, sqlite3.OperationalError):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    if type(exc).__module__.startswith("psycopg"):
        from psycopg import OperationalError
        from psycopg_pool import PoolTimeout

        return getattr(exc, "sqlstate", None) in _PG_TRANSIENT or isinstance(exc, (PoolTimeout, OperationalError))
    return False


async def while_busy(call: Callable[[], Awaitable[T]], what: str, first: float = 0.05, cap: float = 5.0) -> T:
    """`call()`, called again with capped backoff for as long as the database is busy.

    A busy database is never a reason to fail work (a valid file, a rendered video): the
    write waits its turn. Each try is a whole transaction, which a busy error rolls back,
    so trying again is safe. Other errors, and cancellation, go through at once.
    """
    delay, tries = first, 0
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not busy(exc):
                raise
            tries += 1
            if tries == 1:
                log.warning("%s: the database is busy (%s); trying again until it is free", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, cap)
            continue
        if tries:
            log.info("%s: done after the database was busy for %d tries", what, tries)
        return result


def _iso(v: Any) -> Any:
    """Times as the ISO text SQLite keeps, whichever backend read them."""
    return v.astimezone(timezone.utc).isoformat() if isinstance(v, datetime) else v


def _json(v: Any) -> Any:
    """JSON columns: text on SQLite, already decoded (jsonb) on PostgreSQL."""
    return json.loads(v) if isinstance(v, (str, bytes)) else v


def add_figures(out: dict[str, list[dict]], rows: Iterable[Any]) -> None:
    """Platform figures (rows of video, campaign, platform, views, likes, comments) into `analytics` totals."""
    keyed = {name: {r["key"]: r for r in out[name]} for name in ("by_video", "by_campaign", "by_platform")}
    for r in rows:
        for name, key in (("by_video", r["video_id"]), ("by_campaign", r["campaign_id"]),
                          ("by_platform", r["platform"])):
            row = keyed[name].get(key)
            if row is None:
                row = keyed[name][key] = {"key": key}
                out[name].append(row)
            for event, n in (("view", r["views"]), ("like", r["likes"]), ("comment", r["comments"])):
                row[event] = row.get(event, 0) + int(n)


def remote_id_set(text: str | None) -> set[str]:
    """The ids in a comma-separated column (external_id, external_done)."""
    return {i for i in (text or "").split(",") if i}


def visible_rows(alias: str, workspace: str | None, video_id: int | None, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) for rows of table `alias` that join `video_generations v`:
    one workspace's videos, or one video, or all; `mark` is the driver's placeholder (``?``, ``%s``)."""
    clauses, args = [], []
    if workspace is not None:
        clauses.append(f"v.workspace_id = {mark}")
        args.append(workspace)
    if video_id is not None:
        clauses.append(f"{alias}.video_id = {mark}")
        args.append(video_id)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args


def _when(v: Any) -> datetime | None:
    if v is None:
        return None
    return v.astimezone(timezone.utc) if isinstance(v, datetime) else datetime.fromisoformat(v)


@dataclass
class NewJob:
    renderer: str
    format: str
    avatar_id: str
    title: str
    request: dict[str, Any]
    template_id: str | None = None
    workspace_id: str | None = None
    user_id: str | None = None
    campaign_id: int | None = None


@dataclass
class Job:
    id: int
    research_job_id: int | None
    status: JobState
    percent: float
    renderer: str
    format: str
    avatar_id: str
    template_id: str | None
    title: str
    request: dict[str, Any]
    external_id: str | None
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    workspace_id: str | None
    user_id: str | None
    campaign_id: int | None
    created_at: str
    updated_at: str
    # Who holds the job while it runs, and until when; `attempts` is the fencing token.
    claimed_by: str | None = None
    lease_until: str | None = None
    # A remote render's wait (waiting_remote): when it is next checked, and since when it waits.
    next_check_at: str | None = None
    remote_since: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> "Job":
        return cls(
            id=row["id"], research_job_id=row["research_job_id"], status=JobState(row["status"]),
            percent=row["percent"], renderer=row["renderer"], format=row["format"], avatar_id=row["avatar_id"],
            template_id=row["template_id"], title=row["title"], request=_json(row["request"]),
            external_id=row["external_id"], result=_json(row["result"]) if row["result"] else None,
            error=row["error"], attempts=row["attempts"], workspace_id=row["workspace_id"],
            user_id=row["user_id"], campaign_id=row["campaign_id"], created_at=_iso(row["created_at"]),
            updated_at=_iso(row["updated_at"]), claimed_by=row["claimed_by"], lease_until=_iso(row["lease_until"]),
            next_check_at=_iso(row["next_check_at"]), remote_since=_iso(row["remote_since"]),
        )

    @property
    def fence(self) -> tuple[str, int] | None:
        """What a runner passes back with its writes: they land only while the claim is still its own."""
        return (self.claimed_by, self.attempts) if self.claimed_by else None

    def public(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["status"] = self.status.value
        return d


PUBLISHING = ("pending", "uploading", "processing")
"""A publication's states before it ends (published or failed): it is claimed and worked on in these."""


@dataclass
class Publication:
    """One video on one platform account: the record that keeps it from being posted twice."""

    id: int
    job_id: int
    platform: str
    account: str
    state: str
    percent: float
    facts: dict[str, Any]
    """What the publisher saved on the way (a session URI, a confirmed offset): `Upload.state`."""
    options: dict[str, Any]
    upload_offset: int | None
    remote_id: str | None
    url: str | None
    error: str | None
    message: str
    attempts: int
    failures: int
    not_before: str | None
    claimed_by: str | None
    lease_until: str | None
    requested_by: str
    created_at: str
    updated_at: str
    published_at: str | None

    @classmethod
    def from_row(cls, r: Any) -> "Publication":
        return cls(
            id=r["id"], job_id=r["job_id"], platform=r["platform"], account=r["account"], state=r["state"],
            percent=float(r["percent"]), facts=_json(r["facts"]) or {}, options=_json(r["options"]) or {},
            upload_offset=r["upload_offset"], remote_id=r["remote_id"], url=r["url"], error=r["error"],
            message=r["message"], attempts=r["attempts"], failures=r["failures"], not_before=_iso(r["not_before"]),
            claimed_by=r["claimed_by"], lease_until=_iso(r["lease_until"]), requested_by=r["requested_by"],
            created_at=_iso(r["created_at"]), updated_at=_iso(r["updated_at"]), published_at=_iso(r["published_at"]))

    @property
    def fence(self) -> tuple[str, int] | None:
        """(node, attempt) of the claim: a write with it lands only while the claim is still that node's."""
        return (self.claimed_by, self.attempts) if self.claimed_by else None

    @property
    def ended(self) -> bool:
        return self.state not in PUBLISHING

    def public(self) -> dict[str, Any]:
        """What interfaces show (HTTP, Slack, the studio, events): never the saved upload facts."""
        return {"id": self.id, "job_id": self.job_id, "platform": self.platform, "account": self.account,
                "state": self.state, "percent": self.percent, "remote_id": self.remote_id, "url": self.url,
                "error": self.error, "message": self.message, "not_before": self.not_before,
                "requested_by": self.requested_by, "created_at": self.created_at, "updated_at": self.updated_at,
                "published_at": self.published_at}


@dataclass
class NewPublication:
    platform: str
    account: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class CampaignRow:
    id: int
    name: str
    path: str | None
    definition: str
    paused: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    removed_at: str | None

    @classmethod
    def from_row(cls, r: Any) -> "CampaignRow":
        return cls(r["id"], r["name"], r["path"], r["definition"], bool(r["paused"]), _when(r["next_run_at"]),
                   _when(r["last_run_at"]), _iso(r["removed_at"]))


@dataclass(frozen=True)
class RunBasis:
    """The state a campaign run started from; `record_campaign_run` takes it back.

    Opaque to callers: the research id the campaign had considered through, the highest
    research id committed when the run began, and the campaign's last recorded run, so two
    runs begun from one state cannot both be recorded. Research ids commit in order on both
    backends (SQLite's one writer; on PostgreSQL research inserts take a transaction lock
    that the basis read waits for), so "above the mark" never skips a late commit.
    """

    campaign_id: int
    last_run_id: int | None
    considered_through: int
    research_through: int


class RunConflict(AvatarDaemonError):
    """Another run of the campaign (from another process) was recorded after this one began: make it again."""


class SlotTaken(RunConflict):
    """The scheduled time this run answers was answered by another run: nothing to make again."""


@dataclass
class Pick:
    """One research chosen by a campaign run: existing (research_id) or fetched live (research + hash)."""

    research_id: int | None
    research: Research
    content_hash: str | None
    script: Script
    jobs: list[NewJob]
    insight_keys: list[str]
    why: str


@dataclass
class ResearchJob:
    id: int
    source: str
    title: str
    topic: str
    filename: str | None
    research: Research
    script: Script
    created_at: str
    workspace_id: str | None = None

    @classmethod
    def from_row(cls, r: Any) -> "ResearchJob":
        def model(kind, v):
            return kind.model_validate_json(v) if isinstance(v, (str, bytes)) else kind.model_validate(v)

        return cls(r["id"], r["source"], r["title"], r["topic"], r["filename"], model(Research, r["research"]),
                   model(Script, r["script"]), _iso(r["created_at"]), r["workspace_id"])


@dataclass
class Node:
    """A daemon sharing the database, as its last heartbeat left it."""

    node_id: str
    host: str
    started_at: str
    heartbeat_at: str
    renderers: list[str]
    running: int = 0

    @classmethod
    def from_row(cls, r: Any) -> "Node":
        return cls(r["node_id"], r["host"], _iso(r["started_at"]), _iso(r["heartbeat_at"]),
                   list(_json(r["renderers"])), int(r["running"]))


@dataclass
class Leadership:
    """A held (or not) leader lock. `lost` is set when a held lock goes away with its connection:
    the holder must stop acting as leader at once, because another node may already have it."""

    name: str
    held: bool
    lost: asyncio.Event = field(default_factory=asyncio.Event)


def default_node_id() -> str:
    """One machine, one node, stable across restarts: a restart then requeues its own interrupted jobs.
    Several daemons on one machine must each be given their own id."""
    return socket.gethostname() or "localhost"


def refused(current: JobState, new: JobState, fence: tuple[str, int] | None) -> bool:
    """Whether an event in state `new` may not land on a job in `current` (see `Store.record_event`)."""
    if current.final:
        return fence is not None or not new.final
    return current is JobState.waiting_remote and new is JobState.rendering


def ended(state: str) -> str:
    return {"timeout": "timed out", "cancelled": "was cancelled"}.get(state, state)


def check_notify(channel: str, payload: str) -> None:
    if not channel.isidentifier():
        raise ValueError(f"notify channel {channel!r}: use letters, digits and underscores only")
    if len(payload.encode()) > NOTIFY_LIMIT:
        raise ValueError(f"notify {channel}: the payload is {len(payload.encode())} bytes; the limit is "
                         f"{NOTIFY_LIMIT} (send an id and read the rest from the store)")


def is_postgres(database: Path | str) -> bool:
    return isinstance(database, str) and database.startswith(("postgresql://", "postgres://"))


def sqlite_path(database: Path | str) -> Path:
    """`sqlite:///relative/file` and `sqlite:////absolute/file`, as SQLAlchemy spells them, or a plain path."""
    if isinstance(database, str) and database.startswith("sqlite:///"):
        return Path(database[len("sqlite:///"):])
    return Path(database)


def describe(database: Path | str) -> str:
    """The database for logs and /healthz: never its password."""
    if is_postgres(database):
        from urllib.parse import urlsplit

        u = urlsplit(str(database))
        host = u.hostname or "localhost"
        who = f"{u.username}@" if u.username else ""
        port = f":{u.port}" if u.port else ""
        return f"postgresql://{who}{host}{port}{u.path}"
    return f"sqlite:///{sqlite_path(database)}"


class Store(abc.ABC):
    """The one place that speaks SQL. Open with `Store.open(database, clock, node_id=...)`.

    `database` is a Path or `sqlite:///path` (one machine) or `postgresql://...` (several
    daemons). Both backends stamp times with the injected clock, so leases, schedules and
    tests agree on what "now" is. Method names and meanings are the same on both.
    """

    _backends: dict[str, type["Store"]] = {}
    _modules = {"sqlite": "sqlite", "postgresql": "postgres"}

    def __init_subclass__(cls, backend: str | None = None, **kw: Any):
        """A backend names the kind of database it opens. `open` loads a backend's module on first use:
        psycopg is imported only by a daemon that uses PostgreSQL (it adds a good part of a second to
        every start on a busy machine), and this module never imports its own subclasses."""
        super().__init_subclass__(**kw)
        if backend:
            Store._backends[backend] = cls

    def __init__(self, clock: Clock = utcnow, node_id: str | None = None):
        self.clock = clock
        self.node_id = node_id or default_node_id()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, database: Path | str, clock: Clock = utcnow, node_id: str | None = None,
                   migrate: bool = True) -> AsyncIterator["Store"]:
        """The store for `database`, migrated unless told otherwise."""
        kind = "postgresql" if is_postgres(database) else "sqlite"
        if kind not in Store._backends:
            importlib.import_module(f"{__package__}.{Store._modules[kind]}")
        backend = Store._backends[kind]
        async with backend.connect(database if kind == "postgresql" else sqlite_path(database), clock, node_id,
                                   migrate) as store:
            yield store

    @classmethod
    @abc.abstractmethod
    def connect(cls, database: Any, clock: Clock, node_id: str | None,
                migrate: bool) -> contextlib.AbstractAsyncContextManager["Store"]:
        raise NotImplementedError

    def _now(self) -> str:
        return self.clock().astimezone(timezone.utc).isoformat()

    def _lease(self, seconds: float) -> str:
        return (self.clock() + timedelta(seconds=seconds)).astimezone(timezone.utc).isoformat()

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply the backend's migrations not yet applied, each whole or not at all; their names."""
        raise NotImplementedError

    # ---- catalogue -------------------------------------------------------------

    @abc.abstractmethod
    async def sync_catalogue(self, avatars: Iterable[AvatarProfile], templates: Iterable[VideoTemplate]) -> None:
        raise NotImplementedError

    # ---- research and jobs -----------------------------------------------------

    @abc.abstractmethod
    async def add_research_with_jobs(
        self, content_hash: str, research: Research, script: Script, filename: str | None,
        jobs: list[NewJob], workspace_id: str | None = None, user_id: str | None = None,
        campaign_id: int | None = None,
    ) -> tuple[int, list[int], bool]:
        """Insert research and its video jobs atomically; (research id, job ids, created?)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def add_jobs(self, jobs: list[NewJob], research_id: int | None = None) -> list[int]:
        raise NotImplementedError

    @abc.abstractmethod
    async def research_job(self, research_id: int) -> ResearchJob | None:
        raise NotImplementedError

    @abc.abstractmethod
    async def job(self, job_id: int) -> Job | None:
        raise NotImplementedError

    @abc.abstractmethod
    async def jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        raise NotImplementedError

    @abc.abstractmethod
    async def jobs_page(self, workspace: str | None, status: str | None = None, limit: int = 50,
                        before_id: int | None = None) -> list[Job]:
        """Newest first, one page; `workspace` None means every row (an admin's view)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def research_page(self, workspace: str | None, limit: int = 20, with_insights: bool = False,
                            before: int | None = None) -> list[ResearchJob]:
        """Recent research: shared research (inbox, campaigns) and the workspace's own, newest first, ids
        below `before`. `with_insights` is filtered in the query, so research a person can pick from is
        found however many plain scripts (no insights) came after it."""
        raise NotImplementedError

    @abc.abstractmethod
    async def render_seconds(self) -> list[float]:
        raise NotImplementedError

    # ---- analytics -------------------------------------------------------------

    @abc.abstractmethod
    async def add_analytics(self, video_id: int, event: str, platform: str | None) -> None:
        raise NotImplementedError

    async def analytics(self, workspace: str | None, video_id: int | None = None) -> dict[str, list[dict]]:
        """Counts by event, per video, campaign, platform and day, over the videos a caller may see.

        Each grouping is `[{"key": k, "<event>": n, ...}]`, in key order; the backends give only the counts.
        The platforms' own figures of published posts (their latest value) count in too: their
        views as `view`, with `like` and `comment`, per video, campaign and platform (not per
        day: a latest value has no day).
        """
        out: dict[str, list[dict]] = {}
        for group in ANALYTICS_GROUPS:
            totals: dict[Any, dict[str, int]] = {}
            for key, event, n in await self._analytics_counts(group, workspace, video_id):
                totals.setdefault(key, {})[event] = n
            out[group] = [{"key": k, **v} for k, v in totals.items()]
        add_figures(out, await self._figure_rows(workspace, video_id))
        return out

    @abc.abstractmethod
    async def _analytics_counts(self, group: str, workspace: str | None,
                                video_id: int | None) -> list[tuple[Any, str, int]]:
        """`(key, event, count)` of one of ANALYTICS_GROUPS, ordered by key: a day is `YYYY-MM-DD` in UTC."""

    @abc.abstractmethod
    async def _figure_rows(self, workspace: str | None, video_id: int | None) -> list[Any]:
        """`(video_id, campaign_id, platform, views, likes, comments)` of the platforms' latest figures."""
        raise NotImplementedError

    # ---- claims, leases and job events -----------------------------------------

    @abc.abstractmethod
    async def claim_next(self, renderer: str, node_id: str | None = None,
                         lease_seconds: float = LEASE_SECONDS) -> Job | None:
        """Atomically move the oldest queued job of a renderer to rendering, leased to `node_id`."""
        raise NotImplementedError

    @abc.abstractmethod
    async def claim(self, job_id: int, node_id: str | None = None, lease_seconds: float = LEASE_SECONDS,
                    ) -> Job | None:
        """Move one queued job to rendering; None when someone else took it first."""
        raise NotImplementedError

    @abc.abstractmethod
    async def claim_check(self, renderer: str, node_id: str | None = None,
                          lease_seconds: float = LEASE_SECONDS) -> Job | None:
        """Lease the most overdue `waiting_remote` job of a renderer whose check is due and that no node
        is checking, for one check. It stays `waiting_remote`; the claim is fenced like a render's
        (same attempt), and a `waiting_remote` event with `next_check_at` in its data gives it back."""
        raise NotImplementedError

    @abc.abstractmethod
    async def check_remote_now(self, renderer: str, remote_id: str) -> list[int]:
        """Make the check of the renderer's job(s) holding `remote_id` (one of its comma-separated
        external ids) due now, and wake every node. A job still submitting gets it as its first check
        time; one being checked is checked again straight after. Their ids."""
        raise NotImplementedError

    @abc.abstractmethod
    async def remote_ids(self, renderer: str) -> set[str]:
        """The remote ids saved by the renderer's jobs not ended (submitting, rendering or waiting), on
        every node, less those `remote_finished` marked: what the remote service may still be working
        on for the whole cluster (a render cap shared by the nodes on one account is counted from these)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def remote_finished(self, renderer: str, remote_id: str) -> None:
        """Mark `remote_id`, a part of a job not ended, as finished remotely: whichever node saw it,
        every node's `remote_ids` leaves it out from now on, while its job goes on with its other parts."""
        raise NotImplementedError

    @abc.abstractmethod
    async def next_check(self, renderers: Iterable[str]) -> datetime | None:
        """When the first check of these renderers' waiting jobs falls due (nobody checking them), if any."""
        raise NotImplementedError

    @abc.abstractmethod
    async def extend_leases(self, node_id: str | None = None, lease_seconds: float = LEASE_SECONDS) -> int:
        """The heartbeat: every job the node still runs or checks is its own for another lease. How many."""
        raise NotImplementedError

    @abc.abstractmethod
    async def reap_expired(self) -> list[int]:
        """Running jobs whose lease ran out (their node died or hung) back in the queue for any node,
        and waiting jobs whose check's lease ran out due for a check by any node.

        The remote id stays, so a remote render is resumed, never created twice. Idempotent:
        any node may reap, and two reaping at once requeue each job once.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def requeue_interrupted(self, node_id: str | None = None) -> list[int]:
        """At start, the jobs this node's last stop left running go back to the queue, keeping any remote
        id to resume, and the waiting jobs it was checking are due for a check again. Other nodes' jobs
        are theirs until their lease runs out (see `reap_expired`)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def requeue_ended(self, job_id: int, states: Iterable[str], by: str | None = None,
                            ) -> tuple[Job, JobEvent] | None:
        """An ended job back in the queue as a new try, and the event that says so, in one transaction.

        None when the job is not in one of `states` (it did not end that way, or another caller
        retried it first). The result, error and times of the last try are cleared; a remote id
        is kept, so the renderer can resume a remote render that did not itself fail.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def retries(self, job_id: int) -> int:
        """How many times a person has retried this job (restarts after a crash are not retries)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def record_event(self, event: JobEvent, result: dict[str, Any] | None = None,
                           fence: tuple[str, int] | None = None) -> bool:
        """Persist an event and the job's new state in one transaction; False when nothing was written.

        `fence` is (node id, attempt) from the runner's claim: the write lands only while the
        job is still that claim's, so a node that lost its lease never overwrites the new
        owner's work, and never on an ended job. Without a fence (a person cancelling) it lands
        unless it is progress on an ended job: a late report never reopens one. Progress
        (`rendering`) never lands on a `waiting_remote` job either.

        A `waiting_remote` event with `next_check_at` (ISO time) in its data gives the job back:
        no node holds it, its next check falls due then (or sooner, if `check_remote_now` came
        during the check), and its wait began now unless it already waited. The event's
        `node_id` is stored with it.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def events(self, job_id: int) -> list[JobEvent]:
        raise NotImplementedError

    # ---- publications ----------------------------------------------------------

    @abc.abstractmethod
    async def request_publications(self, job_id: int, wanted: list[NewPublication], requested_by: str,
                                   ) -> list[tuple[Publication, bool]]:
        """One row per (job, platform, account), in one transaction: (row, created?) for each wanted.

        An existing row is returned as it is, never doubled: UNIQUE (job_id, platform, account)
        makes two triggers racing on two nodes publish once. A failed one goes back in the queue
        (`created` True), its facts kept so the publisher finds what the platform may hold.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def publication(self, publication_id: int) -> Publication | None:
        raise NotImplementedError

    @abc.abstractmethod
    async def publications(self, job_id: int | None = None, states: Iterable[str] | None = None,
                           limit: int = 1000) -> list[Publication]:
        """Oldest first: one video's, or every video's in these states."""
        raise NotImplementedError

    @abc.abstractmethod
    async def claim_publication(self, platforms: Iterable[str], node_id: str | None = None,
                                lease_seconds: float = LEASE_SECONDS) -> Publication | None:
        """The oldest due publication of these platforms, leased to `node_id`, attempts + 1.

        Due: not ended, past its `not_before`, and unclaimed or its lease run out (its node
        died): the new owner gets the facts the old one saved and resumes from them. Only the
        node that rendered the video claims it while that node heartbeats (the file is there);
        any node once it has been silent for `lease_seconds`.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def next_publication_at(self, platforms: Iterable[str]) -> datetime | None:
        """When the earliest unclaimed publication of these platforms falls due (None: none waits)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def extend_publication_lease(self, publication_id: int, fence: tuple[str, int],
                                       lease_seconds: float = LEASE_SECONDS) -> bool:
        """The claim's heartbeat; False when it is no longer this claim's (stop working on it)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def save_publication(self, publication_id: int, fence: tuple[str, int], *, state: str | None = None,
                               facts: dict[str, Any] | None = None, percent: float | None = None,
                               message: str | None = None) -> Publication | None:
        """Merge `facts` into the saved ones (and `offset` into upload_offset) while the claim holds.

        None, and nothing written, when the claim is gone or the publication ended.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def end_publication(self, publication_id: int, fence: tuple[str, int], state: str, *,
                              remote_id: str | None = None, url: str | None = None, error: str | None = None,
                              message: str = "") -> Publication | None:
        """Published or failed, and the claim let go; None when the claim was no longer this one's."""
        raise NotImplementedError

    @abc.abstractmethod
    async def defer_publication(self, publication_id: int, fence: tuple[str, int], not_before: datetime,
                                message: str, *, failed: bool = False) -> Publication | None:
        """Let the claim go until `not_before` (a quota resets, a retry's backoff); `failed` counts a
        transient failure (reset by any other outcome). None when the claim was no longer this one's."""
        raise NotImplementedError

    @abc.abstractmethod
    async def release_publications(self, node_id: str | None = None) -> list[int]:
        """At start: this node's claims from its last life go back to the queue, their facts kept."""
        raise NotImplementedError

    @abc.abstractmethod
    async def record_figures(self, publication_id: int, views: int, likes: int, comments: int) -> None:
        """A post's figures as the platform reports them now (the latest value replaces the last)."""
        raise NotImplementedError

    # ---- campaigns -------------------------------------------------------------

    @abc.abstractmethod
    async def upsert_campaign(self, name: str, path: str | None, definition: str) -> CampaignRow:
        """The file's latest good definition; a campaign seen again (renamed file) keeps its id and history."""
        raise NotImplementedError

    @abc.abstractmethod
    async def remove_campaign(self, name: str) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    async def campaign_rows(self) -> list[CampaignRow]:
        raise NotImplementedError

    @abc.abstractmethod
    async def campaign_row(self, name: str) -> CampaignRow | None:
        raise NotImplementedError

    @abc.abstractmethod
    async def set_campaign_schedule(self, campaign_id: int, next_run_at: datetime | None) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    async def set_campaign_paused(self, name: str, paused: bool) -> bool:
        raise NotImplementedError

    @abc.abstractmethod
    async def used_insights(self, campaign_id: int) -> set[str]:
        raise NotImplementedError

    @abc.abstractmethod
    async def campaign_run_basis(self, campaign_id: int) -> RunBasis:
        """Where a run of this campaign starts: what it has considered, and what exists now.

        Research ids up to the basis are all committed when it is read, and later ones are
        higher, so "above the mark" never skips a research row that committed late.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def research_unconsidered(self, basis: RunBasis, sources: list[str], since: datetime) -> list[ResearchJob]:
        """Research of these sources, created since `since`, that the campaign had not considered when
        its run began. Recording the run on `basis` marks every such row considered, chosen or not.
        Its own live fetches are not among them: it considered those when it fetched them."""
        raise NotImplementedError

    @abc.abstractmethod
    async def research_since(self, sources: list[str], since: datetime) -> list[ResearchJob]:
        """Every research of these sources created since `since` (batch: a window, whatever ran before)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def campaign_jobs_since(self, campaign_id: int, since: datetime) -> int:
        raise NotImplementedError

    @abc.abstractmethod
    async def record_campaign_run(self, basis: RunBasis, picks: list[Pick], *, trigger: str,
                                  slot: datetime | None, next_run_at: datetime | None, considered: list[dict],
                                  message: str, ran_at: datetime) -> tuple[int, list[int]]:
        """Jobs, used insights, the run, the research it considered and the next run time in one transaction.

        So a crash leaves either the whole run (and the schedule moved on) or none of it
        (and the due run happens again at the next start): never a skipped or a doubled run,
        nor research considered twice or never. RunConflict when another run was recorded
        since `basis` was read, or another run already answered `slot`.
        """
        raise NotImplementedError

    @abc.abstractmethod
    async def campaign_runs(self, campaign_id: int, limit: int = 20) -> list[dict[str, Any]]:
        raise NotImplementedError

    @abc.abstractmethod
    async def campaign_totals(self) -> dict[int, dict[str, int]]:
        raise NotImplementedError

    @abc.abstractmethod
    async def ended_before(self, cutoff: datetime) -> list[int]:
        raise NotImplementedError

    # ---- small state for plugins -----------------------------------------------

    @abc.abstractmethod
    async def get_meta(self, key: str) -> str | None:
        raise NotImplementedError

    @abc.abstractmethod
    async def set_meta(self, key: str, value: str) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    async def instance_id(self) -> str:
        """A random id made once per database: remote idempotency keys must not collide across installs."""
        raise NotImplementedError

    # ---- paid usage ------------------------------------------------------------

    @abc.abstractmethod
    async def record_usage(self, job_id: int, renderer: str, seconds: float, campaign_id: int | None) -> bool:
        """Count one paid render; False when this job was already counted (a resubmit after a crash)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def usage(self, renderer: str, since: datetime, campaign_id: int | None = None,
                    exclude_job: int | None = None) -> tuple[int, float]:
        """(renders, seconds) counted for a renderer since a time, overall or for one campaign."""
        raise NotImplementedError

    @abc.abstractmethod
    async def counts(self) -> dict[str, int]:
        raise NotImplementedError

    # ---- nodes and cross-node signals ------------------------------------------

    @abc.abstractmethod
    async def heartbeat_node(self, node_id: str, host: str, started_at: datetime, renderers: list[str]) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    async def nodes(self) -> list[Node]:
        raise NotImplementedError

    @abc.abstractmethod
    async def remove_node(self, node_id: str) -> bool:
        raise NotImplementedError

    @abc.abstractmethod
    async def notify(self, channel: str, payload: str = "") -> None:
        """Tell every listener of `channel`, on every node (SQLite: this process). Under 8000 bytes:
        send an id and let listeners read the rest from the store."""
        raise NotImplementedError

    @abc.abstractmethod
    def listen(self, channels: Iterable[str]) -> contextlib.AbstractAsyncContextManager[
            AsyncIterator[tuple[str, str]]]:
        """`async with store.listen([...]) as notes: async for channel, payload in notes`.

        Every notify from the moment the block opens. Notifications can be lost (a dropped
        connection), so a listener keeps a slow poll as well.
        """
        raise NotImplementedError

    @abc.abstractmethod
    def leader(self, name: str) -> contextlib.AbstractAsyncContextManager[Leadership]:
        """`async with store.leader("campaigns") as lead`: one try at leading `name`.

        `lead.held` says whether this node leads until the block ends; `lead.lost` is set if
        the lead goes away before that (the holder must stop at once). SQLite: always held.
        """
        raise NotImplementedError
