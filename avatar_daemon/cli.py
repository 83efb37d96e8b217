"""The `avatar-daemon` command line: the daemon itself and one-shot tools around it.

Start-up matters for a command typed at a shell or run by a timer, so this module imports
only the standard library and the light logging helpers at the top: the daemon, its
models and the plugins are imported by the commands that use them, and `--help`,
`--version`, `schema` and `completion` never load a plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import AvatarDaemonError, ConfigError
from .logs import FORMATS, LEVELS, level_for, redact, setup_logging

if TYPE_CHECKING:
    from .daemon import Daemon
    from .planning import VideoSettings
    from .settings import Settings


def say(text: Any = "", err: bool = False) -> None:
    """Print through the same mask as the logs: a plugin's error or a payload may quote a secret."""
    print(redact(str(text)), file=sys.stderr if err else sys.stdout)


def say_json(data: Any) -> None:
    say(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def settings_for(args: argparse.Namespace) -> "Settings":
    """The settings a command was pointed at (`--config`, $AVATAR_DAEMON_CONFIG or config/daemon.yaml)."""
    from .settings import load_settings

    return load_settings(Path(args.config) if args.config else None)


def daemon_for(args: argparse.Namespace, settings: "Settings | None" = None) -> "Daemon":
    """A daemon for a one-shot command: built, not started (`async with daemon.started()` when the store is needed)."""
    from .daemon import Daemon

    return Daemon(settings or settings_for(args))


def cmd_run(args: argparse.Namespace) -> int:
    from .daemon import Daemon

    settings = settings_for(args)
    setup_logging(level_for(settings.log_level, args.verbose, args.log_level), args.log_format or settings.log_format)
    asyncio.run(Daemon(settings).run())
    return 0


def cmd_script(args: argparse.Namespace) -> int:
    from .planning import VideoSettings, prepare

    daemon = daemon_for(args)
    path = Path(args.file)
    prepared = prepare(daemon.catalogue, _read(path), path.name, path.suffix, VideoSettings(formats=args.format))
    research, script = prepared.research, prepared.script
    if args.json:
        say_json({
            "source": research.source, "title": research.title, "topic": research.topic,
            "insights": [i.model_dump(mode="json", include={"text", "score", "url"}) for i in research.insights],
            "script": script.model_dump(mode="json"),
        })
    else:
        say(f"# {script.title}\n\n{script.text}\n\n({research.source}, about {script.estimated_seconds:.0f} s)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .errors import first_problem
    from .planning import VideoSettings

    settings = settings_for(args)
    if args.out:
        settings.jobs.output_dir = Path(args.out).resolve()
    daemon = daemon_for(args, settings)
    path = Path(args.file)
    from .assets import local_media
    media = asyncio.run(local_media(daemon.media.uploads, daemon.clock().isoformat(), narration=args.narration,
                                    talking_photo=args.photo, brand_logo=args.logo))
    try:
        overrides = VideoSettings(formats=args.format, avatar=args.avatar, renderer=args.renderer, title=args.title,
                                  description=args.description, hashtags=args.hashtag, split=args.split or None,
                                  **media)
    except ValidationError as exc:
        where, reason = first_problem(exc)
        raise AvatarDaemonError(f"--{where.replace('hashtags', 'hashtag').split('.')[0]}: {reason}") from None
    if args.dry_run:
        return asyncio.run(_dry_run(daemon, path, overrides))
    return asyncio.run(_render(daemon, path, overrides, args.json))


async def _dry_run(daemon: "Daemon", path: Path, overrides: "VideoSettings") -> int:
    """Print what the renderer would send, one JSON object per request; nothing is stored or sent."""
    from .hookspecs import DryRuns
    from .planning import check_photo, prepare, request_for
    p = prepare(daemon.catalogue, _read(path), path.name, path.suffix, overrides)
    settings = p.settings.job_settings()
    # --photo, --narration and --logo are uploads already: look them up (a URL is not fetched by a dry run)
    uploads = await daemon.media.settle({k: settings[k] for k in ("narration", "talking_photo", "brand_logo")
                                         if k in settings},
                                        remote=False)
    settings = {**settings, **({"media": uploads["media"]} if "media" in uploads else {})}
    # refused as a real render refuses it, before anything else is said about the renderer
    await check_photo(daemon.catalogue, daemon.media, settings, p.renderer, p.avatar)
    renderer = daemon.renderers[p.renderer]
    if not isinstance(renderer, DryRuns):
        raise AvatarDaemonError(f"renderer {renderer.name!r} sends nothing anywhere, so it has no dry run")
    template = p.settings.template or daemon.settings.default_template
    for fmt, script in p.videos:
        request = request_for(daemon.catalogue, daemon.media, 0, script, p.avatar, fmt, template, settings)
        for sent in await renderer.dry_run(request):
            say(json.dumps(sent, ensure_ascii=False))
    return 0


async def _render(daemon: "Daemon", path: Path, overrides: "VideoSettings", as_json: bool) -> int:
    async with daemon.started():
        ingested = await daemon.pipeline.ingest(_read(path), path.name, path.suffix, overrides=overrides,
                                                fresh_jobs=True)
        say(f"{ingested.source}: {ingested.script.title} (about {ingested.script.estimated_seconds:.0f} s)",
            err=True)
        code, videos = await _run_jobs(daemon, ingested.job_ids, quiet=as_json)
    if as_json:
        say_json({"source": ingested.source, "title": ingested.script.title,
                  "estimated_seconds": round(ingested.script.estimated_seconds, 1), "videos": videos})
    return code


async def _run_jobs(daemon: "Daemon", job_ids: list[int], quiet: bool = False) -> tuple[int, list[dict[str, Any]]]:
    """Render jobs in this process with a progress bar each; prints the MP4 paths last (unless `quiet`).

    Returns the exit code and one row per job, for `--json`.
    """
    from .models import JobState
    from .progressbar import ProgressBar

    rows: list[dict[str, Any]] = []
    for job_id in job_ids:
        job = await daemon.store.claim(job_id)
        if job is None:
            say(f"job {job_id} was taken by a running daemon; see `avatar-daemon videos`", err=True)
            rows.append({"id": job_id, "status": "taken", "video": None, "error": "taken by a running daemon"})
            continue
        bar = ProgressBar(f"job {job_id} {job.format}")
        async with daemon.bus.watch() as events:
            task = asyncio.create_task(daemon.jobs.execute(job))
            while True:
                event = await events.get()
                if event.job_id != job_id:
                    continue
                bar.update(event)
                if event.state.final:
                    break
            result = await task
        done = event.state is JobState.completed and result and result.video
        rows.append({"id": job_id, "format": job.format, "status": event.state.value,
                     "video": str(result.video) if done else None, "error": None if done else event.message})
        if not done:
            say(f"job {job_id} {event.state.value}: {event.message}", err=True)
    if not quiet:
        for row in rows:
            if row["video"]:
                say(row["video"])
    failed = any(not r["video"] and r["status"] != "taken" for r in rows)
    return (1 if failed else 0), rows


def cmd_check(args: argparse.Namespace) -> int:
    from .campaigns.service import load_campaign
    problems: list[str] = []
    try:
        settings = settings_for(args)
    except ConfigError as exc:
        problems.extend(exc.problems)
        settings = None
    if settings is not None:
        daemon = daemon_for(args, settings)
        problems += [f"plugin {p.name}: {p.error}" for p in daemon.plugins if p.error]
        if settings.campaigns_dir.is_dir():
            for f in sorted(settings.campaigns_dir.glob("*.y*ml")):
                try:
                    load_campaign(daemon.catalogue, f)
                except ConfigError as exc:
                    problems.extend(exc.problems)
    if args.json:
        say_json({"ok": not problems, "problems": problems})
    else:
        for p in problems:
            say(p)
        if not problems:
            say("configuration OK")
    return 1 if problems else 0


def cmd_plugins(args: argparse.Namespace) -> int:
    daemon = daemon_for(args)
    if args.json:
        say_json([p.__dict__ for p in daemon.plugins])
        return 0
    for p in daemon.plugins:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.registers.items()) or "-"
        status = f"FAILED {p.error}" if p.error else what
        say(f"{p.name:<18} {p.origin:<11} {p.version or '':<8} {status}")
    return 0


def cmd_avatars(args: argparse.Namespace) -> int:
    from .hookspecs import DrawsPreviews
    daemon = daemon_for(args)
    avatars = list(daemon.settings.avatars.values())
    if args.sync:
        return asyncio.run(_sync_avatars(daemon, args.renderer))
    if args.previews:
        renderer = daemon.renderers[args.renderer or daemon.settings.default_renderer]
        if not isinstance(renderer, DrawsPreviews):
            raise AvatarDaemonError(f"renderer {renderer.name!r} cannot make previews")
        out = Path(args.previews)
        for avatar in avatars:
            for f in renderer.preview(avatar, out):
                say(f)
        return 0
    if args.json:
        say_json([a.model_dump(mode="json") for a in avatars])
        return 0
    for a in avatars:
        say(f"{a.id:<11} {a.name:<10} {a.avatar_type:<14} {a.tier:<10} {a.gender:<6} {a.age_range:<6} "
            f"{a.style:<14} {a.voice}")
    return 0


async def _sync_avatars(daemon: "Daemon", only: str | None) -> int:
    """Check every profile against each remote catalogue; one line per problem, exit 1 if any."""
    from .hookspecs import SyncsCatalogue
    renderers = [daemon.renderers[only]] if only else [r for r in daemon.renderers if isinstance(r, SyncsCatalogue)]
    if not renderers or not all(isinstance(r, SyncsCatalogue) for r in renderers):
        raise AvatarDaemonError("no renderer with a remote catalogue to sync"
                                + (f" ({only!r} has none)" if only else ""))
    problems: list[str] = []
    async with daemon.started():
        for renderer in renderers:
            problems += [f"{renderer.name}: {p}" for p in await renderer.sync_catalogue()]
            for a in renderer.list_avatars():
                say(f"{renderer.name:<8} {a.id:<11} {a.renderer_ids.get(renderer.name, ''):<34} "
                    f"{a.preview_image_url or '-'}")
    for problem in problems:
        say(problem, err=True)
    return 1 if problems else 0


def cmd_videos(args: argparse.Namespace) -> int:
    daemon = daemon_for(args)
    if args.action == "retry":
        return asyncio.run(_retry(daemon, args.id))

    async def fetch() -> list[dict[str, Any]]:
        async with daemon.started():
            return [j.public() for j in await daemon.store.jobs(args.status, args.limit)]

    rows = asyncio.run(fetch())
    if args.json:
        say_json(rows)
        return 0
    for r in rows:
        video = (r["result"] or {}).get("video", "")
        say(f"{r['id']:>5} {r['status']:<14} {r['percent']:5.1f}% {r['format']:<9} {r['avatar_id']:<10} "
            f"{r['title'][:40]:<40} {video or r['error'] or ''}")
    return 0


async def _retry(daemon: "Daemon", job_id: int) -> int:
    """The command line is trusted: any ended video may be queued again, for the running daemon to render."""
    async with daemon.started():
        job = await daemon.jobs.retry(job_id)
    say(f"video {job.id} ({job.title}) is queued again; the running daemon renders it "
        "(follow it with `avatar-daemon videos`)")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    say_json(campaign_schema())
    return 0


def campaign_schema() -> dict[str, Any]:
    from .campaigns.schema import Campaign

    schema = Campaign.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "avatar-daemon campaign"
    return schema


def cmd_campaigns(args: argparse.Namespace) -> int:
    daemon = daemon_for(args)

    async def act() -> int:
        async with daemon.started():
            campaigns = daemon.campaigns
            for problem in await campaigns.reload():
                say(problem, err=True)
            if args.action in ("pause", "resume"):
                await campaigns.set_paused(args.name, args.action == "pause")
                if args.json:
                    say_json({"name": args.name, "paused": args.action == "pause"})
                else:
                    say(f"{args.name} {args.action}d")
            elif args.action == "run":
                _print_run(await campaigns.run_now(args.name), args.json)
            if args.action == "list":
                rows = await campaigns.rows()
                if args.json:
                    say_json(rows)
                    return 0
                for r in rows:
                    state = "paused" if r["paused"] else "active" if r["active"] else "inactive"
                    # The store keeps a slot for every campaign; the scheduler runs only the active ones.
                    upcoming = _when(r["next_run_at"]) if state == "active" else "-"
                    say(f"{r['name']:<24} {state:<8} {r['schedule']:<34} next {upcoming:<16}  "
                        f"last {_when(r['last_run_at'])}  runs {r['runs']}  videos {r['videos']} "
                        f"({r['completed']} done)")
            return 0

    return asyncio.run(act())


def cmd_batch(args: argparse.Namespace) -> int:
    daemon = daemon_for(args)

    async def act() -> int:
        async with daemon.started():
            report = await daemon.campaigns.batch(args.hours_back, args.source, args.avatar, args.format)
            if args.render and report.job_ids:
                if not args.json:
                    _print_run(report)
                code, videos = await _run_jobs(daemon, report.job_ids, quiet=args.json)
                if args.json:
                    _print_run(report, True, videos=videos)
                return code
            _print_run(report, args.json)
            if report.job_ids:
                say("queued for the running daemon; follow them with `avatar-daemon videos`", err=True)
            return 0

    return asyncio.run(act())


def _print_run(report, as_json: bool = False, **extra: Any) -> None:
    if as_json:
        say_json({"campaign": report.campaign, "run_id": report.run_id, "trigger": report.trigger,
                  "message": report.message, "considered": report.considered, "job_ids": report.job_ids,
                  **extra})
        return
    say(report.message)
    for c in report.considered:
        say(f"  {c.get('source', ''):<14} {str(c.get('title', ''))[:50]:<50} {c['verdict']}")
    if report.job_ids:
        say(f"jobs: {', '.join(map(str, report.job_ids))}")


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    say(shtab.complete(build_parser(), shell=args.shell))
    return 0


def _when(iso: str | None) -> str:
    from datetime import datetime

    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AvatarDaemonError(f"{path}: cannot read: {exc.strerror}") from None


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("avatar-daemon")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


# ---- the parser ---------------------------------------------------------------------------

# shtab's completion actions, spelled out so building the parser does not import shtab.
FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
DIRECTORY = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}

# Commands that live in modules of their own: each has `register(command)`, called with the
# factory the built-in commands use below, and imports what its commands need inside them (so
# `--help` stays quick). Adding such a module is one line here.
COMMAND_MODULES: tuple[str, ...] = (
    "avatar_daemon.doctor",
    "avatar_daemon.db_commands",
    "avatar_daemon.node_commands",
    "avatar_daemon.token_commands",
    "avatar_daemon.publish_commands",
)

EXAMPLES = """\
examples:
  avatar-daemon render examples/reddit-ai-top.json          make its video now; the MP4 path is printed last
  avatar-daemon run                                         the daemon: inbox, jobs, campaigns, HTTP API
  avatar-daemon doctor                                      check fonts, voices, folders, port, database, keys
  avatar-daemon videos --status failed                      what went wrong
  avatar-daemon --config /etc/avatar-daemon/daemon.yaml check
  avatar-daemon completion bash > /etc/bash_completion.d/avatar-daemon

Every command takes --config, -v/--log-level and --log-format, before or after its name.
`avatar-daemon COMMAND --help` shows a command's options and examples."""


def _shared(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options every command takes, before or after its name.

    A subcommand's copy defaults to SUPPRESS: argparse would otherwise overwrite the
    top-level value (`avatar-daemon --config x.yaml check`) with the subcommand's default.
    """
    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--config", default=default(None), metavar="PATH",
                        help="daemon.yaml (default: $AVATAR_DAEMON_CONFIG, else config/daemon.yaml if it exists)"
                        ).complete = FILE  # type: ignore[attr-defined]
    parser.add_argument("-v", "--verbose", action="count", default=default(0),
                        help="log more: -v for INFO, -vv for DEBUG (`run` starts at its log_level)")
    parser.add_argument("--log-level", type=str.upper, choices=LEVELS, default=default(None),
                        help="log level for this command (overrides -v and daemon.yaml's log_level)")
    parser.add_argument("--log-format", choices=FORMATS, default=default(None),
                        help="log lines as text or as one JSON object each (default: daemon.yaml's log_format "
                             "for `run`, else text)")


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser that takes its positionals after its options too.

    Plain argparse fills every optional positional at the first one it meets, so the
    NAME in `tokens create --workspace acme --user ops --admin ops-bot` (as the help's own
    example writes it) was refused as an unrecognised argument.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
        if self._intermixing:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def build_parser() -> argparse.ArgumentParser:
    from .models import JobState

    parser = argparse.ArgumentParser(prog="avatar-daemon", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the installed version and exit")
    _shared(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser,
                                help="`avatar-daemon COMMAND --help` shows its options and examples")

    def command(name: str, help: str, examples: list[str] | tuple[str, ...] = (),
                func: Callable[[argparse.Namespace], int] | None = None,
                description: str | None = None) -> argparse.ArgumentParser:
        """A subcommand with its one-line help, a longer description and examples in its --help.

        Every command should give examples (a test checks); `func` may also be set later with
        `set_defaults(func=...)`.
        """
        p = sub.add_parser(name, help=help, description=description or help[:1].upper() + help[1:] + ".",
                           epilog="examples:\n" + "\n".join(f"  avatar-daemon {e}" for e in examples) if examples
                           else None, formatter_class=argparse.RawDescriptionHelpFormatter)
        _shared(p, top=False)
        if func is not None:
            p.set_defaults(func=func)
        return p

    command("run", "run the daemon: watch the inbox, render jobs, run campaigns, serve the HTTP API",
            ["run", "run --config /etc/avatar-daemon/daemon.yaml --log-format json"], cmd_run,
            description="Run the daemon in the foreground (systemd Type=notify: READY, STATUS and WATCHDOG over "
                        "NOTIFY_SOCKET). SIGTERM or Ctrl-C stops it cleanly.")

    p = command("render", "make the videos of one research or script file now, in this process",
                ["render examples/reddit-ai-top.json", "render script.txt --format youtube --avatar mike --out out/",
                 "render script.txt --narration my-voice.m4a --photo me.jpg", "render script.txt --logo brand.png",
                 "render research.json --renderer heygen --dry-run", "render script.txt --json | jq -r '.videos[].video'",
                 "render long-script.md --format tiktok --split"],
                cmd_render, description="Make the videos of one file now, with a progress bar on stderr; each MP4's "
                                        "path is printed last (or, with --json, one JSON object).")
    p.add_argument("file", help="research JSON, or a .txt/.md script").complete = FILE  # type: ignore[attr-defined]
    p.add_argument("--format", action="append", metavar="NAME",
                   help="output format (tiktok, reels, shorts, youtube, square...); repeat for several")
    p.add_argument("--avatar", metavar="ID", help="avatar profile id (see `avatar-daemon avatars`)")
    p.add_argument("--renderer", metavar="NAME", help="renderer (default: daemon.yaml's default_renderer)")
    p.add_argument("--out", metavar="DIR", help="folder for the finished files (default: jobs.output_dir)"
                   ).complete = DIRECTORY  # type: ignore[attr-defined]
    p.add_argument("--narration", metavar="FILE", help="your own recorded speech: the presenter lip-syncs to it"
                   ).complete = FILE  # type: ignore[attr-defined]
    p.add_argument("--photo", metavar="FILE", help="a portrait photo that talks instead of the avatar"
                   ).complete = FILE  # type: ignore[attr-defined]
    p.add_argument("--logo", metavar="FILE", help="an image drawn in the brand corner, over the template's logo "
                                                  "(renderers that draw logos only: local)"
                   ).complete = FILE  # type: ignore[attr-defined]
    p.add_argument("--title", metavar="TEXT", help="the video's title, instead of the one built from the research")
    p.add_argument("--description", metavar="TEXT", help="the video's page text (metadata.json), instead of the "
                                                         "insights and their links")
    p.add_argument("--hashtag", action="append", metavar="TAG",
                   help="a hashtag, instead of the research's; repeat for several")
    p.add_argument("--split", action="store_true",
                   help="a script too long for a format becomes several videos, \"(Part 1 of N)\", split between "
                        "sentences; without it such a script is refused")
    p.add_argument("--dry-run", action="store_true",
                   help="print the request(s) a remote renderer would send, one JSON object per line; send nothing")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: source, title, estimated_seconds and videos (id, format, status, "
                        "video, error)")

    p = command("script", "detect the source, extract insights and write the script; no render",
                ["script examples/reddit-ai-top.json", "script research.json --format youtube --json"], cmd_script)
    p.add_argument("file", help="research JSON, or a .txt/.md script").complete = FILE  # type: ignore[attr-defined]
    p.add_argument("--format", action="append", metavar="NAME", help="the format whose time limit the script fits")
    p.add_argument("--json", action="store_true", help="print source, title, topic, insights and script as JSON")

    p = command("check", "validate daemon.yaml, the files it names and every campaign file",
                ["check", "check --config /etc/avatar-daemon/daemon.yaml", "check --json"], cmd_check,
                description="Validate every configuration and campaign file: one `path:line: reason` per problem, "
                            "exit status 1 if there is any.")
    p.add_argument("--json", action="store_true", help='print {"ok": true|false, "problems": [...]}')

    p = command("plugins", "list plugins, where each came from and what it registers",
                ["plugins", "plugins --json"], cmd_plugins)
    p.add_argument("--json", action="store_true", help="print the list as JSON")

    p = command("avatars", "list avatar profiles; draw their previews; check them against HeyGen",
                ["avatars", "avatars --previews previews/", "avatars --sync --renderer heygen"], cmd_avatars)
    p.add_argument("--json", action="store_true", help="print the profiles as JSON")
    p.add_argument("--previews", metavar="DIR", help="write a preview still and a 3 s clip of each avatar into DIR"
                   ).complete = DIRECTORY  # type: ignore[attr-defined]
    p.add_argument("--sync", action="store_true",
                   help="fetch remote catalogues (HeyGen) and check every profile's avatar and voice")
    p.add_argument("--renderer", metavar="NAME", help="only this renderer (for --previews and --sync)")

    p = command("campaigns", "list campaigns; run, pause or resume one",
                ["campaigns", "campaigns run ai-daily --json", "campaigns pause ai-daily"], cmd_campaigns)
    p.add_argument("action", nargs="?", default="list", choices=["list", "run", "pause", "resume"],
                   help="what to do (default: list)")
    p.add_argument("name", nargs="?", help="the campaign, for run, pause and resume")
    p.add_argument("--json", action="store_true", help="print the list, the run's report or the new state as JSON")

    p = command("batch", "make videos of the research ingested in the last hours, chosen like a campaign run",
                ["batch --hours-back 12 --source reddit", "batch --render --json"], cmd_batch)
    p.add_argument("--hours-back", type=float, default=24.0, metavar="HOURS",
                   help="how far back to look (default: 24)")
    p.add_argument("--source", metavar="NAME", help="only research from this source")
    p.add_argument("--avatar", metavar="ID", help="avatar profile for the videos")
    p.add_argument("--format", metavar="NAME", help="format of the videos")
    p.add_argument("--render", action="store_true", help="render them now in this process")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON (message, considered, job_ids; videos with --render)")

    p = command("schema", "print a JSON Schema for editors", ["schema campaign > campaign.schema.json"], cmd_schema)
    p.add_argument("kind", choices=["campaign"], help="which file's schema")

    p = command("videos", "list video jobs; retry a failed, timed-out or cancelled one",
                ["videos", "videos --status failed --json", "videos retry 42"], cmd_videos)
    p.add_argument("action", nargs="?", default="list", choices=["list", "retry"], help="what to do (default: list)")
    p.add_argument("id", nargs="?", type=int, help="the video to retry")
    p.add_argument("--status", choices=[s.value for s in JobState], help="only videos in this state")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most this many, newest first (default: 50)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")

    p = command("completion", "print a shell completion script",
                ["completion bash > /etc/bash_completion.d/avatar-daemon",
                 "completion zsh > ~/.zfunc/_avatar-daemon"], cmd_completion)
    p.add_argument("shell", choices=["bash", "zsh", "tcsh"], help="the shell to complete for")

    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(command)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is cmd_campaigns and args.action != "list" and not args.name:
        parser.error(f"campaigns {args.action} needs a campaign NAME")
    if args.func is cmd_videos and args.action == "retry" and args.id is None:
        parser.error("videos retry needs a video ID")
    # Before anything runs: loading plugins logs their failures, and those may quote a secret.
    setup_logging(level_for("WARNING", args.verbose, args.log_level), args.log_format or "text")
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, not at exit, so a reader that left early is caught below
    except ConfigError as exc:
        for problem in exc.problems:
            say(problem, err=True)
        code = 1
    except AvatarDaemonError as exc:
        say(f"error: {exc}", err=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # The reader went away (`videos | head`): stop quietly, as other command-line tools do.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, what a tool killed by the signal reports
    sys.exit(code)
