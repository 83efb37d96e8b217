"""The SQLite store: one machine, one daemon, one file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

import aiosqlite

from ..models import AvatarProfile, JobEvent, JobState, Research, Script, VideoTemplate, utcnow
from .contract import (
    HELD, LEASE_SECONDS, RUNNING, WAITING, CampaignRow, Clock, Job, Leadership, NewJob, Node, Pick, ResearchJob, RunBasis,
    RunConflict, SlotTaken, Store, check_notify, ended, refused, remote_id_set,
)
from .contract import PUBLISHING, NewPublication, Publication, visible_rows  # publishing's part; analytics' filter

MIGRATIONS = Path(__file__).parent.parent / "migrations" / "sqlite"

# aiosqlite logs every statement with its parameters at DEBUG, and `meta` holds secrets
# (a HeyGen webhook signing secret): that logger never goes below INFO.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

_ANALYTICS_KEYS = {"by_video": "a.video_id", "by_campaign": "v.campaign_id", "by_platform": "a.platform",
                   "by_day": "substr(a.at, 1, 10)"}

# notify/listen on SQLite reach the stores of this process that share the file: no other process
# can hear them, which is all one machine with one daemon needs.
# A failed publication asked for again goes back in the queue, keeping its facts: the publisher
# finds there what the platform may already hold.
_AGAIN = ("state = 'pending', error = NULL, failures = 0, not_before = NULL, percent = 0, message = '', "
          "requested_by = ?, updated_at = ?")

# Its video file is on the node that rendered it: that node publishes it, any node once it has
# stopped heartbeating (an output folder all nodes share, or a file gone with its node).
_HAS_FILE = ("(v.claimed_by IS NULL OR v.claimed_by = ? OR NOT EXISTS (SELECT 1 FROM nodes n "
             "WHERE n.node_id = v.claimed_by AND n.heartbeat_at > ?))")

_listeners: dict[Path, dict[str, set[asyncio.Queue[tuple[str, str]]]]] = defaultdict(lambda: defaultdict(set))


class SqliteStore(Store, backend="sqlite"):
    """One aiosqlite connection in WAL mode; writes go through `transaction()`."""

    def __init__(self, db: aiosqlite.Connection, clock: Clock = utcnow, node_id: str | None = None,
                 path: Path | None = None):
        super().__init__(clock, node_id)
        self.db = db
        self.path = path.resolve() if path else None
        self._write = asyncio.Lock()  # one connection: transactions from many tasks take turns

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, path: Path, clock: Clock = utcnow, node_id: str | None = None,
                      migrate: bool = True) -> AsyncIterator["SqliteStore"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        store = cls(db, clock, node_id, path)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            if migrate:
                await store.migrate()
            yield store
        finally:
            # After the transaction in flight, if any: a job's last write at shutdown (seen in the kill
            # test) otherwise met a closed database between its statements and its COMMIT.
            async with store._write:
                await db.close()

    async def migrate(self) -> list[str]:
        await self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {r[0] for r in await self.db.execute_fetchall("SELECT name FROM schema_migrations")}
        applied = []
        for sql in sorted(MIGRATIONS.glob("*.sql")):
            if sql.name in done:
                continue
            async with self.transaction():
                # executescript would COMMIT on its own; split so the whole migration is atomic.
                for statement in statements(sql.read_text()):
                    await self.db.execute(statement)
                await self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (sql.name, self._now()))
            applied.append(sql.name)
        return applied

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._write:
            try:
                # Inside the try: a cancel while BEGIN waits for a busy database does not stop
                # aiosqlite's thread from beginning it; the ROLLBACK queued after it ends it.
                await self.db.execute("BEGIN IMMEDIATE")
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.OperationalError):  # BEGIN itself failed: nothing to end
                    await self.db.execute("ROLLBACK")
                raise
            else:
                await self.db.execute("COMMIT")

    # ---- catalogue -----------------------------------------------------------

    async def sync_catalogue(self, avatars: Iterable[AvatarProfile], templates: Iterable[VideoTemplate]) -> None:
        now = self._now()
        async with self.transaction():
            await self.db.executemany(
                "INSERT INTO avatar_profiles VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "name=excluded.name, tier=excluded.tier, profile=excluded.profile, updated_at=excluded.updated_at",
                [(a.id, a.name, a.tier, a.model_dump_json(), now) for a in avatars],
            )
            await self.db.executemany(
                "INSERT INTO video_templates VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "name=excluded.name, template=excluded.template, updated_at=excluded.updated_at",
                [(t.id, t.name, t.model_dump_json(), now) for t in templates],
            )

    # ---- research and jobs ---------------------------------------------------

    async def add_research_with_jobs(
        self, content_hash: str, research: Research, script: Script, filename: str | None,
        jobs: list[NewJob], workspace_id: str | None = None, user_id: str | None = None,
        campaign_id: int | None = None,
    ) -> tuple[int, list[int], bool]:
        now = self._now()
        async with self.transaction():
            cur = await self.db.execute(
                "INSERT INTO research_jobs (content_hash, source, title, topic, filename, research, script, "
                "workspace_id, user_id, campaign_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (content_hash) DO NOTHING",
                (content_hash, research.source, research.title, research.topic, filename,
                 research.model_dump_json(), script.model_dump_json(), workspace_id, user_id, campaign_id, now),
            )
            if cur.rowcount == 0:
                rows = await self.db.execute_fetchall(
                    "SELECT r.id, group_concat(v.id) FROM research_jobs r LEFT JOIN video_generations v "
                    "ON v.research_job_id = r.id WHERE r.content_hash = ? GROUP BY r.id", (content_hash,))
                ids = [int(i) for i in (rows[0][1] or "").split(",") if i]
                return rows[0][0], ids, False
            research_id = cur.lastrowid
            job_ids = [await self._insert_job(j, research_id, now) for j in jobs]
        self._wake({j.renderer for j in jobs})
        return research_id, job_ids, True

    async def add_jobs(self, jobs: list[NewJob], research_id: int | None = None) -> list[int]:
        now = self._now()
        async with self.transaction():
            ids = [await self._insert_job(j, research_id, now) for j in jobs]
        self._wake({j.renderer for j in jobs})
        return ids

    async def _insert_job(self, j: NewJob, research_id: int | None, now: str) -> int:
        cur = await self.db.execute(
            "INSERT INTO video_generations (research_job_id, campaign_id, status, renderer, format, avatar_id, "
            "template_id, title, request, workspace_id, user_id, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (research_id, j.campaign_id, JobState.queued.value, j.renderer, j.format, j.avatar_id, j.template_id,
             j.title, json.dumps(j.request), j.workspace_id, j.user_id, now, now),
        )
        await self._insert_event(cur.lastrowid, JobState.queued.value, 0, "queued", {}, now, self.node_id)
        return cur.lastrowid

    async def research_job(self, research_id: int) -> ResearchJob | None:
        rows = await self.db.execute_fetchall("SELECT * FROM research_jobs WHERE id = ?", (research_id,))
        return ResearchJob.from_row(rows[0]) if rows else None

    async def job(self, job_id: int) -> Job | None:
        rows = await self.db.execute_fetchall("SELECT * FROM video_generations WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    async def jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        if status:
            rows = await self.db.execute_fetchall(
                "SELECT * FROM video_generations WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit))
        else:
            rows = await self.db.execute_fetchall(
                "SELECT * FROM video_generations ORDER BY id DESC LIMIT ?", (limit,))
        return [Job.from_row(r) for r in rows]

    async def jobs_page(self, workspace: str | None, status: str | None = None, limit: int = 50,
                        before_id: int | None = None) -> list[Job]:
        sql, args = "SELECT * FROM video_generations WHERE 1=1", []
        if workspace is not None:
            sql += " AND workspace_id = ?"
            args.append(workspace)
        if status:
            sql += " AND status = ?"
            args.append(status)
        if before_id:
            sql += " AND id < ?"
            args.append(before_id)
        rows = await self.db.execute_fetchall(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [Job.from_row(r) for r in rows]

    async def research_page(self, workspace: str | None, limit: int = 20, with_insights: bool = False,
                            before: int | None = None) -> list[ResearchJob]:
        where, args = ["1 = 1"], []
        if workspace is not None:
            where.append("(workspace_id IS NULL OR workspace_id = ?)")
            args.append(workspace)
        if with_insights:
            where.append("json_array_length(research, '$.insights') > 0")
        if before is not None:
            where.append("id < ?")
            args.append(before)
        rows = await self.db.execute_fetchall(
            f"SELECT * FROM research_jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*args, limit))
        return [ResearchJob.from_row(r) for r in rows]

    async def render_seconds(self) -> list[float]:
        rows = await self.db.execute_fetchall(
            "SELECT json_extract(result, '$.render_seconds') FROM video_generations "
            "WHERE status = 'completed' AND result IS NOT NULL")
        return [float(r[0]) for r in rows if r[0] is not None]

    # ---- analytics ------------------------------------------------------------------

    async def add_analytics(self, video_id: int, event: str, platform: str | None) -> None:
        async with self.transaction():
            await self.db.execute("INSERT INTO video_analytics (video_id, event, platform, at) VALUES (?,?,?,?)",
                                  (video_id, event, platform, self._now()))

    async def _analytics_counts(self, group: str, workspace: str | None,
                                video_id: int | None) -> list[tuple[Any, str, int]]:
        where, args = visible_rows("a", workspace, video_id, "?")
        return [tuple(r) for r in await self.db.execute_fetchall(
            f"SELECT {_ANALYTICS_KEYS[group]} AS k, a.event, count(*) FROM video_analytics a "
            f"JOIN video_generations v ON v.id = a.video_id {where} GROUP BY k, a.event ORDER BY k", args)]

    async def _figure_rows(self, workspace: str | None, video_id: int | None) -> list[Any]:
        where, args = visible_rows("f", workspace, video_id, "?")
        return list(await self.db.execute_fetchall(
            "SELECT f.video_id, v.campaign_id, f.platform, f.views, f.likes, f.comments FROM platform_figures f "
            f"JOIN video_generations v ON v.id = f.video_id {where}", args))

    async def claim_next(self, renderer: str, node_id: str | None = None,
                         lease_seconds: float = LEASE_SECONDS) -> Job | None:
        return await self._claim("id = (SELECT id FROM video_generations WHERE status = 'queued' "
                                 "AND renderer = ? ORDER BY id LIMIT 1)", renderer, node_id, lease_seconds)

    async def claim(self, job_id: int, node_id: str | None = None, lease_seconds: float = LEASE_SECONDS,
                    ) -> Job | None:
        return await self._claim("id = ? AND status = 'queued'", job_id, node_id, lease_seconds)

    async def _claim(self, where: str, param: object, node_id: str | None, lease_seconds: float) -> Job | None:
        now = self._now()
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE video_generations SET status = 'rendering', attempts = attempts + 1, started_at = ?, "
                "updated_at = ?, claimed_by = ?, lease_until = ?, next_check_at = NULL, remote_since = NULL "
                f"WHERE {where} RETURNING *",
                (now, now, node_id or self.node_id, self._lease(lease_seconds), param))
        return Job.from_row(rows[0]) if rows else None

    async def claim_check(self, renderer: str, node_id: str | None = None,
                          lease_seconds: float = LEASE_SECONDS) -> Job | None:
        now = self._now()
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE video_generations SET claimed_by = ?, lease_until = ?, next_check_at = NULL, updated_at = ? "
                "WHERE id = (SELECT id FROM video_generations WHERE status = ? AND renderer = ? "
                "AND claimed_by IS NULL AND next_check_at <= ? ORDER BY next_check_at, id LIMIT 1) RETURNING *",
                (node_id or self.node_id, self._lease(lease_seconds), now, WAITING, renderer, now))
        return Job.from_row(rows[0]) if rows else None

    async def check_remote_now(self, renderer: str, remote_id: str) -> list[int]:
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE video_generations SET next_check_at = ? WHERE renderer = ? AND status IN (?, ?, ?) "
                "AND instr(',' || external_id || ',', ',' || ? || ',') > 0 RETURNING id",
                (self._now(), renderer, *HELD, remote_id))
        if rows:
            self._wake([renderer])
        return sorted(r[0] for r in rows)

    async def remote_ids(self, renderer: str) -> set[str]:
        rows = await self.db.execute_fetchall(
            "SELECT external_id, external_done FROM video_generations WHERE renderer = ? AND status IN (?, ?, ?) "
            "AND external_id IS NOT NULL", (renderer, *HELD))
        return {i for r in rows for i in remote_id_set(r[0]) - remote_id_set(r[1])}

    async def remote_finished(self, renderer: str, remote_id: str) -> None:
        async with self.transaction():
            await self.db.execute(
                "UPDATE video_generations SET external_done = COALESCE(external_done || ',', '') || ? "
                "WHERE renderer = ? AND status IN (?, ?, ?) AND instr(',' || external_id || ',', ',' || ? || ',') > 0 "
                "AND instr(',' || COALESCE(external_done, '') || ',', ',' || ? || ',') = 0",
                (remote_id, renderer, *HELD, remote_id, remote_id))

    async def next_check(self, renderers: Iterable[str]) -> datetime | None:
        names = list(renderers)
        if not names:
            return None
        rows = await self.db.execute_fetchall(
            f"SELECT min(next_check_at) FROM video_generations WHERE status = ? AND claimed_by IS NULL "
            f"AND renderer IN ({','.join('?' * len(names))})", (WAITING, *names))
        return datetime.fromisoformat(rows[0][0]) if rows and rows[0][0] else None

    async def extend_leases(self, node_id: str | None = None, lease_seconds: float = LEASE_SECONDS) -> int:
        async with self.transaction():
            cur = await self.db.execute(
                "UPDATE video_generations SET lease_until = ? WHERE claimed_by = ? AND status IN (?, ?, ?)",
                (self._lease(lease_seconds), node_id or self.node_id, *HELD))
        return cur.rowcount

    async def reap_expired(self) -> list[int]:
        now = self._now()
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE video_generations SET status = 'queued', claimed_by = NULL, lease_until = NULL, "
                "updated_at = ? WHERE status IN (?, ?) AND lease_until < ? RETURNING id, renderer",
                (now, *RUNNING, now))
            for job_id, _ in rows:
                await self._insert_event(job_id, "queued", 0, "queued again: the lease of the node running it "
                                         "ran out", {"reaped": True}, now, self.node_id)
            rows += await self._release_checks("lease_until < ?", now, now)
        self._wake({r[1] for r in rows})
        return sorted(r[0] for r in rows)

    async def _release_checks(self, where: str, param: str, now: str) -> list[Any]:
        """Waiting jobs whose check was cut short: due for a check again, by any node."""
        return list(await self.db.execute_fetchall(
            "UPDATE video_generations SET claimed_by = NULL, lease_until = NULL, next_check_at = "
            f"COALESCE(next_check_at, ?), updated_at = ? WHERE status = ? AND claimed_by IS NOT NULL AND {where} "
            "RETURNING id, renderer", (now, now, WAITING, param)))

    async def requeue_interrupted(self, node_id: str | None = None) -> list[int]:
        node = node_id or self.node_id
        now = self._now()
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE video_generations SET status = 'queued', claimed_by = NULL, lease_until = NULL, "
                "updated_at = ? WHERE status IN (?, ?) AND (claimed_by = ? OR claimed_by IS NULL) "
                "RETURNING id, renderer", (now, *RUNNING, node))
            rows = list(rows) + await self._release_checks("claimed_by = ?", node, now)
        self._wake({r[1] for r in rows})
        return sorted(r[0] for r in rows)

    async def requeue_ended(self, job_id: int, states: Iterable[str], by: str | None = None,
                            ) -> tuple[Job, JobEvent] | None:
        states = list(states)
        now = self.clock().astimezone(timezone.utc)
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                f"SELECT status, error FROM video_generations WHERE id = ? AND status IN "
                f"({','.join('?' * len(states))})", (job_id, *states))
            if not rows:
                return None
            previous, error = rows[0]
            retry = await self._retries(job_id) + 1
            event = JobEvent(job_id=job_id, state=JobState.queued, percent=0, at=now,
                             message=f"queued again (retry {retry}) after it {ended(previous)}",
                             data={"retry": retry, "previous": previous, "error": error, "by": by},
                             node_id=self.node_id)
            await self._insert_event(job_id, event.state.value, 0, event.message, event.data, now.isoformat(),
                                     self.node_id)
            rows = await self.db.execute_fetchall(
                "UPDATE video_generations SET status = 'queued', percent = 0, error = NULL, result = NULL, "
                "started_at = NULL, finished_at = NULL, claimed_by = NULL, lease_until = NULL, "
                "next_check_at = NULL, remote_since = NULL, updated_at = ? WHERE id = ? RETURNING *",
                (now.isoformat(), job_id))
        job = Job.from_row(rows[0])
        self._wake({job.renderer})
        return job, event

    async def retries(self, job_id: int) -> int:
        return await self._retries(job_id)

    async def _retries(self, job_id: int) -> int:
        rows = await self.db.execute_fetchall(
            "SELECT count(*) FROM events WHERE job_id = ? AND state = 'queued' "
            "AND json_extract(data, '$.retry') IS NOT NULL", (job_id,))
        return int(rows[0][0])

    async def record_event(self, event: JobEvent, result: dict[str, Any] | None = None,
                           fence: tuple[str, int] | None = None) -> bool:
        at = event.at.isoformat()
        final = event.state.final
        back = event.state is JobState.waiting_remote and event.data.get("next_check_at") is not None
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "SELECT status, claimed_by, attempts FROM video_generations WHERE id = ?", (event.job_id,))
            if rows and refused(JobState(rows[0][0]), event.state, fence):
                return False
            if fence is not None and (not rows or (rows[0][1], rows[0][2]) != tuple(fence)):
                return False
            await self._insert_event(event.job_id, event.state.value, event.percent, event.message, event.data, at,
                                     event.node_id)
            await self.db.execute(
                "UPDATE video_generations SET status = ?, percent = COALESCE(?, percent), updated_at = ?, "
                "error = CASE WHEN ? IN ('failed','timeout','cancelled') THEN ? ELSE error END, "
                "result = COALESCE(?, result), finished_at = CASE WHEN ? THEN ? ELSE finished_at END, "
                "lease_until = CASE WHEN ? OR ? THEN NULL ELSE lease_until END, "
                "claimed_by = CASE WHEN ? THEN NULL ELSE claimed_by END, "
                "next_check_at = CASE WHEN ? THEN COALESCE(next_check_at, ?) ELSE next_check_at END, "
                "remote_since = CASE WHEN ? THEN COALESCE(remote_since, ?) ELSE remote_since END, "
                "external_id = COALESCE(?, external_id) WHERE id = ?",
                (event.state.value, event.percent, at, event.state.value, event.message,
                 json.dumps(result, default=str) if result else None, final, at, final, back, back,
                 back, event.data.get("next_check_at"), back, self._now(), event.data.get("external_id"),
                 event.job_id))
        return True

    async def _insert_event(self, job_id: int, state: str, percent: float | None, message: str,
                            data: dict[str, Any], at: str, node_id: str | None) -> None:
        await self.db.execute(
            "INSERT INTO events (job_id, state, percent, message, data, at, node_id) VALUES (?,?,?,?,?,?,?)",
            (job_id, state, percent, message, json.dumps(data), at, node_id))

    async def events(self, job_id: int) -> list[JobEvent]:
        rows = await self.db.execute_fetchall(
            "SELECT * FROM events WHERE job_id = ? ORDER BY id", (job_id,))
        return [JobEvent(job_id=r["job_id"], state=r["state"], percent=r["percent"], message=r["message"],
                         data=json.loads(r["data"]), at=datetime.fromisoformat(r["at"]), node_id=r["node_id"])
                for r in rows]

    # ---- publications ---------------------------------------------------------------

    async def request_publications(self, job_id: int, wanted: list[NewPublication], requested_by: str,
                                   ) -> list[tuple[Publication, bool]]:
        now, out = self._now(), []
        async with self.transaction():
            for w in wanted:
                created = await self.db.execute_fetchall(
                    "INSERT INTO publications (job_id, platform, account, options, requested_by, created_at, "
                    "updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (job_id, platform, account) DO NOTHING "
                    "RETURNING *", (job_id, w.platform, w.account, json.dumps(w.options), requested_by, now, now))
                if created:
                    out.append((Publication.from_row(created[0]), True))
                    continue
                again = await self.db.execute_fetchall(
                    f"UPDATE publications SET {_AGAIN} WHERE job_id = ? AND platform = ? AND account = ? "
                    "AND state = 'failed' RETURNING *", (requested_by, now, job_id, w.platform, w.account))
                if again:
                    out.append((Publication.from_row(again[0]), True))
                    continue
                rows = await self.db.execute_fetchall(
                    "SELECT * FROM publications WHERE job_id = ? AND platform = ? AND account = ?",
                    (job_id, w.platform, w.account))
                out.append((Publication.from_row(rows[0]), False))
        return out

    async def publication(self, publication_id: int) -> Publication | None:
        rows = await self.db.execute_fetchall("SELECT * FROM publications WHERE id = ?", (publication_id,))
        return Publication.from_row(rows[0]) if rows else None

    async def publications(self, job_id: int | None = None, states: Iterable[str] | None = None,
                           limit: int = 1000) -> list[Publication]:
        sql, args = "SELECT * FROM publications WHERE 1=1", []
        if job_id is not None:
            sql += " AND job_id = ?"
            args.append(job_id)
        if states is not None:
            states = list(states)
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += states
        rows = await self.db.execute_fetchall(sql + " ORDER BY id LIMIT ?", (*args, limit))
        return [Publication.from_row(r) for r in rows]

    async def claim_publication(self, platforms: Iterable[str], node_id: str | None = None,
                                lease_seconds: float = LEASE_SECONDS) -> Publication | None:
        platforms = list(platforms)
        if not platforms:
            return None
        now, node = self._now(), node_id or self.node_id
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE publications SET attempts = attempts + 1, claimed_by = ?, lease_until = ?, updated_at = ? "
                "WHERE id = (SELECT p.id FROM publications p JOIN video_generations v ON v.id = p.job_id "
                f"WHERE p.state IN (?, ?, ?) AND p.platform IN ({','.join('?' * len(platforms))}) "
                "AND (p.not_before IS NULL OR p.not_before <= ?) AND (p.claimed_by IS NULL OR p.lease_until < ?) "
                f"AND {_HAS_FILE} ORDER BY coalesce(p.not_before, p.created_at), p.id LIMIT 1) RETURNING *",
                (node, self._lease(lease_seconds), now, *PUBLISHING, *platforms, now, now, node,
                 self._lease(-lease_seconds)))
        return Publication.from_row(rows[0]) if rows else None

    async def next_publication_at(self, platforms: Iterable[str]) -> datetime | None:
        platforms = list(platforms)
        if not platforms:
            return None
        rows = await self.db.execute_fetchall(
            "SELECT min(coalesce(not_before, created_at)) FROM publications WHERE claimed_by IS NULL "
            f"AND state IN (?, ?, ?) AND platform IN ({','.join('?' * len(platforms))})", (*PUBLISHING, *platforms))
        return datetime.fromisoformat(rows[0][0]) if rows and rows[0][0] else None

    _FENCED = "id = ? AND claimed_by = ? AND attempts = ? AND state IN ('pending', 'uploading', 'processing')"

    async def extend_publication_lease(self, publication_id: int, fence: tuple[str, int],
                                       lease_seconds: float = LEASE_SECONDS) -> bool:
        async with self.transaction():
            cur = await self.db.execute(f"UPDATE publications SET lease_until = ? WHERE {self._FENCED}",
                                        (self._lease(lease_seconds), publication_id, *fence))
        return cur.rowcount == 1

    async def save_publication(self, publication_id: int, fence: tuple[str, int], *, state: str | None = None,
                               facts: dict[str, Any] | None = None, percent: float | None = None,
                               message: str | None = None) -> Publication | None:
        async with self.transaction():  # the write lock is held from the read to the write
            rows = await self.db.execute_fetchall(f"SELECT facts FROM publications WHERE {self._FENCED}",
                                                  (publication_id, *fence))
            if not rows:
                return None
            merged = {**json.loads(rows[0][0]), **(facts or {})}
            offset = (facts or {}).get("offset")
            rows = await self.db.execute_fetchall(
                "UPDATE publications SET facts = ?, state = coalesce(?, state), percent = coalesce(?, percent), "
                "message = coalesce(?, message), upload_offset = coalesce(?, upload_offset), updated_at = ? "
                "WHERE id = ? RETURNING *",
                (json.dumps(merged), state, percent, message, offset if isinstance(offset, int) else None,
                 self._now(), publication_id))
        return Publication.from_row(rows[0])

    async def end_publication(self, publication_id: int, fence: tuple[str, int], state: str, *,
                              remote_id: str | None = None, url: str | None = None, error: str | None = None,
                              message: str = "") -> Publication | None:
        now = self._now()
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE publications SET state = ?, remote_id = coalesce(?, remote_id), url = coalesce(?, url), "
                "error = ?, message = ?, percent = CASE WHEN ? = 'published' THEN 100 ELSE percent END, "
                "published_at = CASE WHEN ? = 'published' THEN ? ELSE published_at END, claimed_by = NULL, "
                f"lease_until = NULL, not_before = NULL, updated_at = ? WHERE {self._FENCED} RETURNING *",
                (state, remote_id, url, error, message, state, state, now, now, publication_id, *fence))
        return Publication.from_row(rows[0]) if rows else None

    async def defer_publication(self, publication_id: int, fence: tuple[str, int], not_before: datetime,
                                message: str, *, failed: bool = False) -> Publication | None:
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE publications SET not_before = ?, message = ?, "
                "failures = CASE WHEN ? THEN failures + 1 ELSE 0 END, claimed_by = NULL, lease_until = NULL, "
                f"updated_at = ? WHERE {self._FENCED} RETURNING *",
                (not_before.astimezone(timezone.utc).isoformat(), message, failed, self._now(), publication_id,
                 *fence))
        return Publication.from_row(rows[0]) if rows else None

    async def release_publications(self, node_id: str | None = None) -> list[int]:
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "UPDATE publications SET claimed_by = NULL, lease_until = NULL, updated_at = ? "
                "WHERE claimed_by = ? AND state IN (?, ?, ?) RETURNING id",
                (self._now(), node_id or self.node_id, *PUBLISHING))
        return sorted(r[0] for r in rows)

    async def record_figures(self, publication_id: int, views: int, likes: int, comments: int) -> None:
        async with self.transaction():
            await self.db.execute(
                "INSERT INTO platform_figures (publication_id, video_id, platform, views, likes, comments, "
                "fetched_at) SELECT id, job_id, platform, ?, ?, ?, ? FROM publications WHERE id = ? "
                "ON CONFLICT (publication_id) DO UPDATE SET views = excluded.views, likes = excluded.likes, "
                "comments = excluded.comments, fetched_at = excluded.fetched_at",
                (views, likes, comments, self._now(), publication_id))

    # ---- campaigns ------------------------------------------------------------------

    async def upsert_campaign(self, name: str, path: str | None, definition: str) -> CampaignRow:
        now = self._now()
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "INSERT INTO video_campaigns (name, path, definition, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET path = excluded.path, definition = excluded.definition, "
                "removed_at = NULL RETURNING *", (name, path, definition, now))
        return CampaignRow.from_row(rows[0])

    async def remove_campaign(self, name: str) -> None:
        async with self.transaction():
            await self.db.execute("UPDATE video_campaigns SET path = NULL, removed_at = ?, next_run_at = NULL "
                                  "WHERE name = ? AND removed_at IS NULL", (self._now(), name))

    async def campaign_rows(self) -> list["CampaignRow"]:
        rows = await self.db.execute_fetchall("SELECT * FROM video_campaigns WHERE removed_at IS NULL ORDER BY name")
        return [CampaignRow.from_row(r) for r in rows]

    async def campaign_row(self, name: str) -> "CampaignRow | None":
        rows = await self.db.execute_fetchall("SELECT * FROM video_campaigns WHERE name = ?", (name,))
        return CampaignRow.from_row(rows[0]) if rows else None

    async def set_campaign_schedule(self, campaign_id: int, next_run_at: datetime | None) -> None:
        async with self.transaction():
            await self.db.execute("UPDATE video_campaigns SET next_run_at = ? WHERE id = ?",
                                  (next_run_at.isoformat() if next_run_at else None, campaign_id))

    async def set_campaign_paused(self, name: str, paused: bool) -> bool:
        async with self.transaction():
            cur = await self.db.execute("UPDATE video_campaigns SET paused = ? WHERE name = ? AND removed_at IS NULL",
                                        (int(paused), name))
        return cur.rowcount == 1

    async def used_insights(self, campaign_id: int) -> set[str]:
        rows = await self.db.execute_fetchall("SELECT key FROM campaign_insights WHERE campaign_id = ?",
                                              (campaign_id,))
        return {r[0] for r in rows}

    async def campaign_run_basis(self, campaign_id: int) -> RunBasis:
        """Read under the write lock: this one connection must not see another task's research
        row before its transaction commits (a rollback would hand that id to a later row).
        """
        async with self.transaction():
            rows = await self.db.execute_fetchall(
                "SELECT considered_through, (SELECT max(id) FROM campaign_runs WHERE campaign_id = c.id), "
                "(SELECT coalesce(max(id), 0) FROM research_jobs) FROM video_campaigns c WHERE id = ?",
                (campaign_id,))
        considered, last_run, through = rows[0]
        return RunBasis(campaign_id, last_run, considered, max(considered, through))

    async def research_unconsidered(self, basis: RunBasis, sources: list[str], since: datetime) -> list[ResearchJob]:
        return await self._research("id > ? AND id <= ? AND campaign_id IS NOT ?",
                                    [basis.considered_through, basis.research_through, basis.campaign_id],
                                    sources, since)

    async def research_since(self, sources: list[str], since: datetime) -> list[ResearchJob]:
        return await self._research("1 = 1", [], sources, since)

    async def _research(self, where: str, args: list[Any], sources: list[str], since: datetime) -> list[ResearchJob]:
        sql = (f"SELECT * FROM research_jobs WHERE {where} AND created_at >= ? "
               f"AND source IN ({','.join('?' * len(sources))}) ORDER BY id")
        rows = await self.db.execute_fetchall(sql, [*args, since.astimezone(timezone.utc).isoformat(), *sources])
        return [ResearchJob.from_row(r) for r in rows]

    async def campaign_jobs_since(self, campaign_id: int, since: datetime) -> int:
        rows = await self.db.execute_fetchall(
            "SELECT count(*) FROM video_generations WHERE campaign_id = ? AND created_at >= ?",
            (campaign_id, since.astimezone(timezone.utc).isoformat()))
        return rows[0][0]

    async def record_campaign_run(self, basis: RunBasis, picks: list["Pick"], *, trigger: str,
                                  slot: datetime | None, next_run_at: datetime | None, considered: list[dict],
                                  message: str, ran_at: datetime) -> tuple[int, list[int]]:
        campaign_id = basis.campaign_id
        now = self._now()
        ran = ran_at.astimezone(timezone.utc).isoformat()  # when the run looked: its slot, age rules, next run
        job_ids: list[int] = []
        chosen = []
        async with self.transaction():
            state = await self.db.execute_fetchall(
                "SELECT (SELECT max(id) FROM campaign_runs WHERE campaign_id = c.id), next_run_at "
                "FROM video_campaigns c WHERE id = ?", (campaign_id,))
            last_run, due = state[0]
            if slot is not None and (due is None or datetime.fromisoformat(due) != slot):
                raise SlotTaken(f"campaign #{campaign_id}: the run due at {slot.isoformat()} was already made")
            if last_run != basis.last_run_id:
                raise RunConflict(f"campaign #{campaign_id}: run #{last_run} was recorded while this run was made")
            # The run row first: UNIQUE (campaign_id, slot) makes a second run of one slot impossible
            # whatever the checks above saw.
            rows = await self.db.execute_fetchall(
                "INSERT INTO campaign_runs (campaign_id, slot, trigger, considered, chosen, job_ids, message, at) "
                "VALUES (?,?,?,?,'[]','[]',?,?) ON CONFLICT DO NOTHING RETURNING id",
                (campaign_id, slot.isoformat() if slot else None, trigger, json.dumps(considered), message, ran))
            if not rows:
                raise SlotTaken(f"campaign #{campaign_id}: the run due at {slot.isoformat()} was already made")
            run_id = rows[0][0]
            for pick in picks:
                research_id = pick.research_id
                if research_id is None:
                    cur = await self.db.execute(
                        "INSERT INTO research_jobs (content_hash, source, title, topic, filename, research, script, "
                        "campaign_id, created_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (content_hash) "
                        "DO UPDATE SET content_hash = excluded.content_hash RETURNING id",
                        (pick.content_hash, pick.research.source, pick.research.title, pick.research.topic, None,
                         pick.research.model_dump_json(), pick.script.model_dump_json(), campaign_id, now))
                    research_id = (await cur.fetchone())[0]
                ids = [await self._insert_job(j, research_id, now) for j in pick.jobs]
                job_ids += ids
                chosen.append({"research_id": research_id, "title": pick.script.title, "why": pick.why,
                               "job_ids": ids})
            await self.db.execute("UPDATE campaign_runs SET chosen = ?, job_ids = ? WHERE id = ?",
                                  (json.dumps(chosen), json.dumps(job_ids), run_id))
            # Plain INSERT: a key used before fails the whole run instead of being told twice. The
            # basis check above is what keeps that from happening; this makes a slip loud.
            await self.db.executemany(
                "INSERT INTO campaign_insights (campaign_id, key, run_id) VALUES (?, ?, ?)",
                [(campaign_id, k, run_id) for k in dict.fromkeys(k for p in picks for k in p.insight_keys)])
            await self.db.execute(
                "UPDATE video_campaigns SET last_run_at = ?, considered_through = ?, "
                "next_run_at = CASE WHEN ? THEN ? ELSE next_run_at END WHERE id = ?",
                (ran, basis.research_through, next_run_at is not None,
                 next_run_at.isoformat() if next_run_at else None, campaign_id))
        self._wake({j.renderer for p in picks for j in p.jobs})
        return run_id, job_ids

    async def campaign_runs(self, campaign_id: int, limit: int = 20) -> list[dict[str, Any]]:
        rows = await self.db.execute_fetchall(
            "SELECT * FROM campaign_runs WHERE campaign_id = ? ORDER BY id DESC LIMIT ?", (campaign_id, limit))
        return [{**dict(r), "considered": json.loads(r["considered"]), "chosen": json.loads(r["chosen"]),
                 "job_ids": json.loads(r["job_ids"])} for r in rows]

    async def campaign_totals(self) -> dict[int, dict[str, int]]:
        rows = await self.db.execute_fetchall(
            "SELECT c.id, (SELECT count(*) FROM campaign_runs r WHERE r.campaign_id = c.id), "
            "(SELECT count(*) FROM video_generations v WHERE v.campaign_id = c.id), "
            "(SELECT count(*) FROM video_generations v WHERE v.campaign_id = c.id AND v.status = 'completed') "
            "FROM video_campaigns c")
        return {r[0]: {"runs": r[1], "videos": r[2], "completed": r[3]} for r in rows}

    async def ended_before(self, cutoff: datetime) -> list[int]:
        rows = await self.db.execute_fetchall(
            "SELECT id FROM video_generations WHERE status IN ('completed','failed','timeout','cancelled') "
            "AND finished_at < ?", (cutoff.astimezone(timezone.utc).isoformat(),))
        return [r[0] for r in rows]

    # ---- small state for plugins ------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        rows = await self.db.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self.transaction():
            await self.db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    async def instance_id(self) -> str:
        return (await self.get_meta("instance_id")) or ""

    # ---- paid usage ----------------------------------------------------------------

    async def record_usage(self, job_id: int, renderer: str, seconds: float, campaign_id: int | None) -> bool:
        async with self.transaction():
            cur = await self.db.execute(
                "INSERT INTO renderer_usage (job_id, renderer, campaign_id, seconds, at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (job_id) DO NOTHING", (job_id, renderer, campaign_id, seconds, self._now()))
        return cur.rowcount == 1

    async def usage(self, renderer: str, since: datetime, campaign_id: int | None = None,
                    exclude_job: int | None = None) -> tuple[int, float]:
        sql = ("SELECT count(*), coalesce(sum(seconds), 0) FROM renderer_usage WHERE renderer = ? AND at >= ? "
               "AND job_id IS NOT ?")
        args: list[Any] = [renderer, since.astimezone(timezone.utc).isoformat(), exclude_job]
        if campaign_id is not None:
            sql += " AND campaign_id = ?"
            args.append(campaign_id)
        rows = await self.db.execute_fetchall(sql, args)
        return int(rows[0][0]), float(rows[0][1])

    async def counts(self) -> dict[str, int]:
        rows = await self.db.execute_fetchall("SELECT status, count(*) FROM video_generations GROUP BY status")
        return {r[0]: r[1] for r in rows}

    # ---- nodes and cross-node signals ---------------------------------------------

    async def heartbeat_node(self, node_id: str, host: str, started_at: datetime, renderers: list[str]) -> None:
        async with self.transaction():
            await self.db.execute(
                "INSERT INTO nodes (node_id, host, started_at, heartbeat_at, renderers) VALUES (?,?,?,?,?) "
                "ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, started_at = excluded.started_at, "
                "heartbeat_at = excluded.heartbeat_at, renderers = excluded.renderers",
                (node_id, host, started_at.astimezone(timezone.utc).isoformat(), self._now(), json.dumps(renderers)))

    async def nodes(self) -> list[Node]:
        rows = await self.db.execute_fetchall(
            "SELECT n.*, (SELECT count(*) FROM video_generations v WHERE v.claimed_by = n.node_id "
            "AND v.status IN (?, ?, ?)) AS running FROM nodes n ORDER BY n.node_id", HELD)
        return [Node.from_row(r) for r in rows]

    async def remove_node(self, node_id: str) -> bool:
        async with self.transaction():
            cur = await self.db.execute("DELETE FROM nodes WHERE node_id = ?", (node_id,))
        return cur.rowcount == 1

    async def notify(self, channel: str, payload: str = "") -> None:
        """Tell every listener of `channel` (here: the stores of this process on this file)."""
        check_notify(channel, payload)
        for queue in list(_listeners[self.path or Path()][channel]):
            queue.put_nowait((channel, payload))

    @contextlib.asynccontextmanager
    async def listen(self, channels: Iterable[str]) -> AsyncIterator[AsyncIterator[tuple[str, str]]]:
        """`(channel, payload)` for each notify from the moment the block opens."""
        channels = list(channels)
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        registry = _listeners[self.path or Path()]
        for channel in channels:
            registry[channel].add(queue)

        async def notes() -> AsyncIterator[tuple[str, str]]:
            while True:
                yield await queue.get()

        try:
            yield notes()
        finally:
            for channel in channels:
                registry[channel].discard(queue)

    @contextlib.asynccontextmanager
    async def leader(self, name: str) -> AsyncIterator[Leadership]:
        """One daemon per SQLite file: it is always the leader."""
        yield Leadership(name, held=True)

    def _wake(self, renderers: Iterable[str]) -> None:
        """Called after the commit: a listener that hears of a job finds it."""
        for renderer in sorted(renderers):
            for queue in list(_listeners[self.path or Path()]["jobs"]):
                queue.put_nowait(("jobs", renderer))


def statements(script: str) -> list[str]:
    """A migration's statements, split where SQLite says a statement is complete (not at every `;`,
    which a string or a trigger body may hold)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip() and not all(line.strip().startswith("--") or not line.strip()
                                   for line in current.splitlines()):
        raise ValueError(f"migration ends inside a statement: {current.strip()[:80]!r}")
    return out
