"""The Daemon: owns the plugin manager, registries, store and services, and runs them."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp

from . import systemd
from .campaigns import Campaigns
from .errors import ConfigError, PluginError, UnknownNameError
from .events import EventBus
from .inbox import Inbox
from .interfaces import Notifier, Renderer, ResearchSource, ScriptWriter, Service
from .jobs import JobRunner
from .media import MediaResolver
from .models import AvatarProfile, FormatSpec, utcnow
from .pipeline import Pipeline
from .plugins import LoadSpec, PluginInfo, load_plugins, make_plugin_manager
from .previews import AvatarPreviews
from .registry import Registry
from .requests import VideoRequests
from .settings import Settings
from .store import Clock, Store
from .users import UsersWatcher
from .web import HttpServer

log = logging.getLogger(__name__)

Route = tuple[str, str, Callable[..., Awaitable[Any]]]


class Daemon:
    """One instance = one plugin manager; tests build a fresh one each."""

    def __init__(self, settings: Settings, load: LoadSpec | None = None, extra_plugins: tuple = (),
                 clock: Clock = utcnow):
        self.settings = settings
        self.clock = clock  # one clock for the store's stamps and the scheduler's comparisons
        self.pm = make_plugin_manager()
        load = load or LoadSpec(plugins_dir=settings.plugins.plugins_dir, only=settings.plugins.only,
                                disabled=settings.plugins.disabled)
        self.plugins: list[PluginInfo] = load_plugins(self.pm, load)
        for plugin in extra_plugins:
            self.pm.register(plugin, name=getattr(plugin, "__name__", type(plugin).__name__))
            self.plugins.append(PluginInfo(self.pm.get_name(plugin), "registered"))
        self.sources: Registry[ResearchSource] = Registry("source")
        self.script_writers: Registry[ScriptWriter] = Registry("script writer")
        self.renderers: Registry[Renderer] = Registry("renderer")
        self.formats: Registry[FormatSpec] = Registry("format")
        self.notifiers: Registry[Notifier] = Registry("notifier")
        self.services: Registry[Service] = Registry("service")
        self.routes: list[Route] = []
        self._collect()
        self.store: Store | None = None
        self.http: aiohttp.ClientSession | None = None
        self.stopping = asyncio.Event()
        self.http_ready = asyncio.Event()
        self.http_port: int | None = None
        self.media = MediaResolver(settings)
        self.pipeline = Pipeline(self)
        self.jobs = JobRunner(self)
        self.inbox = Inbox(self)
        self.campaigns = Campaigns(self)
        self.videos = VideoRequests(self)
        self.previews = AvatarPreviews(self)
        self.users = UsersWatcher(settings)
        self.bus: EventBus | None = None
        self.web: HttpServer | None = None

    # ---- plugins -------------------------------------------------------------

    def _collect(self) -> None:
        """Call each plugin's registration hooks one by one, so every object has an owner."""
        info = {p.name: p for p in self.plugins}
        for hook, registry in (
            ("register_sources", self.sources), ("register_script_writers", self.script_writers),
            ("register_renderers", self.renderers), ("register_formats", self.formats),
            ("register_notifiers", self.notifiers), ("register_services", self.services),
            ("register_routes", None),
        ):
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
        try:
            return self.settings.avatars[avatar_id]
        except KeyError:
            known = ", ".join(self.settings.avatars) or "none"
            raise UnknownNameError(f"no avatar profile named {avatar_id!r} (known: {known})") from None

    def script_writer(self, name: str | None = None) -> ScriptWriter:
        """`name` (a request's, campaign's or template's choice), else daemon.yaml's script.writer."""
        return self.script_writers[name or self.plugin_config("script").get("writer", "template")]

    def wake_jobs(self) -> None:
        self.jobs.wake.set()

    # ---- lifecycle -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def started(self) -> AsyncIterator["Daemon"]:
        """Store open, HTTP client ready, startup hooks run; no services yet (one-shot commands)."""
        async with contextlib.AsyncExitStack() as stack:
            self.store = await stack.enter_async_context(Store.open(self.settings.database, self.clock))
            self.http = await stack.enter_async_context(
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60, connect=10)))
            unknown = [n for n in self.settings.notifiers if n not in self.notifiers]
            if unknown:
                raise ConfigError([f"{self.settings.config_path or 'settings'}:1: notifiers: no notifier named "
                                   f"{n!r} (known: {', '.join(self.notifiers.names())})" for n in unknown])
            self.bus = EventBus(self.store, [self.notifiers[n] for n in self.settings.notifiers])
            await self.store.sync_catalogue(self.settings.avatars.values(), self.settings.templates.values())
            for result in self.pm.hook.startup(daemon=self):
                if inspect.isawaitable(result):
                    await result
            try:
                yield self
            finally:
                await self.bus.drain()

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT or stop(); every service is cancelled and closed on the way out."""
        async with self.started():
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self.stop)
            core: list[Service] = [self.inbox, self.jobs]
            if self.settings.http.enabled:
                self.web = HttpServer(self)
                core.append(self.web)
            try:
                async with asyncio.TaskGroup() as tg:
                    for service in core:
                        tg.create_task(service.run(self), name=service.name)
                    # Campaigns run user-edited files and live fetches: supervised like a plugin's service.
                    for service in [self.campaigns, self.users, *self.services]:
                        tg.create_task(self._supervise(service), name=service.name)
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

    async def _supervise(self, service: Service) -> None:
        """Plugin services restart with capped backoff; a crash is logged, not fatal."""
        delay = 1.0
        while True:
            try:
                await service.run(self)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("service %r crashed: %s: %s; restarting in %.0f s", service.name,
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

