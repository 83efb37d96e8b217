"""`avatar-daemon doctor`: is this machine ready to run the daemon? One line per thing, with what to do.

Each check is a real attempt (write a file, bind the port, open the database, call the API
with the key), not a look at settings, because what breaks a deployment is the folder the
service user cannot write or the token that was revoked. Here are the checks every install
needs; what only a plugin needs (a voice, an API key) is the plugin's own `Check`, registered
with `register_checks`, so nothing here knows a plugin's packages or settings.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .findings import Finding

if TYPE_CHECKING:
    import aiohttp

    from .hookspecs import Check
    from .settings import Settings

TIMEOUT_SECONDS = 10.0
ok, fail, skip = Finding.ok, Finding.fail, Finding.skip


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


async def check_port(http: "aiohttp.ClientSession", host: str, port: int) -> Finding:
    """Free for the daemon to bind, or already served by a running avatar-daemon (its /healthz says
    so): a doctor run beside the live service must not call the service's own port a failure."""
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
            if exc.errno != errno.EADDRINUSE:
                return fail("http port", f"{host}:{port} is {exc.strerror}: set http.host or http.port")
            in_use = exc
        else:
            return ok("http port", f"{host}:{port} is free")
    node = await _daemon_at(http, host, port)
    if node:
        return ok("http port", f"{host}:{port} is served by a running avatar-daemon (node {node})")
    return fail("http port", f"{host}:{port} is in use by another program ({in_use.strerror}): stop it or set "
                             "http.port")


async def _daemon_at(http: "aiohttp.ClientSession", host: str, port: int) -> str | None:
    """The node id a daemon's /healthz gives at host:port, or None when what answers there is not one."""
    import aiohttp

    connect = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    url = f"http://[{connect}]:{port}/healthz" if ":" in connect else f"http://{connect}:{port}/healthz"
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=3)) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return None
    if resp.status == 200 and isinstance(body, dict) and body.get("ok") is True and isinstance(body.get("node"), str):
        return body["node"]
    return None


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


# ---- all of it ----------------------------------------------------------------------------


async def run_checks(settings: "Settings", plugin_errors: list[str], checks: Iterable["Check"] = ()) -> list[Finding]:
    """What every install needs, then each plugin's own checks (a plugin that breaks is a failure, not a crash)."""
    import aiohttp

    findings = [check_folder("data folder", settings.data_dir), check_folder("inbox", settings.inbox.path),
                check_folder("videos folder", settings.jobs.output_dir)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as http:
        findings.append(await check_port(http, settings.http.host, settings.http.port) if settings.http.enabled
                        else skip("http port", "http.enabled is false"))
        findings.append(await check_database(str(settings.database)))
        findings += [fail("plugins", error) for error in plugin_errors] or [ok("plugins", "all loaded")]
        for check in checks:
            try:
                findings += await asyncio.wait_for(check.run(http), 4 * TIMEOUT_SECONDS)
            except Exception as exc:  # a plugin's bug: said on its line, the other checks still run
                findings.append(fail(check.name, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return findings


async def examine(settings: "Settings") -> list[Finding]:
    """Every finding for a configuration that loaded: the daemon is built (plugins loaded, not started)."""
    from .daemon import Daemon
    from .errors import ConfigError

    try:
        daemon = Daemon(settings)
    except ConfigError as exc:  # e.g. no node id can be kept in data_dir: the checks below say why
        return [fail("daemon", problem) for problem in exc.problems] + await run_checks(settings, [])
    broken = [f"{p.name}: {p.error}" for p in daemon.plugins if p.error]
    return await run_checks(settings, broken, list(daemon.catalogue.checks))


def cmd_doctor(args: argparse.Namespace) -> int:
    from .cli import say, say_json, settings_for
    from .errors import ConfigError

    try:
        settings = settings_for(args)
    except ConfigError as exc:
        findings = [fail("configuration", problem) for problem in exc.problems]
    else:
        findings = [ok("configuration", str(settings.config_path or "the packaged defaults"))]
        findings += asyncio.run(examine(settings))
    if args.json:
        say_json([asdict(f) for f in findings])
    else:
        for f in findings:
            say(f.line())
    return 1 if any(f.status == "fail" for f in findings) else 0


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("doctor", "check that this machine can run the daemon: one line per thing, with what to do",
                ["doctor", "doctor --config /etc/avatar-daemon/daemon.yaml", "doctor --json"], cmd_doctor,
                description="Check the folders the daemon writes, the HTTP port and the database, then what each "
                            "plugin needs: the local renderer's font and voices, the HeyGen key and Slack tokens "
                            "when they are set. "
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


