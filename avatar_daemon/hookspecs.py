"""avatar-daemon's plugin contract: the one page a plugin author reads.

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

The page has three parts: the hooks; the Protocols that the objects you register
satisfy (what you register); and ``Host``, what a plugin may use of the ``daemon``
every hook is handed.

Rules:

* Accept only the parameters you need; new parameters may be added, never removed.
* Registration hooks run once, synchronously, while the daemon starts; the objects
  you register do the asynchronous work.
* Names are global: two plugins registering the same name is an error naming both.
* Import from ``avatar_daemon`` only what its ``__all__`` lists, and use of ``daemon``
  only what ``Host`` declares.
* Optional members are small Protocols of their own (``DrawsPreviews``, ``FetchesLive``
  ...). Leave one out and the core asks ``isinstance(obj, TheProtocol)``, finds it
  missing, and does what that Protocol's docstring says it does without it; it never
  probes for a member this page does not declare.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncContextManager, AsyncIterator, Awaitable, Callable, Mapping, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from .models import (
        AvatarProfile, Figures, FormatSpec, JobEvent, MouthPlace, Notice, Posted, PublishOptions, PublishVideo,
        RemoteWait, RenderRequest, RenderResult, Research, Script, VideoTemplate,
    )
    from .findings import Finding
    from .store import Job, ResearchJob

hookspec = pluggy.HookspecMarker("avatar_daemon")
hookimpl = pluggy.HookimplMarker("avatar_daemon")


# ---- the hooks: what the daemon reads, writes, renders and tells ----------------


@hookspec
def register_sources(register: Callable[["ResearchSource"], None], daemon: "Host") -> None:
    """Register research sources, which turn a dropped or fetched payload into Research.

    ``register``: call ``register(source)`` once per ``ResearchSource`` (and ``FetchesLive`` where it can).
    ``daemon``: the ``Host``; read your settings with ``daemon.plugin_config(name)``.

    Every source is asked to ``detect`` a payload; the highest score wins, and a request
    envelope's ``"source"`` overrides.
    """


@hookspec
def register_script_writers(register: Callable[["ScriptWriter"], None], daemon: "Host") -> None:
    """Register script writers, which turn Research into a spoken Script.

    ``register``: call ``register(writer)`` once per ``ScriptWriter``.
    ``daemon``: the ``Host``; settings, script templates, and the other writers by name.

    Which writer runs is chosen by the request envelope's ``writer``, the campaign's, the
    script template's, else daemon.yaml's ``script.writer``.
    """


@hookspec
def register_renderers(register: Callable[["Renderer"], None], daemon: "Host") -> None:
    """Register renderers, which turn a RenderRequest into a video.

    ``register``: call ``register(renderer)`` once per ``Renderer`` (with its optional members:
    ``DrawsPreviews``, ``DryRuns``, ``SyncsCatalogue``, ``CountsApiCalls``, ``HasOwnTimeout``,
    ``DrawsLogos``, ``ChecksPhotos``).
    ``daemon``: the ``Host``; settings, the avatar profiles, the store for remote ids and usage.
    """


@hookspec
def register_formats(register: Callable[["FormatSpec"], None], daemon: "Host") -> None:
    """Register output formats such as tiktok, youtube or square.

    ``register``: call ``register(FormatSpec(...))``: name, label, width, height, fps, voice speed,
    caption style, max duration and deliverables.
    ``daemon``: the ``Host``, for settings.
    """


@hookspec
def register_notifiers(register: Callable[["Notifier"], None], daemon: "Host") -> None:
    """Register notifiers, which hear every job event (and, with ``TakesNotices``, the rest).

    ``register``: call ``register(notifier)`` once per ``Notifier``.
    ``daemon``: the ``Host``; read your settings with ``daemon.plugin_config(name)``.

    A notifier that raises is logged and never stops a job.
    """


@hookspec
def register_notify_targets(register: Callable[["NotifyTarget"], None], daemon: "Host") -> None:
    """Claim a key under a campaign's ``notify``: the settings your plugin reads there.

    ``register``: call ``register(target)`` once per ``NotifyTarget`` (its ``name`` is the key,
    its ``model`` what the value must be, e.g. ``notify: {slack: {channel: "#ai-videos"}}``).
    ``daemon``: the ``Host``, not yet started.

    Claim the key whether or not your plugin is switched on, so campaign files that name it
    load either way. A campaign whose ``notify`` has a key no plugin claims is refused
    (``ConfigError`` with ``file:line`` and the claimed keys); a value its ``model`` refuses
    is refused the same way (a key you renamed keeps loading with ``KeepsOldNotifyKeys``). The
    campaign's ``notify`` reaches notifiers as ``notice.data["notify"]`` and services as
    ``daemon.campaigns.by_id(id).notify``.
    """


# ---- long-running parts and entry points ---------------------------------------


@hookspec
def register_services(register: Callable[["Service"], None], daemon: "Host") -> None:
    """Register long-running services, such as a chat connection.

    ``register``: call ``register(service)`` once per ``Service``.
    ``daemon``: the ``Host``, not yet started (``store``, ``http`` and ``bus`` come later).

    A service that crashes is logged and restarted with capped backoff.
    """


@hookspec
def register_routes(
    register: Callable[[str, str, Callable[["web.Request"], Awaitable["web.StreamResponse"]]], None],
    daemon: "Host",
) -> None:
    """Register HTTP routes on the daemon's aiohttp server (a HeyGen webhook, Slack events).

    ``register``: call ``register(method, path, handler)`` with an aiohttp handler; prefer paths
    under ``/plugins/<name>/``.
    ``daemon``: the ``Host``, not yet started.
    """


@hookspec
def startup(daemon: "Host") -> Awaitable[None] | None:
    """Do one-off start work after the store is open and registries are built.

    ``daemon``: the started ``Host``. Validate your settings here (raise ``ConfigError``); you
    may return an awaitable, which the daemon awaits before services start.
    """


@hookspec
def register_publishers(register: Callable[["Publisher"], None], daemon: "Host") -> None:
    """Register publishers: each posts finished videos to one platform and reads their figures back.

    ``register``: call ``register(publisher)`` with an object satisfying ``Publisher``.
    ``daemon``: the ``Host``, not yet started.

    The core keeps the record (one publication per video, platform and account, never posted
    twice), the queue, the retries and the waiting on quotas; a publisher does one platform's
    upload, resumably.
    """


@hookspec
def register_checks(register: Callable[["Check"], None], daemon: "Host") -> None:
    """Register what ``avatar-daemon doctor`` should try for your plugin (a key, a voice, a program).

    ``register``: call ``register(check)`` with an object satisfying ``Check``.
    ``daemon``: the ``Host``, not started: the doctor runs without the store.
    """


# ---- what you register ------------------------------------------------------------


@runtime_checkable
class ResearchSource(Protocol):
    """Turns a dropped payload into Research."""

    name: str

    def detect(self, payload: Any, filename: str) -> float:
        """0.0 = not mine, 1.0 = certainly mine; the highest score wins.

        ``payload`` is parsed JSON, an ``xml.etree.ElementTree.Element`` for XML, or a ``str``
        for .txt/.md files.
        """

    def extract(self, payload: Any) -> "Research":
        """Insights ranked best first; raise ResearchError with a sentence when nothing is usable."""


@runtime_checkable
class FetchesLive(Protocol):
    """Optional for a ResearchSource: pull fresh research live, for a campaign's ``fetch:``.

    Left out: a campaign that asks this source to fetch is refused when it loads, naming the
    line, and the source serves only dropped files.
    """

    async def fetch(self, query: dict[str, Any], http: "aiohttp.ClientSession") -> "Research":
        """``query`` is the campaign's ``fetch:`` mapping; raise ResearchError with a sentence."""


class ScriptLimits(Protocol):
    """What a script must fit: the target format's length and voice, and the voice's language."""

    max_seconds: float
    voice_speed: float
    language: str


@runtime_checkable
class ScriptWriter(Protocol):
    """Turns Research into a spoken Script."""

    name: str

    def write(self, research: "Research", template: str, limits: ScriptLimits) -> "Script":
        """Always called in a worker thread, so it may wait on the network (bounded by its own timeout).

        ``template`` names a script template (usually the source's name).
        """


class Progress(Protocol):
    """What a renderer reports through while it works."""

    def __call__(self, percent: float, message: str) -> None:
        """Thread-safe, cheap, callable as often as you like."""

    async def submitting(self, message: str) -> None:
        """Persist `submitting` before a paid remote create, so a crash can never lose track of it."""

    async def submitted(self, external_id: str, **data: Any) -> None:
        """Persist the remote id(s) the moment they are known: after a crash the job comes back with
        ``request.external_id`` set, to resume rather than pay twice."""


@runtime_checkable
class Renderer(Protocol):
    """Turns a RenderRequest into a video."""

    name: str
    max_concurrency: int
    """Jobs it may run at once."""

    async def render(self, request: "RenderRequest", progress: Progress) -> "RenderResult":
        """Raise RenderError with a user-facing sentence on failure; leave no partial file posing as a result."""

    def list_avatars(self) -> list["AvatarProfile"]:
        """The profiles this renderer can draw, with a remote catalogue's preview URLs where it has one."""


@runtime_checkable
class DrawsPreviews(Protocol):
    """Optional for a Renderer: draw an avatar's still and short clip for pickers.

    Left out: pickers show only remote catalogues' images, and ``avatars --previews`` refuses.
    """

    def preview(self, avatar: "AvatarProfile", out_dir: Path) -> list[Path]:
        """Write ``<avatar id>.jpg`` and ``<avatar id>.mp4`` into ``out_dir``; called in a worker thread."""


@runtime_checkable
class DryRuns(Protocol):
    """Optional for a Renderer that sends requests somewhere. Left out: ``render --dry-run`` refuses."""

    async def dry_run(self, request: "RenderRequest") -> list[dict[str, Any]]:
        """The requests it would send, one dict each; nothing sent, nothing stored."""


@runtime_checkable
class SyncsCatalogue(Protocol):
    """Optional for a Renderer with a remote catalogue. Left out: ``avatars --sync`` skips it."""

    async def sync_catalogue(self) -> list[str]:
        """Check every profile against the catalogue; one sentence per problem found."""


@runtime_checkable
class CountsApiCalls(Protocol):
    """Optional for a Renderer that calls an API. Left out: /metrics has no API-call counts for it."""

    def api_calls(self) -> dict[tuple[str, str], int]:
        """Calls so far by (endpoint, outcome)."""


@runtime_checkable
class HasOwnTimeout(Protocol):
    """Optional for a Renderer that waits on a remote queue. Left out: daemon.yaml's jobs.timeout_seconds.

    For a renderer that ``WaitsRemotely`` the time runs from the submit, across every check."""

    timeout_seconds: float


@runtime_checkable
class DrawsLogos(Protocol):
    """Optional for a Renderer that draws a request's own logo (``brand_logo``) in the brand corner.

    Left out: a request with one is refused before it is queued, naming the renderer, rather than
    made without the logo the caller asked for.
    """

    draws_logos: bool


@runtime_checkable
class ChecksPhotos(Protocol):
    """Optional for a Renderer that animates a talking photo itself: it looks at the photo when the
    request arrives, so a photo it cannot use is refused (HTTP 422, the inbox's failed/, the command
    line) naming the field and the reason, before anything is queued.

    Left out: the photo is taken as it is, and one the renderer cannot use fails its job at render.
    """

    def check_photo(self, path: Path, mouth: "MouthPlace | None") -> None:
        """Raise RenderError with the reason (no face found, a part not installed); called in a worker
        thread with the request's photo (``mouth`` None), else a talking-photo profile's photo and its
        ``mouth:``."""


@runtime_checkable
class WaitsRemotely(Protocol):
    """Optional for a Renderer whose service works for long after a create call (HeyGen: minutes to hours).

    With it a job holds a local slot only while ``submit`` runs. Then it waits in the state
    ``waiting_remote`` holding no slot and no node, so ``max_concurrency`` more jobs can start
    meanwhile; when a check is due, any node sharing the database claims the job (a short
    lease, fenced like a render) and calls ``check`` once. ``HostJobs.check_remote_now`` (a
    webhook) makes the check due at once, on whichever node claims it first.

    Left out: the core calls ``render``, which holds its slot from start to end, as today.
    ``render`` is still what the command line's ``render`` runs, in one process.
    """

    async def submit(self, request: "RenderRequest", progress: Progress) -> "RemoteWait":
        """Everything up to the remote id saved with ``progress.submitted``: plan, upload, create, or
        resume when ``request.external_id`` is set (after a crash). When to make the first check.
        Raise RenderError as ``render`` does."""

    async def check(self, request: "RenderRequest", progress: Progress, waited: float,
                    ) -> "RenderResult | RemoteWait":
        """Look once at the remote render of ``request.external_id``, ``waited`` seconds after it was
        submitted; may run on any node, in any process. Finished: deliver it (download into
        ``request.output_dir``) and return the RenderResult. Not yet: a RemoteWait saying when to look
        again (the renderer's own backoff). Failed remotely: raise RenderError with the service's reason;
        TimeoutError past a deadline of its own."""


@runtime_checkable
class Notifier(Protocol):
    """Hears every job event."""

    name: str

    async def notify(self, event: "JobEvent") -> None: ...


@runtime_checkable
class TakesNotices(Protocol):
    """Optional for a Notifier: hear events that are not a job's. Left out: it hears only job events."""

    async def notice(self, notice: "Notice") -> None:
        """A campaign ran, a campaign file is invalid...; a campaign's own targets are in
        ``notice.data["notify"]``."""


@runtime_checkable
class NotifyTarget(Protocol):
    """A key under a campaign's ``notify`` and what its value must be."""

    name: str
    model: Any  # a pydantic model, or any type pydantic validates (``str | None``)


@runtime_checkable
class KeepsOldNotifyKeys(Protocol):
    """Optional for a NotifyTarget whose setting was once a ``notify`` key of its own. Left out: an
    old key is refused like any key no plugin claims."""

    old_keys: dict[str, str]
    """Old ``notify`` key -> the field of this target's value it becomes, e.g. ``{"slack_channel": "channel"}``;
    a file that uses one still loads, with a deprecation line in the log naming ``file:line``."""


@runtime_checkable
class Service(Protocol):
    """A long-running part, such as a chat connection."""

    name: str

    async def run(self, daemon: "Host") -> None:
        """Run until cancelled; release what you hold in ``finally``."""


class Account(Protocol):
    """A platform account the daemon may post to, from daemon.yaml's ``publishing.accounts``."""

    name: str
    """Its key in daemon.yaml (``acme-shorts``); publications and ``avatar-daemon accounts`` name it."""

    platform: str
    settings: dict[str, Any]
    """Its non-secret settings (a channel or Instagram user id...), as the publisher documents them."""

    def secret(self, key: str) -> str:
        """A credential (``client_id``, ``client_secret``, ``refresh_token``...) from the environment or
        systemd credentials; ConfigError naming where it was looked for when it is missing. Never log it."""


class Upload(Protocol):
    """One publication in progress, handed to ``Publisher.publish``: what to post and where it got to."""

    publication_id: int
    video: "PublishVideo"
    account: Account
    options: "PublishOptions"
    state: dict[str, Any]
    """What ``save`` stored on earlier attempts (``{}`` the first time): resume from it."""

    async def save(self, stage: str | None = None, **facts: Any) -> None:
        """Persist facts the moment they are known (a session URI, a confirmed offset, the platform's
        id), merged into ``state``; ``stage`` is ``uploading`` or ``processing``. Raises if this
        node no longer owns the publication: stop then, the new owner carries on."""

    def progress(self, percent: float, message: str) -> None:
        """Report progress (cheap, as often as you like): events, Slack and the studio show it."""

    def read(self, first: int, end: int, piece: int = 1024 * 1024,
             sending_to: str | None = None) -> AsyncIterator[bytes]:
        """Bytes ``first`` up to ``end`` of the video file, ``piece`` bytes at a time, read off the event
        loop (a slow disk must not stall the daemon); ``PublishError`` when the file ends early. With
        ``sending_to`` (a platform's name) each piece also reports progress, the upload being the
        first 90% of the publication's bar."""


@runtime_checkable
class Publisher(Protocol):
    """Posts a finished video to one platform, resumably, and reads its figures back."""

    name: str
    """The platform: ``youtube``, ``tiktok``, ``instagram``."""

    async def publish(self, upload: Upload, http: "aiohttp.ClientSession") -> "Posted":
        """See ``upload.video`` through to published on ``upload.account``.

        Resume from ``upload.state`` and ``save`` as you go: after a crash the publication comes
        back with what you saved, and one the platform may already hold must be looked up there
        before anything is posted again. Raise ``QuotaWait`` at a platform limit (the publication
        waits, it does not fail) and ``PublishError`` with the platform's reason to fail it; raise
        ``TryAgain`` for a transient failure (a 5xx, a dropped connection) to be retried later.
        """

    async def check(self, account: Account, http: "aiohttp.ClientSession") -> str:
        """One sentence on what the credentials reach (``channel "Acme" (UC123)``), for
        ``avatar-daemon accounts``; raise PublishError saying why when they don't work."""

    async def figures(self, account: Account, remote_ids: list[str],
                      http: "aiohttp.ClientSession") -> dict[str, "Figures"]:
        """Views, likes and comments now for these posts of ``account``; leave out ids the platform
        no longer knows. Called on a schedule for published videos, into the analytics store."""


@runtime_checkable
class Check(Protocol):
    """Something ``avatar-daemon doctor`` tries for real: call the API with the key, load the voice."""

    name: str

    async def run(self, http: "aiohttp.ClientSession") -> list["Finding"]:
        """One ``Finding`` per thing tried (``Finding.ok/fail/skip(check, detail)``), saying what to do
        when it fails; ``skip`` what is not configured. Don't raise: an exception is printed as a failure."""


# ---- what a plugin may use of the daemon -----------------------------------------


class Host(Protocol):
    """The ``daemon`` every hook is handed: what a plugin may use of it, and nothing else.

    The running daemon has more; anything not listed here may change without notice.
    ``store``, ``http``, ``bus``, ``jobs``, ``videos``, ``campaigns`` and ``publishing`` exist once
    the daemon has started (from ``startup`` on, in a service's ``run``, in a route's handler); at
    registration time they may be None, so keep ``daemon`` and reach them when you need them.
    """

    clock: Callable[[], datetime]
    """The daemon's clock (timezone-aware UTC). Tests inject one; use it, not ``datetime.now()``."""

    node_id: str
    """This daemon's id among several sharing one database (the ``node_id`` on job events)."""

    http: "aiohttp.ClientSession | None"
    """The shared HTTP client (60 s total, 10 s connect), for calls to outside services."""

    http_ready: asyncio.Event
    """Set once the daemon's HTTP server is listening, for a plugin that registers a public callback."""

    plugin_objects: dict[Any, Any]
    """Objects plugins keep for this daemon; use ``avatar_daemon.per_daemon`` rather than this directly."""

    settings: "HostSettings"
    store: "HostStore"
    videos: "HostVideos"
    jobs: "HostJobs"
    previews: "HostPreviews"
    bus: "HostBus"
    campaigns: "HostCampaigns"
    publishing: "HostPublishing"

    def plugin_config(self, name: str) -> dict[str, Any]:
        """Your settings: daemon.yaml's ``plugins.settings.<name>`` (``{}`` when absent)."""

    def script_writer(self, name: str | None = None) -> "ScriptWriter":
        """A registered script writer by name (UnknownNameError naming the known ones), else the default."""


class HostSettings(Protocol):
    """The daemon's own settings a plugin may read."""

    avatars: Mapping[str, "AvatarProfile"]
    """Every avatar profile (avatars.yaml), by id."""

    templates: Mapping[str, "VideoTemplate"]
    """Video templates (templates.yaml ``templates``: look, brand, music), by id."""

    script_templates: Mapping[str, Any]
    """Script templates (templates.yaml ``script_templates``), by name: ``ScriptTemplate`` objects."""

    data_dir: Path
    """Where a plugin may keep files of its own (a catalogue cache), in a file named for the plugin."""

    config_path: Path | None
    """daemon.yaml's path, for error messages that say where a setting lives; None when built in code."""

    http: Any
    """The HTTP server's settings; ``http.enabled`` says whether the daemon serves HTTP at all."""


class HostStore(Protocol):
    """The store's few methods a plugin needs: read jobs, keep small state of its own, count paid usage."""

    async def job(self, job_id: int) -> "Job | None": ...

    async def jobs_page(self, workspace: str | None, status: str | None = None, limit: int = 50) -> list["Job"]:
        """A workspace's newest jobs first."""

    async def research_job(self, research_id: int) -> "ResearchJob | None": ...

    async def research_page(self, workspace: str | None, limit: int = 20, with_insights: bool = False,
                            before: int | None = None) -> list["ResearchJob"]:
        """Recent research a workspace may use: shared research (inbox, campaigns) and its own, newest
        first, ids below `before`; `with_insights` keeps only research a card or script can be made from."""

    async def events(self, job_id: int) -> list["JobEvent"]:
        """A job's persisted events, oldest first."""

    async def get_meta(self, key: str) -> str | None:
        """Small state a plugin keeps across restarts; prefix keys with your plugin's name."""

    async def set_meta(self, key: str, value: str) -> None: ...

    async def instance_id(self) -> str:
        """A random id made once per database, for remote idempotency keys that must not collide."""

    async def usage(self, renderer: str, since: datetime, campaign_id: int | None = None,
                    exclude_job: int | None = None) -> tuple[int, float]:
        """(renders, seconds) a paid renderer counted since a time, overall or for one campaign."""

    async def record_usage(self, job_id: int, renderer: str, seconds: float, campaign_id: int | None) -> bool:
        """Count one paid render; False when the job was counted already (a resubmit after a crash)."""


class HostVideos(Protocol):
    """Videos people ask for (chat, HTTP): the one way to queue them, with the same checks everywhere.

    A ``who`` is a caller from ``caller()``; names it cannot use raise InvalidRequest or
    PermissionError with a sentence, before anything is queued.
    """

    def caller(self, workspace: str | None, user: str | None, name: str | None = None) -> Any:
        """A chat user as a caller: their tier from users.yaml, their workspace's videos."""

    def defaults(self, workspace: str | None, user: str | None) -> tuple[str | None, str]:
        """(avatar, format) for a one-line request: the user's, the workspace's, else the daemon's."""

    def check(self, who: Any, avatar: str, format_name: str, renderer: str | None, template: str | None) -> None: ...

    async def from_script(self, title: str, text: str, *, who: Any, avatar: str, format_name: str,
                          renderer: str | None = None, template: str | None = None,
                          settings: dict[str, Any] | None = None, key: str | None = None) -> tuple[list["Job"], bool]:
        """(jobs, created): the same ``key`` (a chat trigger id) finds the first request's jobs."""

    async def from_research(self, research_id: int, *, who: Any, avatar: str, format_name: str,
                            renderer: str | None = None, template: str | None = None,
                            settings: dict[str, Any] | None = None, title: str | None = None) -> list["Job"]: ...


class HostJobs(Protocol):
    async def retry(self, job_id: int, who: Any = None) -> "Job":
        """Queue an ended job again; ``who`` must be allowed to see it."""

    async def check_remote_now(self, renderer: str, remote_id: str) -> list[int]:
        """The job(s) of ``renderer`` whose remote id is ``remote_id`` are checked at once, by the first
        node to claim them (a webhook says the remote render changed); their ids, [] when none waits."""

    async def script_for(self, job: "Job") -> "Script | None":
        """The script a job speaks."""


class HostPreviews(Protocol):
    """Avatar preview images and clips, drawn by a renderer that can (see ``Renderer.preview``)."""

    def available(self) -> bool: ...

    def urls(self, base: str | None) -> dict[str, tuple[str | None, str | None]]:
        """(image, clip) URL of every profile; ours served under ``base``, None when not reachable."""

    async def warm(self) -> None:
        """Draw every missing preview now, so the first picker to ask finds them ready."""


class HostBus(Protocol):
    def watch(self, job_id: int | None = None) -> "AsyncContextManager[asyncio.Queue[JobEvent]]":
        """Receive every job event (or one job's) published while inside the ``async with``."""


class HostCampaigns(Protocol):
    def by_id(self, campaign_id: int | None) -> Any:
        """The loaded campaign with that stored id, or None."""

    async def rows(self) -> list[dict[str, Any]]:
        """One dict per campaign: name, paused, active, schedule, next_run_at, videos."""

    async def set_paused(self, name: str, paused: bool) -> None: ...

    async def run_now(self, name: str) -> Any:
        """Run a campaign at once; the report's ``message`` says what it made."""


class HostPublishing(Protocol):
    """Posting finished videos: the one way in for every trigger (HTTP, Slack, the studio, the CLI).

    A publication is one video on one platform account, never posted twice: asking again
    returns the row there is (a failed one is queued again). Its dict is ``id``, ``job_id``,
    ``platform``, ``account``, ``state`` (pending, uploading, processing, published, failed),
    ``percent``, ``remote_id``, ``url``, ``error``, ``message``, ``not_before`` (waiting on a
    quota or a retry until then), ``requested_by``, ``created_at``, ``updated_at``, ``published_at``.

    Its changes are job events on the video's job with ``JobEvent.publication`` set to that
    dict (``state`` is ``completed``, the job's own, which did not change): queued, each stage,
    progress (``publication["percent"]``), waiting, published (with ``url``) and failed (with
    ``error``). A consumer of job states skips events whose ``publication`` is set.
    """

    def platforms(self) -> dict[str, list[str]]:
        """Platform -> its configured account names, for each platform a publisher is registered for
        and that has an account (what a "Publish to..." menu offers)."""

    async def request(self, job_id: int, platforms: list[str], *, accounts: list[str] | None = None,
                      options: dict[str, Any] | None = None, by: str) -> list[dict[str, Any]]:
        """Queue the video on each platform: the named ``accounts`` of it, else its default account.

        ``options`` is a ``PublishOptions`` dict (privacy, made_for_kids, category...), over the
        campaign's and the template's. ``by`` says who asked (``slack:U123``, ``api:alice``).
        One dict per publication. Refuses with a sentence, before anything is queued: an unknown
        video (UnknownNameError), an unfinished one (InvalidRequest), a platform no publisher
        handles or an account not configured (UnknownNameError), bad options (InvalidRequest).
        """

    async def for_video(self, job_id: int) -> list[dict[str, Any]]:
        """The video's publications, oldest first."""


def _public_hooks() -> list[str]:
    return [name for name, value in globals().items() if hasattr(value, "avatar_daemon_spec")]


HOOK_NAMES: list[str] = _public_hooks()
