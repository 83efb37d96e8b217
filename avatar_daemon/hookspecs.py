"""avatar-daemon plugin hooks: the whole contract a plugin author needs.

Write a module (or package), decorate functions named after the hooks below with
``@avatar_daemon.hookimpl`` and declare it under the entry-point group
``avatar_daemon`` in your pyproject.toml (or drop the file in the ``plugins_dir``
folder named in daemon.yaml)::

    from avatar_daemon import hookimpl, Insight, Research

    class Lobsters:
        name = "lobsters"

        def detect(self, payload, filename):
            return 0.9 if isinstance(payload, list) and payload and "short_id" in payload[0] else 0.0

        def extract(self, payload):
            insights = [Insight(text=p["title"], score=p["score"], url=p["url"]) for p in payload]
            return Research(source=self.name, title="Lobsters today", topic="tech", insights=insights)

    @hookimpl
    def register_sources(register):
        register(Lobsters())

Rules:

* Accept only the parameters you need; new parameters may be added, never removed.
* Registration hooks run once, synchronously, while the daemon starts; the objects
  you register do the asynchronous work.
* Names are global: two plugins registering the same name is an error naming both.
* Import from ``avatar_daemon`` only what its ``__all__`` lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from .interfaces import Notifier, Renderer, ResearchSource, ScriptWriter, Service
    from .models import FormatSpec

hookspec = pluggy.HookspecMarker("avatar_daemon")
hookimpl = pluggy.HookimplMarker("avatar_daemon")


# ---- what the daemon reads, writes, renders and tells -------------------------


@hookspec
def register_sources(register: Callable[["ResearchSource"], None], daemon: "Daemon") -> None:
    """Register research sources, which turn a dropped or fetched payload into Research.

    Call ``register(source)`` once per source. A source has ``name`` (str);
    ``detect(payload, filename) -> float`` where 0.0 means "not mine" and 1.0
    "certainly mine" (every source is asked; the highest score wins, and a request
    envelope's ``"source"`` overrides); ``extract(payload) -> Research`` with insights
    ranked best first, raising ``ResearchError`` with a sentence when nothing is
    usable; and optionally ``async fetch(query, http) -> Research`` to pull fresh
    research live for campaigns. ``payload`` is parsed JSON, an
    ``xml.etree.ElementTree.Element`` for XML, or a ``str`` for .txt/.md files.
    ``daemon`` gives access to settings through ``daemon.plugin_config(name)``.
    """


@hookspec
def register_script_writers(register: Callable[["ScriptWriter"], None], daemon: "Daemon") -> None:
    """Register script writers, which turn Research into a spoken Script.

    Call ``register(writer)``; a writer has ``name`` and
    ``write(research, template, limits) -> Script`` where ``template`` names a
    script template (usually the source name) and ``limits`` has ``max_seconds`` and
    ``voice_speed`` so the script fits the target format, and ``language``, the
    voice's. ``write`` is always called in a worker thread, never on the event loop,
    so it may wait on the network (bounded by its own timeout). Which writer runs is
    chosen by the request envelope's ``writer``, the campaign's, the script
    template's, else daemon.yaml's ``script.writer``. ``daemon`` gives settings.
    """


@hookspec
def register_renderers(register: Callable[["Renderer"], None], daemon: "Daemon") -> None:
    """Register renderers, which turn a RenderRequest into a video.

    Call ``register(renderer)``; a renderer has ``name``, ``max_concurrency`` (jobs
    it may run at once) and ``async render(request, progress) -> RenderResult``.
    Call ``progress(percent, message)`` as work advances (it is thread-safe). A
    remote renderer that pays per render awaits ``progress.submitting(message)``
    before its create call and ``progress.submitted(external_id)`` the moment the
    remote id is known: after a crash the job comes back with
    ``request.external_id`` set, to resume rather than pay twice. Raise
    ``RenderError`` with a user-facing sentence on failure and leave no partial file
    posing as a result. ``list_avatars()`` returns the catalogue where there is one.
    Optional: ``timeout_seconds`` (a longer deadline than jobs.timeout_seconds),
    ``async dry_run(request) -> list[dict]`` (the requests it would send, for
    ``render --dry-run``) and ``async sync_catalogue() -> list[str]`` (problems
    found, for ``avatars --sync``). ``daemon`` gives settings and the avatar profiles.
    """


@hookspec
def register_formats(register: Callable[["FormatSpec"], None], daemon: "Daemon") -> None:
    """Register output formats such as tiktok, youtube or square.

    Call ``register(FormatSpec(...))``: name, label, width, height, fps, voice speed,
    caption style, max duration and deliverables. ``daemon`` gives settings.
    """


@hookspec
def register_notifiers(register: Callable[["Notifier"], None], daemon: "Daemon") -> None:
    """Register notifiers, which hear every job event.

    Call ``register(notifier)``; a notifier has ``name`` and
    ``async notify(event: JobEvent)``, and optionally ``async notice(notice: Notice)``
    for events that are not a job's (a campaign ran, a campaign file is invalid; a
    campaign's own targets are in ``notice.data["notify"]``). A notifier that raises
    is logged and never stops a job. ``daemon`` gives settings through
    ``daemon.plugin_config(name)``.
    """


# ---- long-running parts and entry points ---------------------------------------


@hookspec
def register_services(register: Callable[["Service"], None], daemon: "Daemon") -> None:
    """Register long-running services, such as a chat connection.

    Call ``register(service)``; a service has ``name`` and ``async run(daemon)``,
    which runs until cancelled and releases what it holds in ``finally``. A service
    that crashes is logged and restarted with capped backoff. ``daemon`` is the
    running daemon.
    """


@hookspec
def register_routes(
    register: Callable[[str, str, Callable[["web.Request"], Awaitable["web.StreamResponse"]]], None],
    daemon: "Daemon",
) -> None:
    """Register HTTP routes on the daemon's aiohttp server.

    Call ``register(method, path, handler)`` with an aiohttp handler; prefer paths
    under ``/plugins/<name>/`` (a HeyGen webhook, Slack events). ``daemon`` is the
    running daemon.
    """


@hookspec
def startup(daemon: "Daemon") -> Awaitable[None] | None:
    """Do one-off start work after the store is open and registries are built.

    Validate your settings here (raise ``ConfigError``); you may return an
    awaitable, which the daemon awaits before services start. ``daemon`` is the
    running daemon.
    """


@hookspec
def publish(video: dict, platforms: list[str], daemon: "Daemon") -> Awaitable[None] | None:
    """Post a finished campaign video to social platforms (the campaign's ``auto_post``).

    ``video`` is the finished job as a dict (``id``, ``title``, ``format``, ``result``
    with the ``video``, ``thumbnail`` and ``srt`` paths); ``platforms`` lists the names
    asked for (tiktok, instagram, youtube). No built-in plugin implements this yet; when
    none does, the daemon says so once per campaign and keeps the files. You may return
    an awaitable. ``daemon`` gives settings.
    """


def _public_hooks() -> list[str]:
    return [name for name, value in globals().items() if hasattr(value, "avatar_daemon_spec")]


HOOK_NAMES: list[str] = _public_hooks()
