"""Publishing: the queue of posts to platforms, worked on by every node, each post made once.

A publication is a row per (video, platform, account) (store `publications`). Any trigger (a
campaign's `auto_post`, POST /videos/{id}/publish, Slack, the studio, the CLI) calls `request`,
which finds an existing row instead of making a second. Every node claims due rows for the
platforms it has a publisher for, leased like a render: the publisher saves what it learns
(a session URI, the confirmed offset, the platform's id) through `Upload.save`, fenced by the
claim, so a restart or another node resumes from there; one that may already be on the
platform is looked up there before anything is posted again (the publisher's duty). A quota
makes the row wait until it resets, a transient failure puts it back with backoff, the
platform's refusal fails it with the platform's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import aiohttp
from pydantic import ValidationError

from .accounts import Account, Accounts
from .coalescing import Coalescer
from .errors import AvatarDaemonError, InvalidRequest, PublishError, QuotaWait, UnknownNameError, first_problem
from .events import EventBus
from .hookspecs import Publisher, Upload
from .models import FormatSpec, JobEvent, JobState, Notice, PublishOptions, PublishVideo, Script
from .registry import Registry
from .retry import TryAgain, backoff
from .settings import PublishingSettings
from .store import Job, NewPublication, Publication, Store, while_busy

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL = 0.5   # seconds between a publication's progress reports (see coalescing.py)
PERSIST_INTERVAL = 5.0        # seconds between percent writes to the store (events carry every step)
RETRY_CAP = 3600.0            # a transient failure waits at most an hour before the next try
CHANNEL = "publications"      # store.notify: a publication was queued (payload: the video id)

OptionsOf = Callable[[Job], list[PublishOptions | None]]
"""The layers of a job's publish options below the request's, lowest first: its template's, its campaign's."""
ScriptOf = Callable[[Job], Awaitable[Script | None]]


class LostPublication(AvatarDaemonError):
    """This node's claim on a publication is gone (its lease ran out and another node took it over)."""


def layered(layers: Iterable[PublishOptions | dict[str, Any] | None]) -> PublishOptions:
    """Options set in a later layer win, field by field; `extra` merges key by key. Private by default."""
    merged: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        given = layer.model_dump(exclude_unset=True) if isinstance(layer, PublishOptions) else dict(layer)
        extra.update(given.pop("extra", None) or {})
        merged.update(given)
    return PublishOptions.model_validate({**merged, "extra": extra})


def probe_video(path: Path) -> tuple[int, int, float] | None:
    """(width, height, seconds) read from the file itself; None when it is not a video PyAV can open."""
    import av

    try:
        with av.open(str(path), options={"protocol_whitelist": "file"}) as box:
            stream = box.streams.video[0]
            seconds = float(box.duration / av.time_base) if box.duration else float(stream.duration * stream.time_base)
            return stream.codec_context.width, stream.codec_context.height, seconds
    except Exception:  # not a video (a test renderer's text file) or one PyAV cannot read: fall back
        return None


class Publications:
    """The service (every node runs it) and `Host.publishing`, the one way to ask for a post."""

    name = "publications"

    def __init__(self, store: Store, bus: EventBus, publishers: Registry[Publisher], accounts: Accounts,
                 formats: Registry[FormatSpec], script_of: ScriptOf, options_of: OptionsOf,
                 http: aiohttp.ClientSession, settings: PublishingSettings, notice: Callable[[Notice], None], *,
                 node_id: str, lease_seconds: float, clock: Callable[[], datetime]):
        self.store, self.bus, self.publishers, self.accounts = store, bus, publishers, accounts
        self.formats, self.script_of, self.options_of = formats, script_of, options_of
        self.http, self.settings, self.notice = http, settings, notice
        self.node, self.lease, self.clock = node_id, lease_seconds, clock
        self.wake = asyncio.Event()
        self.running: dict[int, asyncio.Task] = {}
        self._told_private: set[str] = set()

    # ---- what interfaces call (Host.publishing) -----------------------------------------------

    def platforms(self) -> dict[str, list[str]]:
        """Platform -> its configured account names, for the platforms a publisher is registered for."""
        return {p: names for p in self.publishers.names() if (names := [a.name for a in self.accounts.of(p)])}

    async def request(self, job_id: int, platforms: list[str], *, accounts: list[str] | None = None,
                      options: dict[str, Any] | PublishOptions | None = None, by: str) -> list[dict[str, Any]]:
        """Queue the video on each platform (its default account, or the named ones); what each row is now.

        A (video, platform, account) asked for before is returned as it is, never queued twice.
        Refuses, before anything is queued, a video that has not finished, a platform no
        publisher handles, an account that is not configured or belongs to another platform.
        """
        job = await self.store.job(job_id)
        if job is None:
            raise UnknownNameError(f"no video {job_id}")
        if job.status is not JobState.completed or not (job.result or {}).get("video"):
            raise InvalidRequest("video", f"video {job_id} is {job.status.value}: only a finished video can be "
                                          "published")
        if not platforms:
            raise InvalidRequest("platforms", "name at least one platform to publish to")
        for platform in dict.fromkeys(platforms):
            if platform not in self.publishers:
                known = ", ".join(sorted(self.publishers.names())) or "none: install a publishing plugin"
                raise UnknownNameError(f"no publisher for platform {platform!r} (known: {known})")
        try:
            request_layer = options if isinstance(options, PublishOptions) or options is None \
                else PublishOptions.model_validate(options)
            chosen = layered([*self.options_of(job), request_layer])
        except ValidationError as exc:
            where, reason = first_problem(exc)
            raise InvalidRequest(f"publish.{where}" if where else "publish", reason) from None
        wanted = [NewPublication(platform, account.name, chosen.model_dump(mode="json"))
                  for platform, account in self._accounts_for(list(dict.fromkeys(platforms)), accounts)]
        rows = await while_busy(lambda: self.store.request_publications(job_id, wanted, by),
                                f"queueing video {job_id} for publishing")
        for row, created in rows:
            if created:
                log.info("video %s: queued for %s (account %s), asked by %s", job_id, row.platform, row.account, by)
                self.bus.announce(self._event(row, f"queued for {row.platform} ({row.account})"))
        self.wake.set()
        if any(created for _, created in rows):
            try:  # the node that holds the file may be another: it hears at once, else at its next poll
                await self.store.notify(CHANNEL, str(job_id))
            except Exception as exc:
                log.warning("could not tell other nodes of video %s's publications: %s", job_id, exc)
        return [row.public() for row, _ in rows]

    def _accounts_for(self, platforms: list[str], names: list[str] | None) -> list[tuple[str, Account]]:
        named = [self.accounts.get(n) for n in dict.fromkeys(names or [])]
        for account in named:
            if account.platform not in platforms:
                raise InvalidRequest("accounts", f"account {account.name} is a {account.platform} account, and "
                                                 f"{account.platform} is not among the platforms asked for "
                                                 f"({', '.join(platforms)})")
        out = []
        for platform in platforms:
            mine = [a for a in named if a.platform == platform] or [self.accounts.default_of(platform)]
            out += [(platform, a) for a in mine]
        return out

    async def for_video(self, job_id: int) -> list[dict[str, Any]]:
        return [p.public() for p in await self.store.publications(job_id)]

    # ---- the service --------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: claim what is due for our publishers, up to `concurrency` at once."""
        released = await while_busy(lambda: self.store.release_publications(self.node),
                                    "releasing publications of the last life")
        if released:
            log.info("publications %s were this node's when it stopped; they resume from what was saved", released)
        listener = asyncio.create_task(self._listen(), name="publications-listen")
        try:
            while True:
                self.wake.clear()
                await self._fill()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(await self._pause()):
                        await self.wake.wait()
        finally:
            listener.cancel()
            for task in self.running.values():
                task.cancel()
            if self.running:
                await asyncio.wait(list(self.running.values()), timeout=10)
                # A clean stop lets its uploads go now: another node resumes them from what was saved.
                with contextlib.suppress(Exception):
                    await self.store.release_publications(self.node)

    async def _listen(self) -> None:
        """Wake when any node queues a publication; a lost connection falls back to the poll until it is back."""
        delay = 1.0
        while True:
            try:
                async with self.store.listen([CHANNEL]) as notes:
                    self.wake.set()  # whatever was queued while nobody listened
                    async for _ in notes:
                        delay = 1.0
                        self.wake.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening for publications failed (%s: %s); polling, retrying in %.0f s",
                            type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _pause(self) -> float:
        """Until the next row falls due, at most `poll_seconds` (leases run out on other nodes unheard)."""
        pause = self.settings.poll_seconds
        at = await while_busy(lambda: self.store.next_publication_at(self.publishers.names()),
                              "looking for due publications")
        if at is not None:
            pause = min(pause, max(0.0, (at - self.clock()).total_seconds()))
        return max(pause, 0.01)

    async def _fill(self) -> None:
        while len(self.running) < self.settings.concurrency:
            pub = await while_busy(lambda: self.store.claim_publication(self.publishers.names(), self.node,
                                                                        self.lease), "claiming a publication")
            if pub is None:
                return
            task = asyncio.create_task(self.work(pub), name=f"publication-{pub.id}")
            self.running[pub.id] = task

            def done(_: asyncio.Task, pub_id: int = pub.id) -> None:
                self.running.pop(pub_id, None)
                self.wake.set()

            task.add_done_callback(done)

    async def work(self, pub: Publication) -> Publication | None:
        """See one claimed publication through this try: published, failed, waiting or put back.

        Its row as this try left it; None when the claim was lost (another node carries on).
        """
        fence = pub.fence
        assert fence is not None, "work() takes a claimed publication"
        me = asyncio.current_task()
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep(pub, me, lost), name=f"publication-{pub.id}-lease")
        upload: _Upload | None = None
        try:
            publisher = self.publishers[pub.platform]
            account = self.accounts.get(pub.account)
            options = PublishOptions.model_validate(pub.options)
            video = await self.video_of(pub.job_id)
            self._say_private_once(pub.platform, options)
            upload = _Upload(self, pub, video, account, options)
            if pub.attempts == 1:
                self.bus.announce(self._event(pub, f"publishing to {pub.platform} ({pub.account})"))
            posted = await publisher.publish(upload, self.http)
            upload.closed = True
            row = await self._end(pub, "published", remote_id=posted.remote_id, url=posted.url,
                                  message=f"published on {pub.platform}" + (f": {posted.url}" if posted.url else ""))
            if row is not None:
                log.info("video %s: published on %s (%s) as %s %s", pub.job_id, pub.platform, pub.account,
                         posted.remote_id, posted.url or "")
            return row
        except QuotaWait as exc:
            until = exc.until if exc.until.tzinfo else exc.until.replace(tzinfo=timezone.utc)
            message = f"waiting for the {pub.platform} quota: {exc.reason}; until {until.isoformat()}"
            return await self._defer(pub, until, message, failed=False)
        except TryAgain as exc:
            return await self._try_later(pub, exc.reason, exc.after)
        except LostPublication as exc:
            log.warning("publication %s: %s; this node stops", pub.id, exc)
            return None
        except AvatarDaemonError as exc:  # PublishError with the platform's reason; a missing secret or file
            return await self._end(pub, "failed", error=str(exc), message=f"{pub.platform} failed: {exc}")
        except asyncio.CancelledError:
            if lost.is_set() and me is not None and me.uncancel() == 0:
                log.warning("publication %s: this node's claim on it ran out; its upload was stopped", pub.id)
                return None
            raise  # a shutdown: the claim is released at the next start, or runs out for another node
        except Exception as exc:  # a publisher's bug or an unwrapped network error: not a reason to post twice
            log.error("publication %s crashed: %s", pub.id, traceback.format_exc())
            return await self._try_later(pub, f"internal error: {type(exc).__name__}: {exc}", None)
        finally:
            if upload is not None:
                upload.closed = True
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self, pub: Publication, task: asyncio.Task | None, lost: asyncio.Event) -> None:
        """Renew the lease while the upload runs; stop the upload the moment it is no longer ours."""
        while True:
            await asyncio.sleep(self.lease / 3)
            held = await while_busy(lambda: self.store.extend_publication_lease(pub.id, pub.fence, self.lease),
                                    f"renewing publication {pub.id}")
            if not held:
                lost.set()
                if task is not None and not task.done():
                    task.cancel()
                return

    async def _end(self, pub: Publication, state: str, **kw: Any) -> Publication | None:
        row = await while_busy(lambda: self.store.end_publication(pub.id, pub.fence, state, **kw),
                               f"recording publication {pub.id}")
        if row is None:
            log.warning("publication %s: %s, but this node no longer held it: the new owner records it", pub.id,
                        state)
            return None
        self.bus.announce(self._event(row, row.message))
        return row

    async def _defer(self, pub: Publication, until: datetime, message: str, *, failed: bool) -> Publication | None:
        row = await while_busy(lambda: self.store.defer_publication(pub.id, pub.fence, until, message, failed=failed),
                               f"putting publication {pub.id} back")
        if row is not None:
            log.info("publication %s: %s", pub.id, message)
            self.bus.announce(self._event(row, message))
        return row

    async def _try_later(self, pub: Publication, reason: str, after: float | None) -> Publication | None:
        failures = pub.failures + 1
        if failures >= self.settings.max_failures:
            return await self._end(pub, "failed", error=f"{reason} (gave up after {failures} tries)",
                                   message=f"{pub.platform} failed: {reason} (gave up after {failures} tries)")
        wait = backoff(failures, self.settings.retry_seconds, RETRY_CAP, after)
        until = self.clock() + timedelta(seconds=wait)
        return await self._defer(pub, until, f"{pub.platform}: {reason}; trying again in {wait:.0f} s", failed=True)

    def _say_private_once(self, platform: str, options: PublishOptions) -> None:
        if platform in self._told_private:
            return
        self._told_private.add(platform)
        if options.privacy == "private":
            message = (f"{platform}: posting privately (publish.privacy defaults to private): the platforms keep "
                       "posts of apps they have not audited private anyway; set publish: {privacy: public} once "
                       "your app has passed the audit")
        else:
            message = (f"{platform}: posting as {options.privacy}; if the app has not passed {platform}'s audit, "
                       "the platform keeps the post private whatever is asked")
        log.info("%s", message)
        self.notice(Notice(kind="publish.private", message=message, data={"platform": platform}))

    def _event(self, row: Publication, message: str, percent: float | None = None) -> JobEvent:
        public = row.public()
        if percent is not None:
            public["percent"] = percent
        return JobEvent(job_id=row.job_id, state=JobState.completed, message=message, publication=public)

    # ---- figures back (the leader's duty) -----------------------------------------------------

    FIGURES_AT = "publishing.figures_at"

    async def read_figures(self, recheck: float = 300.0) -> None:
        """Until cancelled: every `figures_hours`, the platforms' views, likes and comments of published posts.

        The last read's time is kept in the store, so a restart or a new leader does not read again
        early; the clock is looked at every `recheck` seconds, as it may jump (suspend, NTP).
        """
        every = timedelta(hours=self.settings.figures_hours)
        while True:
            last = await while_busy(lambda: self.store.get_meta(self.FIGURES_AT), "reading when figures were read")
            due = datetime.fromisoformat(last) + every if last else self.clock()
            wait = (due - self.clock()).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, recheck))
                continue
            began = self.clock()  # the schedule counts from when a read began, however long it took
            await self.figures_once()
            await while_busy(lambda: self.store.set_meta(self.FIGURES_AT, began.isoformat()),
                             "noting when figures were read")

    async def figures_once(self) -> int:
        """Read every published post's figures now, one call per account; how many posts were updated.

        A platform or account that fails is logged and skipped: the others' figures still land.
        """
        published = await self.store.publications(states=["published"], limit=100_000)
        groups: dict[tuple[str, str], list[Publication]] = {}
        for pub in published:
            if pub.remote_id and pub.platform in self.publishers:
                groups.setdefault((pub.platform, pub.account), []).append(pub)
        updated = 0
        for (platform, account_name), pubs in groups.items():
            try:
                account = self.accounts.get(account_name)
                figures = await self.publishers[platform].figures(account, [p.remote_id for p in pubs], self.http)
            except Exception as exc:
                log.warning("figures of %s account %s: %s: %s", platform, account_name, type(exc).__name__, exc)
                continue
            for pub in pubs:
                got = figures.get(pub.remote_id)
                if got is not None:
                    await while_busy(lambda: self.store.record_figures(pub.id, got.views, got.likes, got.comments),
                                     f"recording figures of publication {pub.id}")
                    updated += 1
        if groups:
            log.info("platform figures: %d of %d published post(s) updated", updated, len(published))
        return updated

    # ---- the video ----------------------------------------------------------------------------

    async def video_of(self, job_id: int) -> PublishVideo:
        """The finished video as a publisher posts it: its file, its real size and shape, and its text."""
        job = await self.store.job(job_id)
        if job is None:
            raise PublishError(f"video {job_id} no longer exists")
        result = job.result or {}
        path = Path(result["video"]) if result.get("video") else None
        if path is None or not path.is_file():
            raise PublishError(f"video {job_id}: its file is not on this node ({path}); it may have been cleaned up")
        shape = await asyncio.to_thread(probe_video, path)
        fmt = self.formats.get(job.format)
        if shape is None:
            width, height = (fmt.width, fmt.height) if fmt else (0, 0)
            shape = (width, height, float(result.get("duration") or 0.0))
        script = await self.script_of(job)
        thumbnail = Path(result["thumbnail"]) if result.get("thumbnail") else None
        return PublishVideo(
            job_id=job.id, path=path, size=path.stat().st_size,
            mime="video/mp4" if path.suffix.lower() in (".mp4", ".m4v") else "application/octet-stream",
            format=job.format, width=shape[0], height=shape[1], duration=shape[2],
            title=(script.title if script else None) or job.title,
            description=script.description if script else "", hashtags=list(script.hashtags) if script else [],
            thumbnail=thumbnail if thumbnail and thumbnail.is_file() else None)


class _Upload:
    """The `Upload` a publisher is handed: its saves and progress are fenced by this node's claim."""

    def __init__(self, service: Publications, pub: Publication, video: PublishVideo, account: Account,
                 options: PublishOptions):
        self.service, self.pub = service, pub
        self.publication_id = pub.id
        self.video, self.account, self.options = video, account, options
        self.state: dict[str, Any] = dict(pub.facts)
        self.stage = pub.state
        self.closed = False
        self._reports, self._saved_at = Coalescer(PROGRESS_MIN_INTERVAL), 0.0
        self._writes: set[asyncio.Task] = set()

    async def save(self, stage: str | None = None, **facts: Any) -> None:
        if stage not in (None, "uploading", "processing"):
            raise ValueError(f"stage {stage!r}: a publisher saves `uploading` or `processing`; the core records "
                             "published and failed")
        store, pub = self.service.store, self.pub
        row = await while_busy(lambda: store.save_publication(pub.id, pub.fence, state=stage, facts=facts),
                               f"saving publication {pub.id}")
        if row is None:
            raise LostPublication(f"publication {pub.id}: try {pub.attempts} is no longer node {pub.claimed_by}'s "
                                  "(its lease ran out and another node took it over)")
        self.state.update(facts)
        if stage is not None and stage != self.stage:
            self.stage = stage
            self.service.bus.announce(self.service._event(row, f"{pub.platform}: {stage}"))

    def progress(self, percent: float, message: str) -> None:
        if self.closed:
            return
        if not self._reports.due(percent):
            return
        now = time.monotonic()
        percent = round(min(max(percent, 0.0), 99.9), 1)
        pub = self.pub
        row = Publication(**{**pub.__dict__, "state": self.stage, "percent": percent})
        self.service.bus.announce(self.service._event(row, message, percent))
        if now - self._saved_at >= PERSIST_INTERVAL:
            self._saved_at = now
            task = asyncio.ensure_future(self._persist(percent, message))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    def read(self, first: int, end: int, piece: int = 1024 * 1024,
             sending_to: str | None = None) -> AsyncIterator[bytes]:
        return read_video(self, first, end, piece, sending_to)

    async def _persist(self, percent: float, message: str) -> None:
        """The percent the studio shows on reload; a lost claim is the publisher's `save` to report."""
        with contextlib.suppress(Exception):
            await self.service.store.save_publication(self.pub.id, self.pub.fence, percent=percent, message=message)


async def read_video(upload: Upload, first: int, end: int, piece: int = 1024 * 1024,
                     sending_to: str | None = None) -> AsyncIterator[bytes]:
    """`Upload.read`: the one file reader every publisher streams its upload from."""
    path, total = upload.video.path, upload.video.size
    with open(path, "rb") as f:
        f.seek(first)
        at = first
        while at < end:
            data = await asyncio.to_thread(f.read, min(piece, end - at))
            if not data:
                raise PublishError(f"video {upload.video.job_id}: its file {path.name} ended early, at byte {at} "
                                   f"of {total}")
            at += len(data)
            if sending_to:
                upload.progress(90.0 * at / total, f"sending the video to {sending_to} ({at * 100 // total}%)")
            yield data
