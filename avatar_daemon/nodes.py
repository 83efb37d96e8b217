"""Which daemon this is, among several sharing one database.

A node's id names its claims (jobs, leases, its inbox processing folder) and its events,
so it must stay the same across restarts of one installation and differ between two
daemons on one host: the host name plus a random suffix, made once and kept in data_dir.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path

from .errors import ConfigError

ID_FILE = "node-id"
VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def node_id(configured: str | None, data_dir: Path) -> str:
    """The configured id, else the one kept in data_dir, else a new one kept there for next time."""
    if configured:
        return configured
    path = data_dir / ID_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _unkept(data_dir, exc) from None
    made = f"{_host_part()}-{secrets.token_hex(3)}"
    tmp = path.with_name(f".{ID_FILE}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(made + "\n", encoding="utf-8")
    except OSError as exc:
        raise _unkept(data_dir, exc) from None
    try:
        os.link(tmp, path)  # never replaces an id another process made first
    except FileExistsError:
        return _read(path)
    finally:
        tmp.unlink()
    return made


def _unkept(data_dir: Path, exc: OSError) -> ConfigError:
    return ConfigError([f"data_dir: this node's id cannot be kept in {data_dir} ({exc.strerror or exc}): make it "
                        "a folder the daemon can write, or set node_id in daemon.yaml"])


def _read(path: Path) -> str:
    found = path.read_text(encoding="utf-8").strip()
    if not VALID.match(found):
        raise ConfigError([f"{path}:1: {found!r} is not a node id (letters, digits, '.', '_' and '-', at most "
                           "63): delete the file to make a new one, or set node_id in daemon.yaml"])
    return found


def _host_part() -> str:
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0]).strip("-._") or "node"
    return host[:48]
