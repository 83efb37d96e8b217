"""Turning bytes from outside into a payload: encodings, JSON, XML or plain text.

Every refusal is a PayloadError or ResearchError whose message starts with the thing's name
and says why: hostile input (nesting 100,000 deep, entity bombs, links out of the inbox)
must come back as a sentence, never as another exception.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
import re
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import defusedxml
import defusedxml.ElementTree as DefusedET

from .errors import PayloadError, ResearchError

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
JSON_SUFFIXES = {".json"}
READABLE = "research is JSON (.json), RSS or Atom XML (.xml, .rss), or a script (.txt, .md)"
MAX_DEPTH = 64
"""Nesting deeper than any research format needs; deeper input is refused, never recursed into."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def load_json(text: str | bytes, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """JSON from outside, or PayloadError naming `what` and the reason (bad syntax, or nested too deeply).

    The one JSON reader for untrusted bytes (files, HTTP bodies, Slack and webhook payloads):
    a hostile document nested 100,000 deep must be a sentence, not a RecursionError.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(exc.doc.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        at = " " if exc.msg.endswith(" at") else " at "  # "Unterminated string starting at" has its own
        raise PayloadError(f"{what}: not valid JSON: {exc.msg}{at}line {exc.lineno} column {exc.colno}"
                           + (" (it looks cut short)" if cut else "")) from None
    except RecursionError:
        raise PayloadError(f"{what}: nested too deeply (more than {max_depth} levels)") from None
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{what}: not valid JSON: not UTF-8 text at byte {exc.start}") from None
    except ValueError:  # the only other one json raises: int() refusing a number thousands of digits long
        raise PayloadError(f"{what}: not valid JSON: a number has more than {sys.get_int_max_str_digits()} "
                           "digits") from None
    pattern = _SURROGATE_ESCAPE_BYTES if isinstance(text, bytes) else _SURROGATE_ESCAPE
    return _checked(value, what, max_depth, repair=pattern.search(text) is not None)


def _checked(value: Any, what: str, max_depth: int, repair: bool) -> Any:
    """The depth check and, with `repair`, lone surrogates (JSON's "\\ud83d" cut from its pair) made U+FFFD.

    A lone surrogate is valid JSON but not text: it would fail later, in the store's UTF-8,
    as an internal error. Producers that cut strings by UTF-16 units make them (a title
    truncated mid-emoji), so the broken character is replaced, not the whole file refused.
    """
    if not isinstance(value, (dict, list)):
        return _text(value) if repair else value
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise PayloadError(f"{what}: nested too deeply (more than {max_depth} levels)")
        if repair and isinstance(node, dict):
            fixed = {_text(k): _text(v) for k, v in node.items()}
            node.clear()
            node.update(fixed)
        elif repair:
            node[:] = [_text(v) for v in node]
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value


def _text(value: Any) -> Any:
    return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def decode(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with a BOM or with tell-tale NUL bytes."""
    if not data.strip():
        raise ResearchError(f"{name}: the file is empty")
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data[3:], "utf-8", name)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(data, "utf-16", name)
    head = data[:200]
    if len(head) > 3 and head.count(0) >= len(head) // 3:
        zeros_at_odd = sum(1 for i in range(1, len(head), 2) if head[i] == 0)
        return _decode(data, "utf-16-le" if zeros_at_odd > len(head) // 4 else "utf-16-be", name)
    return _decode(data, "utf-8", name)


def _decode(data: bytes, encoding: str, name: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ResearchError(
            f"{name}: not text: bytes that are not valid {encoding} at offset {exc.start}") from None
    if "\x00" in text:
        raise ResearchError(f"{name}: not text: it contains binary data (NUL at character {text.index(chr(0))})")
    return text


def read_file(path: Path, name: str) -> bytes:
    """A regular file's bytes, never a link's target nor a pipe's or a device's stream.

    O_NOFOLLOW refuses a symbolic link swapped in after it was checked; O_NONBLOCK keeps a
    named pipe with no writer from blocking the read forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PayloadError(f"{name}: a symbolic link: only files are read, never what a link points to") \
                from None
        raise
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PayloadError(f"{name}: not a regular file")
        return f.read()


def parse(data: bytes, name: str, suffix: str) -> Any:
    """JSON, XML (RSS) or, for .txt/.md, the text itself.

    JSON must be an object or a list: a bare string or number is neither research nor a
    script (a script is a .txt or .md file), and `"hello"` must not become a video.
    """
    text = decode(data, name)
    suffix = suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return text
    stripped = text.lstrip()
    if stripped.startswith(")]}'"):  # Google's anti-JSON-hijacking prefix in raw widget saves
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else stripped[5:]
    if stripped.startswith("<"):
        return _xml(stripped, name)
    if suffix not in JSON_SUFFIXES and not stripped.startswith(("{", "[")):
        kind = f"a {suffix} file" if suffix else "a file without a suffix"
        raise ResearchError(f"{name}: cannot read {kind}, which is neither JSON nor XML: {READABLE}")
    try:
        value = load_json(stripped, name)
    except PayloadError as exc:
        raise ResearchError(str(exc)) from None
    if not isinstance(value, (dict, list)):
        kind = {str: "string", bool: "true or false", type(None): "null"}.get(type(value), "number")
        raise ResearchError(f"{name}: a bare JSON {kind} is neither research nor a script: research is a JSON "
                            "object or list, and a script goes in a .txt or .md file")
    return value


def _xml(text: str, name: str) -> ET.Element:
    """RSS and other XML through defusedxml: entity bombs and external entities are refused, not expanded."""
    try:
        root = DefusedET.fromstring(text)
    except defusedxml.EntitiesForbidden as exc:
        where = f" pointing at {exc.sysid!r}" if exc.sysid else ""
        raise ResearchError(f"{name}: XML refused: it declares an entity ({exc.name!r}{where}); entities can "
                            "expand without limit or read other files, and research XML needs none") from None
    except defusedxml.ExternalReferenceForbidden as exc:
        raise ResearchError(f"{name}: XML refused: it refers to an outside resource ({exc.sysid!r}), which is "
                            "never fetched") from None
    except defusedxml.DefusedXmlException as exc:
        raise ResearchError(f"{name}: XML refused: {type(exc).__name__}: {exc}") from None
    except ET.ParseError as exc:
        line, col = exc.position
        raise ResearchError(f"{name}: not valid XML: {_expat_reason(exc)} at line {line} column {col}") from None
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ResearchError(f"{name}: nested too deeply (more than {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in node)
    return root


def _expat_reason(exc: ET.ParseError) -> str:
    """Expat's words without its own ": line 1, column 2" (we say where once)."""
    return re.sub(r": line \d+, column \d+$", "", str(exc))
