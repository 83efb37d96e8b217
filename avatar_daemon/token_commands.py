"""`avatar-daemon tokens create|list|revoke`: API tokens in users.yaml, by hash only.

A new token is printed once and never stored: users.yaml keeps its SHA-256, which is all the
daemon needs to check it. The file is edited in place with its comments and layout kept
(ruamel.yaml's round trip), checked as the daemon will check it before it replaces the old one,
and the running daemon picks the change up from its watcher.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any, Callable

from ruamel.yaml import YAML

from .access import TIERS, token_digest
from .errors import AvatarDaemonError
from .logs import redact
from .settings import DEFAULTS, UsersFile, load_settings
from .users import users_path
from .yamlfile import YamlDocument

PREFIX = "avd_"  # recognisable in a leaked paste, for people and secret scanners alike
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8") if path.is_file() else (DEFAULTS / "users.yaml").read_text()
    YamlDocument(path, text).validate(UsersFile)  # refuse to edit a file the daemon would refuse
    data = _yaml().load(text)
    if data is None:
        data = _yaml().load("api_tokens: []\n")
    if data.get("api_tokens") is None:
        data["api_tokens"] = []
    return data


def _write(path: Path, data: Any) -> None:
    out = io.StringIO()
    _yaml().dump(data, out)
    text = out.getvalue()
    YamlDocument(path, text).validate(UsersFile)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # the watcher sees one whole file, never half of one


def create(path: Path, workspace: str, user: str, tier: str, admin: bool = False, campaigns: bool = False,
           name: str | None = None) -> tuple[str, dict[str, Any]]:
    """The new token (shown once) and the entry written for it."""
    data = _read(path)
    name = name or f"{user}@{workspace}"
    if not NAME.match(name):
        raise AvatarDaemonError(f"--name: {name!r} is not a token name (letters, digits, _ . @ -; up to 100)")
    if any(t.get("name") == name for t in data["api_tokens"]):
        raise AvatarDaemonError(f"{path}: a token named {name!r} exists; revoke it first or pick another --name")
    token = PREFIX + secrets.token_urlsafe(32)
    entry: dict[str, Any] = {"name": name, "sha256": token_digest(token), "workspace": workspace, "user": user,
                             "tier": tier}
    if admin:
        entry["admin"] = True
    if campaigns:
        entry["campaigns"] = True
    data["api_tokens"].append(entry)
    _write(path, data)
    return token, entry


def listed(path: Path) -> list[dict[str, Any]]:
    users = YamlDocument.load(path).validate(UsersFile) if path.is_file() else UsersFile()
    return [{"name": t.name, "workspace": t.workspace, "user": t.user, "tier": t.tier, "admin": t.admin,
             "campaigns": t.campaigns, "sha256": t.sha256[:12] + "…"} for t in users.api_tokens]


def revoke(path: Path, name: str) -> None:
    data = _read(path) if path.is_file() else None
    tokens = data["api_tokens"] if data else []
    keep = [t for t in tokens if t.get("name") != name]
    if len(keep) == len(tokens):
        known = ", ".join(t.get("name", "?") for t in tokens) or "none"
        raise AvatarDaemonError(f"{path}: no token named {name!r} (known: {known})")
    tokens[:] = keep
    _write(path, data)


def say(text: str = "", err: bool = False) -> None:
    print(redact(text), file=sys.stderr if err else sys.stdout)  # through the logs' mask, as every command prints


def cmd_tokens(args: argparse.Namespace) -> int:
    settings = load_settings(Path(args.config) if args.config else None)
    path = users_path(settings)
    if args.action == "create":
        missing = [f"--{n}" for n in ("workspace", "user") if not getattr(args, n)]
        if missing:
            raise AvatarDaemonError(f"tokens create needs {' and '.join(missing)}")
        token, entry = create(path, args.workspace, args.user, args.tier, args.admin, args.campaigns, args.name)
        say(f"{token}\n")
        say(f"Token {entry['name']!r} ({entry['tier']} tier, workspace {entry['workspace']}, user {entry['user']}"
            f"{', admin' if args.admin else ''}{', campaigns' if args.campaigns else ''}) added to {path}.\n"
            "This is the only time it is shown: only its SHA-256 is kept.", err=True)
    elif args.action == "list":
        rows = listed(path)
        if args.json:
            say(json.dumps(rows, ensure_ascii=False, indent=2))
        else:
            for r in rows:
                flags = ", ".join(f for f in ("admin", "campaigns") if r[f])
                say(f"{r['name']:<24} {r['workspace'] + '/' + r['user']:<24} {r['tier']:<10} {flags}")
            if not rows:
                say(f"no API tokens in {path}", err=True)
    else:
        if not args.name:
            raise AvatarDaemonError("tokens revoke needs the token's NAME (see `avatar-daemon tokens list`)")
        revoke(path, args.name)
        say(f"Token {args.name!r} revoked in {path}; a running daemon refuses it from now on.", err=True)
    return 0


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("tokens", help="create, list or revoke HTTP API tokens in users.yaml",
                examples=["tokens create --workspace acme --user ana --tier pro", "tokens create --workspace acme "
                          "--user ops --tier enterprise --admin --campaigns ops-bot", "tokens list --json",
                          "tokens revoke ana@acme"])
    p.add_argument("action", choices=["create", "list", "revoke"], help="what to do")
    p.add_argument("name", nargs="?", help="revoke: the token's name; create: its name (default USER@WORKSPACE)")
    p.add_argument("--workspace", help="create: the workspace the token acts in")
    p.add_argument("--user", help="create: the user the token acts as")
    p.add_argument("--tier", choices=TIERS, default="free", help="create: the avatars and formats it may use")
    p.add_argument("--admin", action="store_true", help="sees and acts on every video")
    p.add_argument("--campaigns", action="store_true", help="may create, change and run campaigns")
    p.add_argument("--json", action="store_true", help="list: print the tokens (never their secrets) as JSON")
    p.set_defaults(func=cmd_tokens)
