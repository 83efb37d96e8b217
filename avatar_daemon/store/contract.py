"""What every store backend holds and promises: the rows it hands out and the errors it raises.

`Store` is the contract the core programs against; `sqlite.py` and `postgres.py` keep it,
with the same semantics, and one test suite (tests/test_store.py) runs against both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from ..errors import AvatarDaemonError
from ..models import JobState, Research, Script, utcnow

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
ENDED = ("completed", "failed", "timeout", "cancelled")

# SQLSTATEs after which the whole transaction can simply run again: serialization failure,
# deadlock detected, lock not available. A lost connection is the pool's to replace.
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
        )

    @property
    def fence(self) -> tuple[str, int] | None:
        """What a runner passes back with its writes: they land only while the claim is still its own."""
        return (self.claimed_by, self.attempts) if self.claimed_by else None

    def public(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["status"] = self.status.value
        return d


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


class Store:
    """The one place that speaks SQL. Open with `Store.open(database, clock, node_id=...)`.

    `database` is a Path or `sqlite:///path` (one machine) or `postgresql://...` (several
    daemons). Both backends stamp times with the injected clock, so leases, schedules and
    tests agree on what "now" is. Method names and meanings are the same on both.
    """

    def __init__(self, clock: Clock = utcnow, node_id: str | None = None):
        self.clock = clock
        self.node_id = node_id or default_node_id()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, database: Path | str, clock: Clock = utcnow, node_id: str | None = None,
                   migrate: bool = True) -> AsyncIterator["Store"]:
        if is_postgres(database):
            from .postgres import PostgresStore as backend
        else:
            from .sqlite import SqliteStore as backend
            database = sqlite_path(database)
        async with backend.connect(database, clock, node_id, migrate) as store:
            yield store

    def _now(self) -> str:
        return self.clock().astimezone(timezone.utc).isoformat()

    def _lease(self, seconds: float) -> str:
        return (self.clock() + timedelta(seconds=seconds)).astimezone(timezone.utc).isoformat()
