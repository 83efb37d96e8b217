"""The PostgreSQL store: several daemons on one database.

The same contract as sqlite.py, in PostgreSQL's terms: claims take `FOR UPDATE SKIP LOCKED`
so nodes never wait on or race for one row; a runner's writes lock the job row and check
its fence; research inserts and a campaign's run basis serialize on a transaction lock so
research ids commit in order, as SQLite's one writer gives for free; wake-ups are NOTIFY;
the leader is a session advisory lock on a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ..errors import AvatarDaemonError
from ..models import AvatarProfile, JobEvent, JobState, Research, Script, VideoTemplate, utcnow
from .contract import (
    HELD, LEASE_SECONDS, RUNNING, WAITING, CampaignRow, Clock, Job, Leadership, NewJob, Node, Pick, ResearchJob, RunBasis,
    RunConflict, SlotTaken, Store, _iso, check_notify, describe, ended, refused, remote_id_set,
)
from .contract import PUBLISHING, NewPublication, Publication, visible_rows  # publishing's part; analytics' filter

MIGRATIONS = Path(__file__).parent.parent / "migrations" / "postgresql"

# Transaction-level advisory locks (two-int keys, a space of their own): one for migrations, one
# that research inserts and campaign run bases take so research ids commit in order.
_LOCKS = 0x61766174  # "avat"
_MIGRATING, _RESEARCH = 1, 2

_ANALYTICS_KEYS = {"by_video": "a.video_id", "by_campaign": "v.campaign_id", "by_platform": "a.platform",
                   "by_day": "to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"}

# psycopg logs connection attempts and notices with the conninfo at DEBUG; a URL may hold a password.
logging.getLogger("psycopg").setLevel(logging.INFO)
logging.getLogger("psycopg.pool").setLevel(logging.WARNING)  # a line per borrowed connection otherwise
log = logging.getLogger(__name__)

LEADER_CHECK_SECONDS = 2.0
"""How often a leader's connection is asked whether it is alive: the most a holder goes on leading
after its lock went away with the connection."""


class DatabaseUnavailable(AvatarDaemonError):
    """The PostgreSQL server could not be reached or refused us."""


def _text(v: str | None) -> str | None:
    """PostgreSQL text and jsonb cannot hold NUL, which SQLite takes: a renderer's error output or a
    payload may carry one, and its write must not fail for it. It becomes U+FFFD, as bad bytes do."""
    return v.replace("\x00", "\ufffd") if isinstance(v, str) else v


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {_clean(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return _text(v)


def _jsonb(v: Any) -> str:
    return json.dumps(_clean(v), default=lambda o: _text(str(o)))


def _isotime(v: datetime | None) -> str | None:
    return v.astimezone(timezone.utc).isoformat() if v else None


def _isos(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) for k, v in row.items()}


class PostgresStore(Store, backend="postgresql"):
    """A connection pool; writes are transactions on one pooled connection each."""

    def __init__(self, url: str, pool: AsyncConnectionPool, clock: Clock = utcnow, node_id: str | None = None):
        super().__init__(clock, node_id)
        self.url = url
        self.pool = pool

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, clock: Clock = utcnow, node_id: str | None = None,
                      migrate: bool = True, max_size: int = 8) -> AsyncIterator["PostgresStore"]:
        try:  # once by hand: a wrong URL is one clear error, not a pool retrying in the background
            conn = await psycopg.AsyncConnection.connect(url, connect_timeout=10)
            await conn.close()
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"{describe(url)}: cannot connect: {str(exc).strip()}") from None
        pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False, name="avatar-daemon",
                                   kwargs={"autocommit": True, "row_factory": dict_row})
        await pool.open(wait=True, timeout=30)
        try:
            store = cls(url, pool, clock, node_id)
            if migrate:
                await store.migrate()
            yield store
        finally:
            await pool.close()

    async def migrate(self) -> list[str]:
        """Every migration not yet applied, each in its own transaction; daemons starting together take turns."""
        applied = []
        async with self.pool.connection() as conn:
            async with conn.transaction():  # IF NOT EXISTS alone races another daemon's CREATE
                await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, _MIGRATING))
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, "
                                   "applied_at timestamptz NOT NULL)")
            for path in sorted(MIGRATIONS.glob("*.sql")):
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, _MIGRATING))
                    cur = await conn.execute("SELECT 1 FROM schema_migrations WHERE name = %s", (path.name,))
                    if await cur.fetchone():
                        continue
                    await conn.execute(path.read_text())  # no parameters: the whole file in one go
                    await conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (path.name, self._now()))
                applied.append(path.name)
        return applied

    async def _rows(self, query: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, tuple(args))
            return await cur.fetchall()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    @staticmethod
    async def _wake(conn: psycopg.AsyncConnection, renderers: Iterable[str]) -> None:
        """Inside the transaction: PostgreSQL delivers the NOTIFY at commit, so a listener finds the job."""
        for renderer in sorted(set(renderers)):
            await conn.execute("SELECT pg_notify('jobs', %s)", (renderer,))

    # ---- catalogue -----------------------------------------------------------

    async def sync_catalogue(self, avatars: Iterable[AvatarProfile], templates: Iterable[VideoTemplate]) -> None:
        now = self._now()
        async with self.transaction() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO avatar_profiles VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "name=excluded.name, tier=excluded.tier, profile=excluded.profile, updated_at=excluded.updated_at",
                [(a.id, a.name, a.tier, a.model_dump_json(), now) for a in avatars])
            await cur.executemany(
                "INSERT INTO video_templates VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "name=excluded.name, template=excluded.template, updated_at=excluded.updated_at",
                [(t.id, t.name, t.model_dump_json(), now) for t in templates])

    # ---- research and jobs ---------------------------------------------------

    async def add_research_with_jobs(
        self, content_hash: str, research: Research, script: Script, filename: str | None,
        jobs: list[NewJob], workspace_id: str | None = None, user_id: str | None = None,
        campaign_id: int | None = None,
    ) -> tuple[int, list[int], bool]:
        now = self._now()
        async with self.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, _RESEARCH))
            cur = await conn.execute(
                "INSERT INTO research_jobs (content_hash, source, title, topic, filename, research, script, "
                "workspace_id, user_id, campaign_id, created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (content_hash) DO NOTHING RETURNING id",
                (content_hash, research.source, _text(research.title), _text(research.topic), _text(filename),
                 research.model_dump_json(), script.model_dump_json(), workspace_id, user_id, campaign_id, now))
            row = await cur.fetchone()
            if row is None:
                cur = await conn.execute(
                    "SELECT r.id, array_remove(array_agg(v.id ORDER BY v.id), NULL) AS ids FROM research_jobs r "
                    "LEFT JOIN video_generations v ON v.research_job_id = r.id WHERE r.content_hash = %s "
                    "GROUP BY r.id", (content_hash,))
                existing = await cur.fetchone()
                return existing["id"], list(existing["ids"]), False
            research_id = row["id"]
            job_ids = [await self._insert_job(conn, j, research_id, now) for j in jobs]
            await self._wake(conn, (j.renderer for j in jobs))
        return research_id, job_ids, True

    async def add_jobs(self, jobs: list[NewJob], research_id: int | None = None) -> list[int]:
        now = self._now()
        async with self.transaction() as conn:
            ids = [await self._insert_job(conn, j, research_id, now) for j in jobs]
            await self._wake(conn, (j.renderer for j in jobs))
        return ids

    async def _insert_job(self, conn: psycopg.AsyncConnection, j: NewJob, research_id: int | None, now: str) -> int:
        cur = await conn.execute(
            "INSERT INTO video_generations (research_job_id, campaign_id, status, renderer, format, avatar_id, "
            "template_id, title, request, workspace_id, user_id, created_at, updated_at) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
            (research_id, j.campaign_id, JobState.queued.value, j.renderer, j.format, j.avatar_id, j.template_id,
             _text(j.title), _jsonb(j.request), j.workspace_id, j.user_id, now, now))
        job_id = (await cur.fetchone())["id"]
        await self._insert_event(conn, job_id, JobState.queued.value, 0, "queued", {}, now, self.node_id)
        return job_id

    @staticmethod
    async def _insert_event(conn: psycopg.AsyncConnection, job_id: int, state: str, percent: float | None,
                            message: str, data: dict[str, Any], at: str, node_id: str | None) -> None:
        await conn.execute(
            "INSERT INTO events (job_id, state, percent, message, data, at, node_id) VALUES (%s,%s,%s,%s,%s,%s,%s)",
            (job_id, state, percent, _text(message), _jsonb(data), at, node_id))

    async def research_job(self, research_id: int) -> ResearchJob | None:
        rows = await self._rows("SELECT * FROM research_jobs WHERE id = %s", (research_id,))
        return ResearchJob.from_row(rows[0]) if rows else None

    async def job(self, job_id: int) -> Job | None:
        rows = await self._rows("SELECT * FROM video_generations WHERE id = %s", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    async def jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        if status:
            rows = await self._rows("SELECT * FROM video_generations WHERE status = %s ORDER BY id DESC LIMIT %s",
                                    (status, limit))
        else:
            rows = await self._rows("SELECT * FROM video_generations ORDER BY id DESC LIMIT %s", (limit,))
        return [Job.from_row(r) for r in rows]

    async def jobs_page(self, workspace: str | None, status: str | None = None, limit: int = 50,
                        before_id: int | None = None) -> list[Job]:
        query, args = "SELECT * FROM video_generations WHERE true", []
        if workspace is not None:
            query += " AND workspace_id = %s"
            args.append(workspace)
        if status:
            query += " AND status = %s"
            args.append(status)
        if before_id:
            query += " AND id < %s"
            args.append(before_id)
        rows = await self._rows(query + " ORDER BY id DESC LIMIT %s", (*args, limit))
        return [Job.from_row(r) for r in rows]

    async def research_page(self, workspace: str | None, limit: int = 20, with_insights: bool = False,
                            before: int | None = None) -> list[ResearchJob]:
        where, args = ["TRUE"], []
        if workspace is not None:
            where.append("(workspace_id IS NULL OR workspace_id = %s)")
            args.append(workspace)
        if with_insights:
            where.append("jsonb_array_length(research::jsonb -> 'insights') > 0")
        if before is not None:
            where.append("id < %s")
            args.append(before)
        rows = await self._rows(f"SELECT * FROM research_jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
                                (*args, limit))
        return [ResearchJob.from_row(r) for r in rows]

    async def render_seconds(self) -> list[float]:
        rows = await self._rows("SELECT (result->>'render_seconds')::float8 AS s FROM video_generations "
                                "WHERE status = 'completed' AND result IS NOT NULL")
        return [float(r["s"]) for r in rows if r["s"] is not None]

    # ---- analytics ------------------------------------------------------------------

    async def add_analytics(self, video_id: int, event: str, platform: str | None) -> None:
        async with self.transaction() as conn:
            await conn.execute("INSERT INTO video_analytics (video_id, event, platform, at) VALUES (%s,%s,%s,%s)",
                               (video_id, event, platform, self._now()))

    async def _analytics_counts(self, group: str, workspace: str | None,
                                video_id: int | None) -> list[tuple[Any, str, int]]:
        where, args = visible_rows("a", workspace, video_id, "%s")
        rows = await self._rows(
            f"SELECT {_ANALYTICS_KEYS[group]} AS k, a.event, count(*) AS n FROM video_analytics a "
            f"JOIN video_generations v ON v.id = a.video_id {where} GROUP BY k, a.event ORDER BY k", args)
        return [(r["k"], r["event"], r["n"]) for r in rows]

    async def _figure_rows(self, workspace: str | None, video_id: int | None) -> list[Any]:
        where, args = visible_rows("f", workspace, video_id, "%s")
        return await self._rows(
            "SELECT f.video_id, v.campaign_id, f.platform, f.views, f.likes, f.comments FROM platform_figures f "
            f"JOIN video_generations v ON v.id = f.video_id {where}", args)

    # ---- claims and leases ------------------------------------------------------------

    async def claim_next(self, renderer: str, node_id: str | None = None,
                         lease_seconds: float = LEASE_SECONDS) -> Job | None:
        """The oldest queued job of a renderer that no other node is claiming this instant, leased to `node_id`."""
        return await self._claim("id = (SELECT id FROM video_generations WHERE status = 'queued' AND renderer = %s "
                                 "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)", renderer, node_id, lease_seconds)

    async def claim(self, job_id: int, node_id: str | None = None, lease_seconds: float = LEASE_SECONDS,
                    ) -> Job | None:
        return await self._claim("id = %s AND status = 'queued'", job_id, node_id, lease_seconds)

    async def _claim(self, where: str, param: object, node_id: str | None, lease_seconds: float) -> Job | None:
        now = self._now()
        rows = await self._rows(
            "UPDATE video_generations SET status = 'rendering', attempts = attempts + 1, started_at = %s, "
            "updated_at = %s, claimed_by = %s, lease_until = %s, next_check_at = NULL, remote_since = NULL "
            f"WHERE {where} RETURNING *",
            (now, now, node_id or self.node_id, self._lease(lease_seconds), param))
        return Job.from_row(rows[0]) if rows else None

    async def claim_check(self, renderer: str, node_id: str | None = None,
                          lease_seconds: float = LEASE_SECONDS) -> Job | None:
        """The most overdue due check of a renderer that no other node is claiming this instant."""
        now = self._now()
        rows = await self._rows(
            "UPDATE video_generations SET claimed_by = %s, lease_until = %s, next_check_at = NULL, updated_at = %s "
            "WHERE id = (SELECT id FROM video_generations WHERE status = %s AND renderer = %s "
            "AND claimed_by IS NULL AND next_check_at <= %s ORDER BY next_check_at, id LIMIT 1 "
            "FOR UPDATE SKIP LOCKED) RETURNING *",
            (node_id or self.node_id, self._lease(lease_seconds), now, WAITING, renderer, now))
        return Job.from_row(rows[0]) if rows else None

    async def check_remote_now(self, renderer: str, remote_id: str) -> list[int]:
        async with self.transaction() as conn:
            cur = await conn.execute(
                "UPDATE video_generations SET next_check_at = %s WHERE renderer = %s AND status = ANY(%s) "
                "AND strpos(',' || external_id || ',', ',' || %s || ',') > 0 RETURNING id",
                (self._now(), renderer, list(HELD), _text(remote_id)))
            rows = await cur.fetchall()
            if rows:
                await self._wake(conn, [renderer])
        return sorted(r["id"] for r in rows)

    async def remote_ids(self, renderer: str) -> set[str]:
        rows = await self._rows("SELECT external_id, external_done FROM video_generations WHERE renderer = %s "
                                "AND status = ANY(%s) AND external_id IS NOT NULL", (renderer, list(HELD)))
        return {i for r in rows for i in remote_id_set(r["external_id"]) - remote_id_set(r["external_done"])}

    async def remote_finished(self, renderer: str, remote_id: str) -> None:
        remote_id = _text(remote_id)
        await self._rows(
            "UPDATE video_generations SET external_done = COALESCE(external_done || ',', '') || %s "
            "WHERE renderer = %s AND status = ANY(%s) AND strpos(',' || external_id || ',', ',' || %s || ',') > 0 "
            "AND strpos(',' || COALESCE(external_done, '') || ',', ',' || %s || ',') = 0 RETURNING id",
            (remote_id, renderer, list(HELD), remote_id, remote_id))

    async def next_check(self, renderers: Iterable[str]) -> datetime | None:
        rows = await self._rows("SELECT min(next_check_at) AS due FROM video_generations WHERE status = %s "
                                "AND claimed_by IS NULL AND renderer = ANY(%s)", (WAITING, list(renderers)))
        due = rows[0]["due"] if rows else None
        return due.astimezone(timezone.utc) if due else None

    async def extend_leases(self, node_id: str | None = None, lease_seconds: float = LEASE_SECONDS) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE video_generations SET lease_until = %s WHERE claimed_by = %s AND status = ANY(%s)",
                (self._lease(lease_seconds), node_id or self.node_id, list(HELD)))
            return cur.rowcount

    async def reap_expired(self) -> list[int]:
        """Running jobs whose lease ran out (their node died or hung) back in the queue for any node.

        The remote id stays, so a remote render is resumed, never created twice. Idempotent:
        two nodes reaping at once requeue each job once (the second finds it queued).
        """
        now = self._now()
        async with self.transaction() as conn:
            cur = await conn.execute(
                "UPDATE video_generations SET status = 'queued', claimed_by = NULL, lease_until = NULL, "
                "updated_at = %s WHERE status = ANY(%s) AND lease_until < %s RETURNING id, renderer",
                (now, list(RUNNING), now))
            rows = await cur.fetchall()
            for r in rows:
                await self._insert_event(conn, r["id"], "queued", 0, "queued again: the lease of the node running "
                                         "it ran out", {"reaped": True}, now, self.node_id)
            rows += await self._release_checks(conn, "lease_until < %s", now, now)
            await self._wake(conn, (r["renderer"] for r in rows))
        return sorted(r["id"] for r in rows)

    @staticmethod
    async def _release_checks(conn: psycopg.AsyncConnection, where: str, param: str, now: str) -> list[Any]:
        """Waiting jobs whose check was cut short: due for a check again, by any node."""
        cur = await conn.execute(
            "UPDATE video_generations SET claimed_by = NULL, lease_until = NULL, next_check_at = "
            f"COALESCE(next_check_at, %s), updated_at = %s WHERE status = %s AND claimed_by IS NOT NULL AND {where} "
            "RETURNING id, renderer", (now, now, WAITING, param))
        return await cur.fetchall()

    async def requeue_interrupted(self, node_id: str | None = None) -> list[int]:
        node, now = node_id or self.node_id, self._now()
        async with self.transaction() as conn:
            cur = await conn.execute(
                "UPDATE video_generations SET status = 'queued', claimed_by = NULL, lease_until = NULL, "
                "updated_at = %s WHERE status = ANY(%s) AND (claimed_by = %s OR claimed_by IS NULL) "
                "RETURNING id, renderer", (now, list(RUNNING), node))
            rows = await cur.fetchall()
            rows += await self._release_checks(conn, "claimed_by = %s", node, now)
            await self._wake(conn, (r["renderer"] for r in rows))
        return sorted(r["id"] for r in rows)

    async def requeue_ended(self, job_id: int, states: Iterable[str], by: str | None = None,
                            ) -> tuple[Job, JobEvent] | None:
        now = self.clock().astimezone(timezone.utc)
        async with self.transaction() as conn:
            cur = await conn.execute("SELECT status, error FROM video_generations WHERE id = %s AND status = ANY(%s) "
                                     "FOR UPDATE", (job_id, list(states)))
            row = await cur.fetchone()
            if row is None:
                return None
            previous, error = row["status"], row["error"]
            retry = await self._retries(conn, job_id) + 1
            event = JobEvent(job_id=job_id, state=JobState.queued, percent=0, at=now,
                             message=f"queued again (retry {retry}) after it {ended(previous)}",
                             data={"retry": retry, "previous": previous, "error": error, "by": by},
                             node_id=self.node_id)
            await self._insert_event(conn, job_id, event.state.value, 0, event.message, event.data, now.isoformat(),
                                     self.node_id)
            cur = await conn.execute(
                "UPDATE video_generations SET status = 'queued', percent = 0, error = NULL, result = NULL, "
                "started_at = NULL, finished_at = NULL, claimed_by = NULL, lease_until = NULL, "
                "next_check_at = NULL, remote_since = NULL, updated_at = %s WHERE id = %s RETURNING *",
                (now.isoformat(), job_id))
            job = Job.from_row(await cur.fetchone())
            await self._wake(conn, [job.renderer])
        return job, event

    async def retries(self, job_id: int) -> int:
        async with self.pool.connection() as conn:
            return await self._retries(conn, job_id)

    @staticmethod
    async def _retries(conn: psycopg.AsyncConnection, job_id: int) -> int:
        cur = await conn.execute("SELECT count(*) AS n FROM events WHERE job_id = %s AND state = 'queued' "
                                 "AND data->>'retry' IS NOT NULL", (job_id,))
        return int((await cur.fetchone())["n"])

    async def record_event(self, event: JobEvent, result: dict[str, Any] | None = None,
                           fence: tuple[str, int] | None = None) -> bool:
        """Persist an event and the job's new state in one transaction; False when nothing was written.

        `fence` is (node id, attempt) from the runner's claim: the write lands only while the
        job is still that claim's (the row is locked while it is checked), so a node that lost
        its lease never overwrites the new owner's work. A late progress report never reopens
        an ended job.
        """
        at = event.at.isoformat()
        final = event.state.final
        back = event.state is JobState.waiting_remote and event.data.get("next_check_at") is not None
        async with self.transaction() as conn:
            cur = await conn.execute("SELECT status, claimed_by, attempts FROM video_generations WHERE id = %s "
                                     "FOR UPDATE", (event.job_id,))
            row = await cur.fetchone()
            if row and refused(JobState(row["status"]), event.state, fence):
                return False
            if fence is not None and (not row or (row["claimed_by"], row["attempts"]) != tuple(fence)):
                return False
            await self._insert_event(conn, event.job_id, event.state.value, event.percent, event.message,
                                     event.data, at, event.node_id)
            await conn.execute(
                "UPDATE video_generations SET status = %s, percent = COALESCE(%s, percent), updated_at = %s, "
                "error = CASE WHEN %s IN ('failed','timeout','cancelled') THEN %s ELSE error END, "
                "result = COALESCE(%s::jsonb, result), finished_at = CASE WHEN %s THEN %s::timestamptz "
                "ELSE finished_at END, lease_until = CASE WHEN %s OR %s THEN NULL ELSE lease_until END, "
                "claimed_by = CASE WHEN %s THEN NULL ELSE claimed_by END, "
                "next_check_at = CASE WHEN %s THEN COALESCE(next_check_at, %s::timestamptz) ELSE next_check_at END, "
                "remote_since = CASE WHEN %s THEN COALESCE(remote_since, %s::timestamptz) ELSE remote_since END, "
                "external_id = COALESCE(%s, external_id) WHERE id = %s",
                (event.state.value, event.percent, at, event.state.value, _text(event.message),
                 _jsonb(result) if result else None, final, at, final, back, back,
                 back, event.data.get("next_check_at"), back, self._now(), event.data.get("external_id"),
                 event.job_id))
        return True

    async def events(self, job_id: int) -> list[JobEvent]:
        rows = await self._rows("SELECT * FROM events WHERE job_id = %s ORDER BY id", (job_id,))
        return [JobEvent(job_id=r["job_id"], state=r["state"], percent=r["percent"], message=r["message"],
                         data=r["data"], at=r["at"].astimezone(timezone.utc), node_id=r["node_id"]) for r in rows]

    # ---- publications ---------------------------------------------------------------

    async def request_publications(self, job_id: int, wanted: list[NewPublication], requested_by: str,
                                   ) -> list[tuple[Publication, bool]]:
        now, out = self._now(), []
        async with self.transaction() as conn:
            for w in wanted:
                cur = await conn.execute(
                    "INSERT INTO publications (job_id, platform, account, options, requested_by, created_at, "
                    "updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (job_id, platform, account) DO NOTHING "
                    "RETURNING *", (job_id, w.platform, w.account, _jsonb(w.options), _text(requested_by), now, now))
                row = await cur.fetchone()
                if row is not None:
                    out.append((Publication.from_row(row), True))
                    continue
                # It exists (a racing insert of the same key may just have committed): a failed one
                # goes back in the queue with its facts kept, any other is returned as it is.
                cur = await conn.execute(
                    "UPDATE publications SET state = 'pending', error = NULL, failures = 0, not_before = NULL, "
                    "percent = 0, message = '', requested_by = %s, updated_at = %s WHERE job_id = %s AND "
                    "platform = %s AND account = %s AND state = 'failed' RETURNING *",
                    (_text(requested_by), now, job_id, w.platform, w.account))
                row = await cur.fetchone()
                if row is not None:
                    out.append((Publication.from_row(row), True))
                    continue
                cur = await conn.execute("SELECT * FROM publications WHERE job_id = %s AND platform = %s "
                                         "AND account = %s", (job_id, w.platform, w.account))
                out.append((Publication.from_row(await cur.fetchone()), False))
        return out

    async def publication(self, publication_id: int) -> Publication | None:
        rows = await self._rows("SELECT * FROM publications WHERE id = %s", (publication_id,))
        return Publication.from_row(rows[0]) if rows else None

    async def publications(self, job_id: int | None = None, states: Iterable[str] | None = None,
                           limit: int = 1000) -> list[Publication]:
        query, args = "SELECT * FROM publications WHERE true", []
        if job_id is not None:
            query += " AND job_id = %s"
            args.append(job_id)
        if states is not None:
            query += " AND state = ANY(%s)"
            args.append(list(states))
        rows = await self._rows(query + " ORDER BY id LIMIT %s", (*args, limit))
        return [Publication.from_row(r) for r in rows]

    async def claim_publication(self, platforms: Iterable[str], node_id: str | None = None,
                                lease_seconds: float = LEASE_SECONDS) -> Publication | None:
        """The oldest due publication no other node is claiming this instant (SKIP LOCKED)."""
        platforms = list(platforms)
        if not platforms:
            return None
        now, node = self._now(), node_id or self.node_id
        # Its video file is on the node that rendered it: that node publishes it, any node once it has
        # stopped heartbeating (an output folder all nodes share, or a file gone with its node).
        rows = await self._rows(
            "UPDATE publications SET attempts = attempts + 1, claimed_by = %s, lease_until = %s, updated_at = %s "
            "WHERE id = (SELECT p.id FROM publications p JOIN video_generations v ON v.id = p.job_id "
            "WHERE p.state = ANY(%s) AND p.platform = ANY(%s) AND (p.not_before IS NULL OR p.not_before <= %s) "
            "AND (p.claimed_by IS NULL OR p.lease_until < %s) AND (v.claimed_by IS NULL OR v.claimed_by = %s "
            "OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = v.claimed_by AND n.heartbeat_at > %s)) "
            "ORDER BY coalesce(p.not_before, p.created_at), p.id LIMIT 1 FOR UPDATE OF p SKIP LOCKED) RETURNING *",
            (node, self._lease(lease_seconds), now, list(PUBLISHING), platforms, now, now, node,
             self._lease(-lease_seconds)))
        return Publication.from_row(rows[0]) if rows else None

    async def next_publication_at(self, platforms: Iterable[str]) -> datetime | None:
        platforms = list(platforms)
        if not platforms:
            return None
        rows = await self._rows(
            "SELECT min(coalesce(not_before, created_at)) AS at FROM publications WHERE claimed_by IS NULL "
            "AND state = ANY(%s) AND platform = ANY(%s)", (list(PUBLISHING), platforms))
        at = rows[0]["at"] if rows else None
        return at.astimezone(timezone.utc) if at else None

    _FENCED = "id = %s AND claimed_by = %s AND attempts = %s AND state IN ('pending', 'uploading', 'processing')"

    async def extend_publication_lease(self, publication_id: int, fence: tuple[str, int],
                                       lease_seconds: float = LEASE_SECONDS) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(f"UPDATE publications SET lease_until = %s WHERE {self._FENCED}",
                                     (self._lease(lease_seconds), publication_id, *fence))
            return cur.rowcount == 1

    async def save_publication(self, publication_id: int, fence: tuple[str, int], *, state: str | None = None,
                               facts: dict[str, Any] | None = None, percent: float | None = None,
                               message: str | None = None) -> Publication | None:
        offset = (facts or {}).get("offset")
        rows = await self._rows(
            "UPDATE publications SET facts = facts || %s::jsonb, state = coalesce(%s, state), "
            "percent = coalesce(%s, percent), message = coalesce(%s, message), "
            f"upload_offset = coalesce(%s, upload_offset), updated_at = %s WHERE {self._FENCED} RETURNING *",
            (_jsonb(facts or {}), state, percent, _text(message), offset if isinstance(offset, int) else None,
             self._now(), publication_id, *fence))
        return Publication.from_row(rows[0]) if rows else None

    async def end_publication(self, publication_id: int, fence: tuple[str, int], state: str, *,
                              remote_id: str | None = None, url: str | None = None, error: str | None = None,
                              message: str = "") -> Publication | None:
        now = self._now()
        rows = await self._rows(
            "UPDATE publications SET state = %s, remote_id = coalesce(%s, remote_id), url = coalesce(%s, url), "
            "error = %s, message = %s, percent = CASE WHEN %s = 'published' THEN 100 ELSE percent END, "
            "published_at = CASE WHEN %s = 'published' THEN %s::timestamptz ELSE published_at END, "
            f"claimed_by = NULL, lease_until = NULL, not_before = NULL, updated_at = %s WHERE {self._FENCED} "
            "RETURNING *", (state, _text(remote_id), _text(url), _text(error), _text(message), state, state, now, now,
                            publication_id, *fence))
        return Publication.from_row(rows[0]) if rows else None

    async def defer_publication(self, publication_id: int, fence: tuple[str, int], not_before: datetime,
                                message: str, *, failed: bool = False) -> Publication | None:
        rows = await self._rows(
            "UPDATE publications SET not_before = %s, message = %s, "
            "failures = CASE WHEN %s THEN failures + 1 ELSE 0 END, claimed_by = NULL, lease_until = NULL, "
            f"updated_at = %s WHERE {self._FENCED} RETURNING *",
            (_isotime(not_before), _text(message), failed, self._now(), publication_id, *fence))
        return Publication.from_row(rows[0]) if rows else None

    async def release_publications(self, node_id: str | None = None) -> list[int]:
        rows = await self._rows(
            "UPDATE publications SET claimed_by = NULL, lease_until = NULL, updated_at = %s "
            "WHERE claimed_by = %s AND state = ANY(%s) RETURNING id",
            (self._now(), node_id or self.node_id, list(PUBLISHING)))
        return sorted(r["id"] for r in rows)

    async def record_figures(self, publication_id: int, views: int, likes: int, comments: int) -> None:
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO platform_figures (publication_id, video_id, platform, views, likes, comments, "
                "fetched_at) SELECT id, job_id, platform, %s, %s, %s, %s FROM publications WHERE id = %s "
                "ON CONFLICT (publication_id) DO UPDATE SET views = excluded.views, likes = excluded.likes, "
                "comments = excluded.comments, fetched_at = excluded.fetched_at",
                (views, likes, comments, self._now(), publication_id))

    # ---- campaigns ------------------------------------------------------------------

    async def upsert_campaign(self, name: str, path: str | None, definition: str) -> CampaignRow:
        rows = await self._rows(
            "INSERT INTO video_campaigns (name, path, definition, created_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET path = excluded.path, definition = excluded.definition, "
            "removed_at = NULL RETURNING *", (name, path, definition, self._now()))
        return CampaignRow.from_row(rows[0])

    async def remove_campaign(self, name: str) -> None:
        await self._rows("UPDATE video_campaigns SET path = NULL, removed_at = %s, next_run_at = NULL "
                         "WHERE name = %s AND removed_at IS NULL RETURNING id", (self._now(), name))

    async def campaign_rows(self) -> list[CampaignRow]:
        rows = await self._rows("SELECT * FROM video_campaigns WHERE removed_at IS NULL ORDER BY name")
        return [CampaignRow.from_row(r) for r in rows]

    async def campaign_row(self, name: str) -> CampaignRow | None:
        rows = await self._rows("SELECT * FROM video_campaigns WHERE name = %s", (name,))
        return CampaignRow.from_row(rows[0]) if rows else None

    async def set_campaign_schedule(self, campaign_id: int, next_run_at: datetime | None) -> None:
        await self._rows("UPDATE video_campaigns SET next_run_at = %s WHERE id = %s RETURNING id",
                         (_isotime(next_run_at), campaign_id))

    async def set_campaign_paused(self, name: str, paused: bool) -> bool:
        rows = await self._rows("UPDATE video_campaigns SET paused = %s WHERE name = %s AND removed_at IS NULL "
                                "RETURNING id", (bool(paused), name))
        return len(rows) == 1

    async def used_insights(self, campaign_id: int) -> set[str]:
        rows = await self._rows("SELECT key FROM campaign_insights WHERE campaign_id = %s", (campaign_id,))
        return {r["key"] for r in rows}

    async def campaign_run_basis(self, campaign_id: int) -> RunBasis:
        """Under the research lock: no research insert is between taking its id and committing,
        so every id up to the highest seen is committed, and later ones are higher.
        """
        async with self.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, _RESEARCH))
            cur = await conn.execute(
                "SELECT considered_through AS considered, "
                "(SELECT max(id) FROM campaign_runs WHERE campaign_id = c.id) AS last_run, "
                "(SELECT coalesce(max(id), 0) FROM research_jobs) AS through FROM video_campaigns c WHERE id = %s",
                (campaign_id,))
            r = await cur.fetchone()
        return RunBasis(campaign_id, r["last_run"], r["considered"], max(r["considered"], r["through"]))

    async def research_unconsidered(self, basis: RunBasis, sources: list[str], since: datetime) -> list[ResearchJob]:
        return await self._research("id > %s AND id <= %s AND campaign_id IS DISTINCT FROM %s",
                                    [basis.considered_through, basis.research_through, basis.campaign_id],
                                    sources, since)

    async def research_since(self, sources: list[str], since: datetime) -> list[ResearchJob]:
        return await self._research("true", [], sources, since)

    async def _research(self, where: str, args: list[Any], sources: list[str], since: datetime) -> list[ResearchJob]:
        rows = await self._rows(f"SELECT * FROM research_jobs WHERE {where} AND created_at >= %s "
                                f"AND source = ANY(%s) ORDER BY id", [*args, _isotime(since), list(sources)])
        return [ResearchJob.from_row(r) for r in rows]

    async def campaign_jobs_since(self, campaign_id: int, since: datetime) -> int:
        rows = await self._rows("SELECT count(*) AS n FROM video_generations WHERE campaign_id = %s "
                                "AND created_at >= %s", (campaign_id, _isotime(since)))
        return rows[0]["n"]

    async def record_campaign_run(self, basis: RunBasis, picks: list[Pick], *, trigger: str,
                                  slot: datetime | None, next_run_at: datetime | None, considered: list[dict],
                                  message: str, ran_at: datetime) -> tuple[int, list[int]]:
        """Jobs, used insights, the run, the research it considered and the next run time in one transaction.

        The campaign row is locked first, so two nodes recording runs of one campaign take
        turns; the run row is inserted before anything else, and UNIQUE (campaign_id, slot)
        makes a doubled scheduled run impossible even if two leaders ran at once.
        RunConflict when another run was recorded since `basis` was read; SlotTaken when
        another run already answered `slot`.
        """
        campaign_id = basis.campaign_id
        now = self._now()
        ran = _isotime(ran_at)
        job_ids: list[int] = []
        chosen = []
        async with self.transaction() as conn:
            cur = await conn.execute(
                "SELECT (SELECT max(id) FROM campaign_runs WHERE campaign_id = c.id) AS last_run, next_run_at "
                "FROM video_campaigns c WHERE id = %s FOR UPDATE", (campaign_id,))
            state = await cur.fetchone()
            due = state["next_run_at"]
            if slot is not None and (due is None or due != slot):
                raise SlotTaken(f"campaign #{campaign_id}: the run due at {slot.isoformat()} was already made")
            if state["last_run"] != basis.last_run_id:
                raise RunConflict(f"campaign #{campaign_id}: run #{state['last_run']} was recorded while this run "
                                  "was made")
            cur = await conn.execute(
                "INSERT INTO campaign_runs (campaign_id, slot, trigger, considered, chosen, job_ids, message, at) "
                "VALUES (%s,%s,%s,%s,'[]','[]',%s,%s) ON CONFLICT DO NOTHING RETURNING id",
                (campaign_id, _isotime(slot), trigger, _jsonb(considered), _text(message), ran))
            row = await cur.fetchone()
            if row is None:
                raise SlotTaken(f"campaign #{campaign_id}: the run due at {slot.isoformat()} was already made")
            run_id = row["id"]
            if any(p.research_id is None for p in picks):
                await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCKS, _RESEARCH))
            for pick in picks:
                research_id = pick.research_id
                if research_id is None:
                    cur = await conn.execute(
                        "INSERT INTO research_jobs (content_hash, source, title, topic, filename, research, script, "
                        "campaign_id, created_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (content_hash) "
                        "DO UPDATE SET content_hash = excluded.content_hash RETURNING id",
                        (pick.content_hash, pick.research.source, _text(pick.research.title),
                         _text(pick.research.topic), None,
                         pick.research.model_dump_json(), pick.script.model_dump_json(), campaign_id, now))
                    research_id = (await cur.fetchone())["id"]
                ids = [await self._insert_job(conn, j, research_id, now) for j in pick.jobs]
                job_ids += ids
                chosen.append({"research_id": research_id, "title": pick.script.title, "why": pick.why,
                               "job_ids": ids})
            await conn.execute("UPDATE campaign_runs SET chosen = %s, job_ids = %s WHERE id = %s",
                               (_jsonb(chosen), json.dumps(job_ids), run_id))
            # Plain INSERT: a key used before fails the whole run instead of being told twice.
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO campaign_insights (campaign_id, key, run_id) VALUES (%s, %s, %s)",
                    [(campaign_id, k, run_id) for k in dict.fromkeys(k for p in picks for k in p.insight_keys)])
            await conn.execute(
                "UPDATE video_campaigns SET last_run_at = %s, considered_through = %s, "
                "next_run_at = CASE WHEN %s THEN %s::timestamptz ELSE next_run_at END WHERE id = %s",
                (ran, basis.research_through, next_run_at is not None, _isotime(next_run_at), campaign_id))
            await self._wake(conn, (j.renderer for p in picks for j in p.jobs))
        return run_id, job_ids

    async def campaign_runs(self, campaign_id: int, limit: int = 20) -> list[dict[str, Any]]:
        rows = await self._rows("SELECT * FROM campaign_runs WHERE campaign_id = %s ORDER BY id DESC LIMIT %s",
                                (campaign_id, limit))
        return [_isos(r) for r in rows]

    async def campaign_totals(self) -> dict[int, dict[str, int]]:
        rows = await self._rows(
            "SELECT c.id, (SELECT count(*) FROM campaign_runs r WHERE r.campaign_id = c.id) AS runs, "
            "(SELECT count(*) FROM video_generations v WHERE v.campaign_id = c.id) AS videos, "
            "(SELECT count(*) FROM video_generations v WHERE v.campaign_id = c.id AND v.status = 'completed') "
            "AS completed FROM video_campaigns c")
        return {r["id"]: {"runs": r["runs"], "videos": r["videos"], "completed": r["completed"]} for r in rows}

    async def ended_before(self, cutoff: datetime) -> list[int]:
        rows = await self._rows("SELECT id FROM video_generations WHERE status IN "
                                "('completed','failed','timeout','cancelled') AND finished_at < %s ORDER BY id",
                                (_isotime(cutoff),))
        return [r["id"] for r in rows]

    # ---- small state for plugins ------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        rows = await self._rows("SELECT value FROM meta WHERE key = %s", (key,))
        return rows[0]["value"] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._rows("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value "
                         "RETURNING key", (key, value))

    async def instance_id(self) -> str:
        return (await self.get_meta("instance_id")) or ""

    # ---- paid usage ----------------------------------------------------------------

    async def record_usage(self, job_id: int, renderer: str, seconds: float, campaign_id: int | None) -> bool:
        rows = await self._rows(
            "INSERT INTO renderer_usage (job_id, renderer, campaign_id, seconds, at) VALUES (%s,%s,%s,%s,%s) "
            "ON CONFLICT (job_id) DO NOTHING RETURNING job_id", (job_id, renderer, campaign_id, seconds, self._now()))
        return len(rows) == 1

    async def usage(self, renderer: str, since: datetime, campaign_id: int | None = None,
                    exclude_job: int | None = None) -> tuple[int, float]:
        query = ("SELECT count(*) AS n, coalesce(sum(seconds), 0) AS s FROM renderer_usage WHERE renderer = %s "
                 "AND at >= %s AND job_id IS DISTINCT FROM %s::bigint")
        args: list[Any] = [renderer, _isotime(since), exclude_job]
        if campaign_id is not None:
            query += " AND campaign_id = %s"
            args.append(campaign_id)
        rows = await self._rows(query, args)
        return int(rows[0]["n"]), float(rows[0]["s"])

    async def counts(self) -> dict[str, int]:
        rows = await self._rows("SELECT status, count(*) AS n FROM video_generations GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    # ---- nodes and cross-node signals ---------------------------------------------

    async def heartbeat_node(self, node_id: str, host: str, started_at: datetime, renderers: list[str]) -> None:
        await self._rows(
            "INSERT INTO nodes (node_id, host, started_at, heartbeat_at, renderers) VALUES (%s,%s,%s,%s,%s) "
            "ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, started_at = excluded.started_at, "
            "heartbeat_at = excluded.heartbeat_at, renderers = excluded.renderers RETURNING node_id",
            (node_id, host, _isotime(started_at), self._now(), json.dumps(renderers)))

    async def nodes(self) -> list[Node]:
        rows = await self._rows(
            "SELECT n.*, (SELECT count(*) FROM video_generations v WHERE v.claimed_by = n.node_id "
            "AND v.status = ANY(%s)) AS running FROM nodes n ORDER BY n.node_id", (list(HELD),))
        return [Node.from_row(r) for r in rows]

    async def remove_node(self, node_id: str) -> bool:
        rows = await self._rows("DELETE FROM nodes WHERE node_id = %s RETURNING node_id", (node_id,))
        return len(rows) == 1

    async def notify(self, channel: str, payload: str = "") -> None:
        """NOTIFY every node listening on `channel`; the payload must stay under 8000 bytes."""
        check_notify(channel, payload)
        await self._rows("SELECT pg_notify(%s, %s) AS sent", (channel, payload))

    @contextlib.asynccontextmanager
    async def listen(self, channels: Iterable[str]) -> AsyncIterator[AsyncIterator[tuple[str, str]]]:
        """`(channel, payload)` for each NOTIFY from the moment the block opens, on a connection of its own
        (a pooled one could be handed to a query mid-wait). When that connection dies the iterator
        raises: NOTIFYs sent meanwhile are lost, so a listener must also poll."""
        channels = list(channels)
        for channel in channels:
            check_notify(channel, "")
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        try:
            for channel in channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

            async def notes() -> AsyncIterator[tuple[str, str]]:
                async for note in conn.notifies():
                    yield note.channel, note.payload

            yield notes()
        finally:
            await conn.close()

    @contextlib.asynccontextmanager
    async def leader(self, name: str, check_seconds: float = LEADER_CHECK_SECONDS) -> AsyncIterator[Leadership]:
        """Try once to become the leader for `name`: a session advisory lock on a direct connection.

        Held until the block ends or the connection dies, when PostgreSQL releases it for
        another node; the connection is checked every `check_seconds` and `lost` is set when
        it has gone. `held` False: another node leads; try again later.
        """
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        key = (f"avatar-daemon:{name}",)
        watch: asyncio.Task | None = None
        lead = Leadership(name, held=False)
        try:
            cur = await conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", key)
            lead.held = bool((await cur.fetchone())[0])
            if lead.held:
                watch = asyncio.create_task(self._watch(conn, lead, check_seconds), name=f"leader-{name}")
            yield lead
        finally:
            if watch:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            if lead.held:  # now, not when the server gets round to ending the closed session
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", key)
            await conn.close()

    @staticmethod
    async def _watch(conn: psycopg.AsyncConnection, lead: Leadership, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                async with asyncio.timeout(max(every, 1.0)):
                    await conn.execute("SELECT 1")
            except (psycopg.Error, TimeoutError) as exc:
                log.warning("leader %s: lost the lock with its connection (%s)", lead.name, exc)
                lead.held = False
                lead.lost.set()
                return
