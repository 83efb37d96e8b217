"""Logging set-up with a filter that masks every secret the process knows of."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys

SECRET_NAME = re.compile(r"(TOKEN|SECRET|KEY|PASSWORD|CREDENTIAL)", re.I)
MASK = "***"


def known_secrets(environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= 6}
    values |= _credentials(env.get("CREDENTIALS_DIRECTORY"))
    return sorted(values, key=len, reverse=True)


@functools.lru_cache(maxsize=4)
def _credentials(folder: str | None) -> frozenset[str]:
    """Secrets systemd hands over as files (LoadCredential=): read once, masked like the environment's."""
    if not folder or not os.path.isdir(folder):
        return frozenset()
    found = set()
    for name in os.listdir(folder):
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                value = f.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if len(value) >= 6:
            found.add(value)
    return frozenset(found)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for value in known_secrets() if secrets is None else secrets:
        text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in the final message, whatever path they took into it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time, so a command run in-process (tests) logs where it prints."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))  # a traceback can quote a secret too


def under_journald(stream=None, environ: dict[str, str] | None = None) -> bool:
    """True when the stream is the journal's own (systemd sets JOURNAL_STREAM to its device:inode).

    The journal stamps every line itself, so a timestamp of ours would be printed twice.
    Comparing with the stream's own device and inode, as sd_journal_stream_fd(3) advises, keeps
    a command run from a shell inside the unit (stderr a terminal) stamped as usual.
    """
    expected = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


FORMATS = ["text", "json"]


def formatter(fmt: str = "text", journald: bool = False) -> logging.Formatter:
    """`text` for people, `json` (one object per line, for log shippers) via python-json-logger.

    python-json-logger plugs into the standard logging module as a Formatter, so every record,
    a plugin's or a library's, comes out as JSON with its `extra` fields, and the redacting
    filter keeps working unchanged; structlog would have us route stdlib records through it.
    """
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        fields = "%(levelname)s %(name)s %(message)s" if journald else "%(asctime)s %(levelname)s %(name)s %(message)s"
        return JsonFormatter(fields, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                             datefmt="%Y-%m-%dT%H:%M:%S%z")
    return logging.Formatter("%(levelname)s %(name)s: %(message)s" if journald
                             else "%(asctime)s %(levelname)s %(name)s: %(message)s")


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Every command calls this before it does anything: no record reaches stderr unredacted."""
    handler = _Stderr()
    handler.setFormatter(formatter(fmt, journald=under_journald()))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def level_for(default: str, verbose: int = 0, explicit: str | None = None) -> str:
    """`--log-level` if given, else `default` made one step more verbose for each `-v`."""
    if explicit:
        return explicit
    return LEVELS[max(0, LEVELS.index(default) - verbose)]
