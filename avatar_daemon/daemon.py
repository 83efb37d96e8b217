"""The Daemon, the one composition root: loads the plugins, opens the store, builds every service and runs them.

Each service gets the parts it uses in its constructor, here and nowhere else. Plugins are
handed this object as `daemon` in their hooks; what they may use of it is the `Host` of the
contract page (hookspecs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import signal
import socket
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp

from . import systemd
from .campaigns.service import Campaigns
from .catalogue import Catalogue
from .cluster import Cluster
from .errors import ConfigError, PluginError
from .events import EventBus
from .inbox import Inbox
from .hookspecs import ScriptWriter
from .job_files import Cleanup
from .jobs import JobRunner
from .leadership import Leader
from .assets import Uploads
from .media import MediaResolver
from .models import AvatarProfile, Notice, utcnow
from .nodes import node_id
from .accounts import Accounts
from .publications import Publications
from .pipeline import Ingested, Pipeline
from .plugin_loading import LoadSpec, PluginInfo, load_plugins, make_plugin_manager
from .previews import AvatarPreviews
from .video_requests import VideoRequests
from .settings import Settings
from .store import Clock, Store
from .users import UsersWatcher
from .web import HttpServer, Route

log = logging.getLogger(__name__)


class Daemon:
    """One instance = one plugin manager; tests build a fresh one each.

    What needs no open resource (settings, the plugins' registries, media rules, previews,
    the inbox's folders) exists from the start; the store, the HTTP client, the event bus and
    the services that use them are made by `started()`, and are None before it.
    """

    def __init__(self, settings: Settings, load: LoadSpec | None = None, extra_plugins: tuple = (),
                 clock: Clock = utcnow):
        self.settings = settings
        self.clock = clock  # one clock for the store's stamps and the scheduler's comparisons
        self.node_id = node_id(settings.node_id, settings.data_dir)
        self.host = socket.gethostname()
        self.started_at = clock()
        self.pm = make_plugin_manager()
        load = load or LoadSpec(plugins_dir=settings.plugins.plugins_dir, only=settings.plugins.only,
                                disabled=settings.plugins.disabled)
        self.plugins: list[PluginInfo] = load_plugins(self.pm, load)
        for plugin in extra_plugins:
            self.pm.register(plugin, name=getattr(plugin, "__name__", type(plugin).__name__))
            self.plugins.append(PluginInfo(self.pm.get_name(plugin), "registered"))
        self.catalogue = c = Catalogue(settings)
        self.sources, self.script_writers, self.renderers = c.sources, c.script_writers, c.renderers
        self.formats, self.notifiers, self.services = c.formats, c.notifiers, c.services
        self.routes: list[Route] = []
        self.plugin_objects: dict[Any, Any] = {}  # per_daemon's: what a plugin's hooks share
        self._collect()
        self.stopping = asyncio.Event()
        self.http_ready = asyncio.Event()
        self.media = MediaResolver(settings, Uploads(settings))
        self.previews = AvatarPreviews(c, settings.data_dir / "previews")
        self.inbox = Inbox(settings.inbox, self.node_id, self._ingest, self._notice, self.stopping)
        self.users = UsersWatcher(settings, self.stopping)
        # made by started(), once the store and the HTTP client are open
        self.store: Store | None = None
        self.http: aiohttp.ClientSession | None = None
        self.bus: EventBus | None = None
        self.jobs: JobRunner | None = None
        self.pipeline: Pipeline | None = None
        self.campaigns: Campaigns | None = None
        self.videos: VideoRequests | None = None
        self.cleanup: Cleanup | None = None
        self.web: HttpServer | None = None
        self.cluster: Cluster | None = None
        self.leader: Leader | None = None
        self.publishing: Publications | None = None
        self.accounts = Accounts(settings.publishing)

    # ---- plugins -------------------------------------------------------------

    def _collect(self) -> None:
        """Call each plugin's registration hooks one by one, so every object has an owner."""
        info = {p.name: p for p in self.plugins}
        for hook in ("register_sources", "register_script_writers", "register_renderers", "register_formats",
                     "register_notifiers", "register_services", "register_notify_targets", "register_publishers",
                     "register_checks", "register_routes"):
            registry = None if hook == "register_routes" else self.catalogue.registry(hook)
            for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
                owner = impl.plugin_name
                names: list[str] = []

                def register(*args: Any, _registry=registry, _owner=owner, _names=names) -> None:
                    if _registry is None:
                        method, path, handler = args
                        self.routes.append((method.upper(), path, handler))
                        _names.append(f"{method.upper()} {path}")
                    else:
                        _registry.add(args[0], _owner)
                        _names.append(args[0].name)

                kwargs = {"register": register, "daemon": self}
                try:
                    impl.function(**{a: kwargs[a] for a in impl.argnames})
                except PluginError:
                    raise
                except Exception as exc:
                    log.error("plugin %r failed in %s: %s: %s", owner, hook, type(exc).__name__, exc)
                    if owner in info:
                        info[owner].error = f"{hook}: {type(exc).__name__}: {exc}"
                    continue
                if names and owner in info:
                    info[owner].registers.setdefault(hook.removeprefix("register_"), []).extend(names)

    def plugin_config(self, name: str) -> dict[str, Any]:
        return self.settings.plugin_config(name)

    # ---- lookups -------------------------------------------------------------

    def avatar(self, avatar_id: str) -> AvatarProfile:
        return self.catalogue.avatar(avatar_id)

    def script_writer(self, name: str | None = None) -> ScriptWriter:
        return self.catalogue.script_writer(name)

    @property
    def http_port(self) -> int | None:
        """The port the HTTP server really bound (settings may say 0 for any free one), once it listens."""
        return self.web.port if self.web else None

    # ---- lifecycle -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def started(self) -> AsyncIterator["Daemon"]:
        """Store open, HTTP client ready, startup hooks run; no services yet (one-shot commands)."""
        async with contextlib.AsyncExitStack() as stack:
            self.store = await stack.enter_async_context(
                Store.open(self.settings.database, self.clock, node_id=self.node_id))
            self.http = await stack.enter_async_context(
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60, connect=10)))
            unknown = [n for n in self.settings.notifiers if n not in self.notifiers]
            if unknown:
                raise ConfigError([f"{self.settings.config_path or 'settings'}:1: notifiers: no notifier named "
                                   f"{n!r} (known: {', '.join(self.notifiers.names())})" for n in unknown])
            self.bus = EventBus(self.store, [self.notifiers[n] for n in self.settings.notifiers], self.node_id)
            self._build()
            await self.store.sync_catalogue(self.settings.avatars.values(), self.settings.templates.values())
            for result in self.pm.hook.startup(daemon=self):
                if inspect.isawaitable(result):
                    await result
            try:
                yield self
            finally:
                await self.bus.drain()

    def _build(self) -> None:
        """Every service, with the parts it uses: the one place that knows how they fit together."""
        c, store, bus = self.catalogue, self.store, self.bus
        self.jobs = JobRunner(c, self.media, store, bus, node_id=self.node_id,
                              lease_seconds=self.settings.jobs.lease_seconds)
        queued = self.jobs.queued
        self.pipeline = Pipeline(c, self.media, store, queued)
        self.videos = VideoRequests(c, self.media, store, queued)
        self.publishing = Publications(
            store, bus, c.publishers, self.accounts, c.formats, self.jobs.script_for, self._publish_layers, self.http,
            self.settings.publishing, self._notice, node_id=self.node_id,
            lease_seconds=self.settings.jobs.lease_seconds, clock=self.clock)
        self.campaigns = Campaigns(c, store, bus, self.http, queued, self.publishing.request, self.clock,
                                   self.stopping)
        self.cleanup = Cleanup(store, self.settings.jobs, self.clock)
        # Of several daemons on one database, one at a time schedules campaigns, cleans up and reads
        # the platforms' figures back.
        self.leader = Leader(store, "campaigns", self.node_id,
                             [self.campaigns.lead, self.cleanup.run, self.publishing.read_figures])
        self.cluster = Cluster(store, bus, self.inbox, self.jobs.wake.set, node_id=self.node_id, host=self.host,
                               started_at=self.started_at, renderers=self.renderers.names(),
                               lease_seconds=self.settings.jobs.lease_seconds)
        if self.settings.http.enabled:
            self.web = HttpServer(self, self.routes, self.stopping, self.http_ready)

    async def _ingest(self, path: Path, name: str, suffix: str) -> Ingested:
        """The inbox's way in: it exists before the store is open, the pipeline only after."""
        return await self.pipeline.ingest(path, name, suffix)

    def _notice(self, notice: Notice) -> None:
        self.bus.notice(notice)

    def _publish_layers(self, job: Any) -> list[Any]:
        """A job's publish options below a request's, lowest first: its template's, then its campaign's."""
        template = self.settings.templates.get(job.template_id or "")
        campaign = self.campaigns.by_id(job.campaign_id) if self.campaigns else None
        return [template.publish if template else None, campaign.publish if campaign else None]

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT or stop(); every service is cancelled and closed on the way out."""
        async with self.started():
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self.stop)
            await self.cluster.beat()  # known alive before the inbox looks for dead nodes' folders
            core = [self.cluster, self.inbox, self.jobs, *([self.web] if self.web else [])]
            try:
                async with asyncio.TaskGroup() as tg:
                    for service in core:
                        tg.create_task(service.run(), name=service.name)
                    # Campaigns run user-edited files and live fetches: supervised like a plugin's service.
                    tg.create_task(self._supervise(self.campaigns.run, self.campaigns.name), name="campaigns")
                    tg.create_task(self._supervise(self.leader.run, self.leader.name), name="leader")
                    tg.create_task(self._supervise(self.users.run, self.users.name), name="users")
                    # Publishing calls plugins and platforms: a crash restarts it, the daemon runs on.
                    tg.create_task(self._supervise(self.publishing.run, self.publishing.name), name="publications")
                    for service in self.services:
                        tg.create_task(self._supervise(functools.partial(service.run, self), service.name),
                                       name=service.name)
                    tg.create_task(self._heartbeat(), name="heartbeat")
                    systemd.notify("READY=1\nSTATUS=running")
                    log.info("avatar-daemon running: inbox %s, renderers %s", self.settings.inbox.path,
                             ", ".join(self.renderers.names()))
                    await self.stopping.wait()
                    systemd.notify("STOPPING=1\nSTATUS=stopping")
                    raise _Stop
            except* _Stop:
                pass
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    for sig in (signal.SIGTERM, signal.SIGINT):
                        loop.remove_signal_handler(sig)
            log.info("avatar-daemon stopped: inbox %s, jobs %s", self.inbox.stats.__dict__,
                     await self.store.counts())

    def stop(self) -> None:
        self.stopping.set()

    async def _supervise(self, run: Callable[[], Awaitable[None]], name: str) -> None:
        """Plugin services restart with capped backoff; a crash is logged, not fatal."""
        delay = 1.0
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("service %r crashed: %s: %s; restarting in %.0f s", name,
                          type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _heartbeat(self) -> None:
        """WATCHDOG=1 only while the loop and store answer, so systemd restarts a wedged daemon."""
        interval = systemd.watchdog_interval() or self.settings.watchdog_seconds
        while True:
            await asyncio.sleep(interval or 30.0)
            counts = await self.store.counts()
            status = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "idle"
            systemd.notify(f"WATCHDOG=1\nSTATUS=jobs: {status}; inbox: {self.inbox.stats.processed} processed, "
                           f"{self.inbox.stats.failed} failed")


class _Stop(Exception):
    """Raised inside the TaskGroup to cancel every service together."""

