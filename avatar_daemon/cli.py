"""The `avatar-daemon` command line: the daemon itself and one-shot tools around it."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .campaign import Campaign
from .daemon import Daemon
from .errors import AvatarDaemonError, ConfigError
from .logs import LEVELS, level_for, redact, setup_logging
from .models import JobState
from .pipeline import VideoSettings
from .progressbar import ProgressBar
from .settings import Settings, load_settings

log = logging.getLogger("avatar_daemon")


def say(text: Any = "", err: bool = False) -> None:
    """Print through the same mask as the logs: a plugin's error or a payload may quote a secret."""
    print(redact(str(text)), file=sys.stderr if err else sys.stdout)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(Path(args.config) if args.config else None)


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    setup_logging(level_for(settings.log_level, args.verbose, args.log_level))
    asyncio.run(Daemon(settings).run())
    return 0


def cmd_script(args: argparse.Namespace) -> int:
    daemon = Daemon(_settings(args))
    path = Path(args.file)
    prepared = daemon.pipeline.prepare(_read(path), path.name, path.suffix, VideoSettings(formats=args.format))
    research, script = prepared.research, prepared.script
    if args.json:
        say(json.dumps({
            "source": research.source, "title": research.title, "topic": research.topic,
            "insights": [i.model_dump(mode="json", include={"text", "score", "url"}) for i in research.insights],
            "script": script.model_dump(mode="json"),
        }, ensure_ascii=False, indent=2))
    else:
        say(f"# {script.title}\n\n{script.text}\n\n({research.source}, about {script.estimated_seconds:.0f} s)")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.out:
        settings.jobs.output_dir = Path(args.out).resolve()
    daemon = Daemon(settings)
    path = Path(args.file)
    from .assets import local_media
    media = asyncio.run(local_media(daemon.media.uploads, daemon.clock().isoformat(), narration=args.narration,
                                    talking_photo=args.photo))
    overrides = VideoSettings(formats=args.format, avatar=args.avatar, renderer=args.renderer, **media)
    if args.dry_run:
        return asyncio.run(_dry_run(daemon, path, overrides))
    return asyncio.run(_render(daemon, path, overrides))


async def _dry_run(daemon: Daemon, path: Path, overrides: VideoSettings) -> int:
    """Print what the renderer would send, one JSON object per request; nothing is stored or sent."""
    p = daemon.pipeline.prepare(_read(path), path.name, path.suffix, overrides)
    renderer = daemon.renderers[p.renderer]
    if not hasattr(renderer, "dry_run"):
        raise AvatarDaemonError(f"renderer {renderer.name!r} sends nothing anywhere, so it has no dry run")
    settings = p.settings.job_settings()
    template = p.settings.template or daemon.settings.default_template
    for fmt in p.formats:
        request = daemon.jobs.request_for(0, p.script, p.avatar, fmt, template, settings)
        for sent in await renderer.dry_run(request):
            say(json.dumps(sent, ensure_ascii=False))
    return 0


async def _render(daemon: Daemon, path: Path, overrides: VideoSettings) -> int:
    async with daemon.started():
        ingested = await daemon.pipeline.ingest(_read(path), path.name, path.suffix, overrides=overrides,
                                                fresh_jobs=True)
        say(f"{ingested.source}: {ingested.script.title} (about {ingested.script.estimated_seconds:.0f} s)",
              err=True)
        return await _run_jobs(daemon, ingested.job_ids)


async def _run_jobs(daemon: Daemon, job_ids: list[int]) -> int:
    """Render jobs in this process with a progress bar each; prints the MP4 paths last."""
    outputs, failed = [], 0
    for job_id in job_ids:
        job = await daemon.store.claim(job_id)
        if job is None:
            say(f"job {job_id} was taken by a running daemon; see `avatar-daemon videos`", err=True)
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
        if event.state is JobState.completed and result and result.video:
            outputs.append(result.video)
        else:
            failed += 1
            say(f"job {job_id} {event.state.value}: {event.message}", err=True)
    for video in outputs:
        say(video)
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    try:
        settings = _settings(args)
    except ConfigError as exc:
        problems.extend(exc.problems)
        settings = None
    if settings is not None:
        daemon = Daemon(settings)
        problems += [f"plugin {p.name}: {p.error}" for p in daemon.plugins if p.error]
        if settings.campaigns_dir.is_dir():
            for f in sorted(settings.campaigns_dir.glob("*.y*ml")):
                try:
                    daemon.campaigns._load(f)
                except ConfigError as exc:
                    problems.extend(exc.problems)
    for p in problems:
        say(p)
    if not problems:
        say("configuration OK")
    return 1 if problems else 0


def cmd_plugins(args: argparse.Namespace) -> int:
    daemon = Daemon(_settings(args))
    rows = [p.__dict__ for p in daemon.plugins]
    if args.json:
        say(json.dumps(rows, indent=2))
        return 0
    for p in daemon.plugins:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.registers.items()) or "-"
        status = f"FAILED {p.error}" if p.error else what
        say(f"{p.name:<18} {p.origin:<11} {p.version or '':<8} {status}")
    return 0


def cmd_avatars(args: argparse.Namespace) -> int:
    daemon = Daemon(_settings(args))
    avatars = list(daemon.settings.avatars.values())
    if args.sync:
        return asyncio.run(_sync_avatars(daemon, args.renderer))
    if args.previews:
        renderer = daemon.renderers[args.renderer or daemon.settings.default_renderer]
        if not hasattr(renderer, "preview"):
            raise AvatarDaemonError(f"renderer {renderer.name!r} cannot make previews")
        out = Path(args.previews)
        for avatar in avatars:
            for f in renderer.preview(avatar, out):
                say(f)
        return 0
    if args.json:
        say(json.dumps([a.model_dump(mode="json") for a in avatars], indent=2))
        return 0
    for a in avatars:
        say(f"{a.id:<11} {a.name:<10} {a.tier:<10} {a.gender:<6} {a.age_range:<6} {a.style:<14} {a.voice}")
    return 0


async def _sync_avatars(daemon: Daemon, only: str | None) -> int:
    """Check every profile against each remote catalogue; one line per problem, exit 1 if any."""
    renderers = [daemon.renderers[only]] if only else [r for r in daemon.renderers if hasattr(r, "sync_catalogue")]
    if not renderers or not all(hasattr(r, "sync_catalogue") for r in renderers):
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
    daemon = Daemon(_settings(args))
    if args.action == "retry":
        return asyncio.run(_retry(daemon, args.id))

    async def fetch() -> list[dict[str, Any]]:
        async with daemon.started():
            return [j.public() for j in await daemon.store.jobs(args.status, args.limit)]

    rows = asyncio.run(fetch())
    if args.json:
        say(json.dumps(rows, indent=2, default=str))
        return 0
    for r in rows:
        video = (r["result"] or {}).get("video", "")
        say(f"{r['id']:>5} {r['status']:<10} {r['percent']:5.1f}% {r['format']:<9} {r['avatar_id']:<10} "
            f"{r['title'][:40]:<40} {video or r['error'] or ''}")
    return 0


async def _retry(daemon: Daemon, job_id: int) -> int:
    """The command line is trusted: any ended video may be queued again, for the running daemon to render."""
    async with daemon.started():
        job = await daemon.jobs.retry(job_id)
    say(f"video {job.id} ({job.title}) is queued again; the running daemon renders it "
        "(follow it with `avatar-daemon videos`)")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    say(json.dumps(campaign_schema(), indent=2))
    return 0


def campaign_schema() -> dict[str, Any]:
    schema = Campaign.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "avatar-daemon campaign"
    return schema


def cmd_campaigns(args: argparse.Namespace) -> int:
    daemon = Daemon(_settings(args))

    async def act() -> int:
        async with daemon.started():
            campaigns = daemon.campaigns
            for problem in await campaigns.reload():
                say(problem, err=True)
            if args.action in ("pause", "resume"):
                await campaigns.set_paused(args.name, args.action == "pause")
                say(f"{args.name} {args.action}d")
            elif args.action == "run":
                report = await campaigns.run_now(args.name)
                _print_run(report)
            rows = await campaigns.rows()
            if args.action == "list":
                if args.json:
                    say(json.dumps(rows, indent=2))
                    return 0
                for r in rows:
                    state = "paused" if r["paused"] else "active" if r["active"] else "inactive"
                    say(f"{r['name']:<24} {state:<8} {r['schedule']:<34} next {_when(r['next_run_at'])}  "
                          f"last {_when(r['last_run_at'])}  runs {r['runs']}  videos {r['videos']} "
                          f"({r['completed']} done)")
            return 0

    return asyncio.run(act())


def cmd_batch(args: argparse.Namespace) -> int:
    daemon = Daemon(_settings(args))

    async def act() -> int:
        async with daemon.started():
            report = await daemon.campaigns.batch(args.hours_back, args.source, args.avatar, args.format)
            _print_run(report)
            if args.render and report.job_ids:
                return await _run_jobs(daemon, report.job_ids)
            if report.job_ids:
                say("queued for the running daemon; follow them with `avatar-daemon videos`", err=True)
            return 0

    return asyncio.run(act())


def _print_run(report) -> None:
    say(report.message)
    for c in report.considered:
        say(f"  {c.get('source', ''):<14} {str(c.get('title', ''))[:50]:<50} {c['verdict']}")
    if report.job_ids:
        say(f"jobs: {', '.join(map(str, report.job_ids))}")


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AvatarDaemonError(f"{path}: cannot read: {exc.strerror}") from None


def _version() -> str:
    try:
        return importlib.metadata.version("avatar-daemon")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _shared(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options every command takes, before or after its name.

    A subcommand's copy defaults to SUPPRESS: argparse would otherwise overwrite the
    top-level value (`avatar-daemon --config x.yaml check`) with the subcommand's default.
    """
    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--config", default=default(None),
                        help="daemon.yaml (default: $AVATAR_DAEMON_CONFIG, else config/daemon.yaml if it exists)")
    parser.add_argument("-v", "--verbose", action="count", default=default(0),
                        help="log more: -v for INFO, -vv for DEBUG (`run` starts at its log_level)")
    parser.add_argument("--log-level", type=str.upper, choices=LEVELS, default=default(None),
                        help="log level for this command")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar-daemon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _shared(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, **kw)
        _shared(p, top=False)
        return p

    command("run", help="run the daemon").set_defaults(func=cmd_run)

    p = command("render", help="make videos of one research file now")
    p.add_argument("file")
    p.add_argument("--format", action="append", help="format name; repeat for several")
    p.add_argument("--avatar")
    p.add_argument("--renderer")
    p.add_argument("--out", help="folder for the finished files")
    p.add_argument("--narration", metavar="FILE", help="your own recorded speech: the presenter lip-syncs to it")
    p.add_argument("--photo", metavar="FILE", help="a portrait photo that talks instead of the avatar")
    p.add_argument("--dry-run", action="store_true",
                   help="print the request(s) a remote renderer would send, as JSON; send nothing")
    p.set_defaults(func=cmd_render)

    p = command("script", help="detect, extract and write the script; no render")
    p.add_argument("file")
    p.add_argument("--format", action="append")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_script)

    command("check", help="validate every config and campaign file").set_defaults(func=cmd_check)

    p = command("plugins", help="list plugins and what they register")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = command("avatars", help="list avatar profiles")
    p.add_argument("--json", action="store_true")
    p.add_argument("--previews", metavar="DIR", help="write a preview image and clip of each avatar")
    p.add_argument("--sync", action="store_true",
                   help="fetch remote catalogues (HeyGen) and check every profile's avatar and voice")
    p.add_argument("--renderer")
    p.set_defaults(func=cmd_avatars)

    p = command("campaigns", help="list campaigns; run, pause or resume one")
    p.add_argument("action", nargs="?", default="list", choices=["list", "run", "pause", "resume"])
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_campaigns)

    p = command("batch", help="make videos of the research ingested in the last hours")
    p.add_argument("--hours-back", type=float, default=24.0)
    p.add_argument("--source")
    p.add_argument("--avatar")
    p.add_argument("--format")
    p.add_argument("--render", action="store_true", help="render them now in this process")
    p.set_defaults(func=cmd_batch)

    p = command("schema", help="print a JSON Schema for editors")
    p.add_argument("kind", choices=["campaign"])
    p.set_defaults(func=cmd_schema)

    p = command("videos", help="list video jobs; retry a failed, timed-out or cancelled one")
    p.add_argument("action", nargs="?", default="list", choices=["list", "retry"])
    p.add_argument("id", nargs="?", type=int, help="the video to retry")
    p.add_argument("--status", choices=[s.value for s in JobState])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_videos)

    from .token_commands import add_parser as add_tokens  # its own module: tokens create|list|revoke
    add_tokens(command, say)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is cmd_campaigns and args.action != "list" and not args.name:
        parser.error(f"campaigns {args.action} needs a campaign NAME")
    if args.func is cmd_videos and args.action == "retry" and args.id is None:
        parser.error("videos retry needs a video ID")
    # Before anything runs: loading plugins logs their failures, and those may quote a secret.
    setup_logging(level_for("WARNING", args.verbose, args.log_level))
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
