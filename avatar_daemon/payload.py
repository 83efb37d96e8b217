"""Turning dropped bytes into a payload: encodings, JSON, XML or plain text."""

from __future__ import annotations

import codecs
import json
import xml.etree.ElementTree as ET
from typing import Any

from .errors import ResearchError

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}


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
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        hint = " (the file looks cut short)" if exc.pos >= len(stripped.rstrip()) - 1 else ""
        raise ResearchError(f"{name}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}") from None
