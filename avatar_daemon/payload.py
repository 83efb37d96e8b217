"""Turning dropped bytes into a payload: encodings, JSON, XML or plain text."""

from __future__ import annotations

import codecs
import json
import xml.etree.ElementTree as ET
from typing import Any

from .errors import PayloadError, ResearchError

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
MAX_DEPTH = 64
"""Nesting deeper than any research format needs; deeper input is refused, never recursed into."""


def load_json(text: str | bytes, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """JSON from outside, or PayloadError naming `what` and the reason (bad syntax, or nested too deeply).

    The one JSON reader for untrusted bytes (files, HTTP bodies, Slack and webhook payloads):
    a hostile document nested 100,000 deep must be a sentence, not a RecursionError.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(exc.doc.rstrip()) - 1
        raise PayloadError(f"{what}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                           + (" (it looks cut short)" if cut else "")) from None
    except RecursionError:
        raise PayloadError(f"{what}: nested too deeply (more than {max_depth} levels)") from None
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{what}: not valid JSON: not UTF-8 text at byte {exc.start}") from None
    check_depth(value, what, max_depth)
    return value


def check_depth(value: Any, what: str, max_depth: int = MAX_DEPTH) -> None:
    """Walk containers without recursion; PayloadError past `max_depth` levels."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise PayloadError(f"{what}: nested too deeply (more than {max_depth} levels)")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


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


def parse(data: bytes, name: str, suffix: str) -> Any:
    """JSON, XML (RSS) or, for .txt/.md, the text itself."""
    text = decode(data, name)
    stripped = text.lstrip()
    if suffix.lower() in TEXT_SUFFIXES:
        return text
    if stripped.startswith(")]}'"):  # Google's anti-JSON-hijacking prefix in raw widget saves
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else stripped[5:]
    if stripped.startswith("<"):
        try:
            return ET.fromstring(stripped)
        except ET.ParseError as exc:
            line, col = exc.position
            raise ResearchError(f"{name}: not valid XML: {exc.msg if hasattr(exc, 'msg') else exc} "
                                f"at line {line} column {col}") from None
    try:
        return load_json(stripped, name)
    except PayloadError as exc:
        raise ResearchError(str(exc)) from None
