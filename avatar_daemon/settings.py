"""Daemon settings: config/daemon.yaml, the files it names, and environment overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator

from .errors import ConfigError
from .models import AvatarProfile, Strict, Tier, VideoTemplate
from .store.contract import is_postgres, sqlite_path
from .yamlfile import YamlDocument

DEFAULTS = Path(__file__).parent / "defaults"
ENV_PREFIX = "AVATAR_DAEMON__"


class InboxSettings(Strict):
    path: Path = Path("inbox")
    max_file_bytes: int = 20 * 1024 * 1024
    settle_seconds: float = 0.3
    workers: int = 8
    # Poll the folder instead of waiting for the OS to say it changed: a folder on NFS or SMB that
    # several daemons share needs it, since inotify never hears of other machines' writes.
    force_polling: bool = False
    poll_ms: int = Field(500, ge=50)


class JobSettings(Strict):
    timeout_seconds: float = 1800.0
    output_dir: Path = Path("var/videos")
    # The seed's weekly clean-up: files of videos that ended longer ago than this are deleted.
    retention_days: float | None = None
    # A claimed job is this node's for this long, renewed by heartbeat while it runs: a node that
    # dies loses its jobs to the others when it runs out.
    lease_seconds: float = Field(60.0, ge=1)


class HttpSettings(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8008
    # Web pages served from these origins may call the API (CORS); none by default.
    cors_origins: list[Annotated[str, Field(pattern=r"^https?://[^/\s]+$")]] = Field(default_factory=list)
    session_hours: float = Field(12.0, gt=0, description="how long a browser stays signed in")


class MediaSettings(Strict):
    """Media a request names by URL: fetched once when the request arrives, never by a render.

    A URL must use one of `schemes` and every address it resolves to (and every redirect's)
    must be public: loopback, private, link-local, multicast, reserved and cloud-metadata
    addresses are refused unless a network is listed in `allow_networks` (an intranet media
    host; the tests' 127.0.0.1).
    """

    max_bytes: int = Field(100 * 1024 * 1024, ge=1)
    max_pixels: int = Field(50_000_000, ge=1, description="an image's width times height")
    timeout_seconds: float = Field(30.0, gt=0)
    max_redirects: int = Field(3, ge=0, le=10)
    schemes: list[Literal["https", "http"]] = Field(default_factory=lambda: ["https"], min_length=1)
    allow_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    concurrency: int = Field(4, ge=1, description="fetches in flight at once")


class AccountSettings(BaseModel):
    """One platform account (daemon.yaml `publishing.accounts.<name>`): its platform, whether it is the
    platform's default, and the non-secret settings its publisher documents (a channel id...)."""

    model_config = ConfigDict(extra="allow")

    platform: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    default: bool = False


class PublishingSettings(Strict):
    """Where finished videos may be posted, and how often their platform figures are read back."""

    accounts: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], AccountSettings] = Field(
        default_factory=dict)
    figures_hours: float = Field(6.0, gt=0, description="how often views, likes and comments are fetched")
    poll_seconds: float = Field(5.0, gt=0, description="how often a node looks for due publications")
    concurrency: int = Field(2, ge=1, description="publications a node uploads at once")
    max_failures: int = Field(8, ge=1, description="transient failures in a row before a publication fails")
    retry_seconds: float = Field(30.0, gt=0, description="the first wait after a transient failure; it doubles")


class PluginSettings(Strict):
    disabled: list[str] = Field(default_factory=list)
    only: list[str] | None = None
    plugins_dir: Path | None = None
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Settings(Strict):
    """Everything the daemon reads at start. Relative paths are relative to daemon.yaml."""

    data_dir: Path = Path("var")
    # This daemon's name among several sharing one database; by default the host name and a random
    # suffix, made once and kept in data_dir/node-id. Also the name of its inbox processing folder.
    node_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    # A SQLite file (a path or sqlite:///path) for one daemon, or postgresql://user@host/dbname for several.
    database: Path | str = Path("var/avatar-daemon.sqlite3")
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    publishing: PublishingSettings = Field(default_factory=PublishingSettings)
    # Local callers (the CLI, inbox files, templates) may name media files only in here or in the inbox.
    assets_dir: Path = Path("assets")
    default_renderer: str = "local"
    default_formats: list[str] = Field(default_factory=lambda: ["tiktok"])
    default_avatar: str = "sarah"
    default_template: str | None = None
    notifiers: list[str] = Field(default_factory=lambda: ["log"])
    avatars_file: Path = Path("avatars.yaml")
    templates_file: Path = Path("templates.yaml")
    users_file: Path = Path("users.yaml")
    campaigns_dir: Path = Path("campaigns")
    watchdog_seconds: float | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # `json`: one JSON object per line, for a log shipper (Loki, Vector, the ELK stack).
    log_format: Literal["text", "json"] = "text"

    # Filled by load(): where the file was, and the catalogues it names.
    config_path: Path | None = None
    avatars: dict[str, AvatarProfile] = Field(default_factory=dict)
    templates: dict[str, VideoTemplate] = Field(default_factory=dict)
    script_templates: dict[str, "ScriptTemplate"] = Field(default_factory=dict)
    users: "UsersFile" = Field(default_factory=lambda: UsersFile())

    def plugin_config(self, name: str) -> dict[str, Any]:
        return dict(self.plugins.settings.get(name, {}))

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, v: Any) -> Any:
        if isinstance(v, str) and is_postgres(v):
            return v
        if isinstance(v, str) and "://" in v and not v.startswith("sqlite:///"):
            raise ValueError(f"{v.split('://')[0]}:// is not a database this daemon knows: use a SQLite path "
                             "(or sqlite:///path) or postgresql://user@host/dbname")
        return sqlite_path(v) if isinstance(v, str) else v


class ScriptTemplate(Strict):
    """Per-source script template of the template writer (the seed's shape).

    `intro` and `outro` may list several lines: one is chosen per research, so a campaign's
    daily videos don't all open the same way. `facts` follows each item with its own figures.
    """

    title: str = "{topic}: what's trending"
    intro: str | list[str] = "Here is what {source_label} is talking about: {topic}."
    item: str = "Number {n}: {text}."
    facts: str = ""
    outro: str | list[str] = "That's the roundup. Follow for more."
    min_chars: int = Field(150, validation_alias=AliasChoices("min_content_length", "min_chars"))
    max_chars: int = Field(1800, validation_alias=AliasChoices("max_content_length", "max_chars"))
    max_items: int = 5
    description: str = ""
    hashtags: list[str] = Field(default_factory=list)
    writer: str | None = None  # e.g. "llm"; None: daemon.yaml's script.writer


class ApiToken(Strict):
    name: str
    sha256: str
    workspace: str
    user: str
    tier: Tier = "free"
    admin: bool = False          # sees and acts on every video, including the inbox's and campaigns'
    campaigns: bool = False      # may create, change and run campaigns


class VideoDefaults(Strict):
    """What a one-line request (`/avatar-video <script>`) is made with."""

    avatar: str | None = None
    format: str | None = None


class Workspace(Strict):
    tier: Tier = "free"
    users: dict[str, Tier] = Field(default_factory=dict)
    defaults: VideoDefaults = Field(default_factory=VideoDefaults)
    user_defaults: dict[str, VideoDefaults] = Field(default_factory=dict)


class UsersFile(Strict):
    default_tier: Tier = "free"
    workspaces: dict[str, Workspace] = Field(default_factory=dict)
    api_tokens: list[ApiToken] = Field(default_factory=list)


class AvatarsFile(Strict):
    avatars: list[AvatarProfile]


class TemplatesFile(Strict):
    video_templates: list[VideoTemplate] = Field(default_factory=list)
    script_templates: dict[str, ScriptTemplate] = Field(default_factory=dict)


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> None:
    """`AVATAR_DAEMON__inbox__max_file_bytes=1000` overrides inbox.max_file_bytes."""
    shortcuts = {
        "AVATAR_DAEMON_INBOX": ("inbox", "path"),
        "AVATAR_DAEMON_DATA_DIR": ("data_dir",),
        "AVATAR_DAEMON_DATABASE": ("database",),
        "AVATAR_DAEMON_NODE_ID": ("node_id",),
        "AVATAR_DAEMON_RENDERER": ("default_renderer",),
        "AVATAR_VIDEO_HOST": ("http", "host"),
        "AVATAR_VIDEO_PORT": ("http", "port"),
    }
    overrides = [(path, environ[k]) for k, path in shortcuts.items() if k in environ]
    overrides += [
        (tuple(k[len(ENV_PREFIX):].lower().split("__")), v) for k, v in environ.items() if k.startswith(ENV_PREFIX)
    ]
    for path, raw in overrides:
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError([f"environment: {'.'.join(path)}: {key} is not a section"])
        node[path[-1]] = yaml.safe_load(raw) if raw else raw


def _resolve(base: Path, p: Path | None) -> Path | None:
    if p is None:
        return None
    p = p.expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read daemon.yaml and its companions; missing files fall back to the packaged defaults.

    Only the default config/daemon.yaml may be missing: a file someone named (`path`, or
    AVATAR_DAEMON_CONFIG) that is not there is an error, never a quiet run on the defaults.
    Every problem across all files is gathered before raising, so `check` can list them all.
    """
    environ = dict(os.environ if environ is None else environ)
    from_env = path is None and bool(environ.get("AVATAR_DAEMON_CONFIG"))
    named = path is not None or from_env
    path = path or Path(environ.get("AVATAR_DAEMON_CONFIG") or "config/daemon.yaml")
    if named and not path.is_file():
        where = " (from AVATAR_DAEMON_CONFIG)" if from_env else ""
        raise ConfigError([f"{path}{where}: no such configuration file" if not path.exists()
                           else f"{path}{where}: the configuration is not a file"])
    problems: list[str] = []
    if path.exists():
        doc = YamlDocument.load(path)
        data = doc.data if isinstance(doc.data, dict) else {}
        if not isinstance(doc.data, dict):
            problems.append(f"{path}:1: expected a mapping of settings, found {type(doc.data).__name__}")
        base = path.parent.resolve()
    else:
        doc, data, base = None, {}, Path.cwd()
    _apply_env(data, environ)
    try:
        settings = (doc.validate(Settings, data) if doc else Settings.model_validate(data))
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    settings.config_path = path if path.exists() else None
    settings.data_dir = _resolve(base, settings.data_dir)
    if isinstance(settings.database, Path):
        settings.database = _resolve(base, settings.database)
    settings.inbox.path = _resolve(base, settings.inbox.path)
    settings.jobs.output_dir = _resolve(base, settings.jobs.output_dir)
    settings.plugins.plugins_dir = _resolve(base, settings.plugins.plugins_dir)
    settings.campaigns_dir = _resolve(base, settings.campaigns_dir)
    settings.assets_dir = _resolve(base, settings.assets_dir)

    def companion(name: Path) -> Path:
        own = _resolve(base, name)
        return own if own.exists() else DEFAULTS / name.name

    for attr, model, apply in (
        ("avatars_file", AvatarsFile, lambda f: setattr(settings, "avatars", {a.id: a for a in f.avatars})),
        ("templates_file", TemplatesFile, lambda f: (
            setattr(settings, "templates", {t.id: t for t in f.video_templates}),
            setattr(settings, "script_templates", f.script_templates))),
        ("users_file", UsersFile, lambda f: setattr(settings, "users", f)),
    ):
        file = companion(getattr(settings, attr))
        setattr(settings, attr, file)
        if not file.exists():
            continue
        try:
            sub = YamlDocument.load(file)
            apply(sub.validate(model))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    for avatar in settings.avatars.values():  # a talking photo's portrait: a file in the assets folder
        if avatar.photo:
            avatar.photo = str(_resolve(settings.assets_dir, Path(avatar.photo)))
    if settings.default_avatar not in settings.avatars and settings.avatars:
        raise ConfigError([f"{path}:1: default_avatar: no avatar profile named {settings.default_avatar!r}"])
    _check_user_defaults(settings)
    return settings


def _check_user_defaults(settings: Settings) -> None:
    """A default avatar in users.yaml must name a profile, or requests would quietly get another."""
    problems = []
    doc = None
    for ws_id, ws in settings.users.workspaces.items():
        places = [(("workspaces", ws_id, "defaults", "avatar"), ws.defaults.avatar)]
        places += [(("workspaces", ws_id, "user_defaults", u, "avatar"), d.avatar) for u, d in ws.user_defaults.items()]
        for loc, avatar in places:
            if avatar and avatar not in settings.avatars:
                doc = doc or YamlDocument.load(settings.users_file)
                problems.append(f"{settings.users_file}:{doc.line_of(loc)}: {'.'.join(loc)}: no avatar profile "
                                f"named {avatar!r}")
    if problems:
        raise ConfigError(problems)


def secret(name: str, environ: dict[str, str] | None = None) -> str | None:
    """A secret from the environment, or from systemd's LoadCredential= directory."""
    environ = os.environ if environ is None else environ
    if environ.get(name):
        return environ[name]
    creds = environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        f = Path(creds) / name
        if f.is_file():
            return f.read_text().strip()
    return None


Settings.model_rebuild()
