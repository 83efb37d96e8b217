"""Text made fit to be read aloud: no markup, URLs or emoji; numbers and symbols in words."""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^>]+>")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(.+?)\s*#*\s*$", re.M)
_MD_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+(.*)$", re.M)
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~|`+)(?=\S)(.+?)(?<=\S)\1")
_MD_FENCE = re.compile(r"```.*?```", re.S)
_MD_QUOTE = re.compile(r"^\s*>+\s?", re.M)

_SCALE = {"k": "thousand", "m": "million", "b": "billion", "bn": "billion", "t": "trillion"}
_CURRENCY = {"$": "dollars", "€": "euros", "£": "pounds", "¥": "yen"}
_MONEY = re.compile(r"([$€£¥])\s?(\d[\d,]*(?:\.\d+)?)\s?(k|m|bn|b|t)?\b", re.I)
_SCALED = re.compile(r"\b(\d+(?:\.\d+)?)(k|m|bn|b)\b(?!\w)", re.I)
_PERCENT = re.compile(r"(\d(?:[\d,]*\d)?(?:\.\d+)?)\s?%")
_VERSION = re.compile(r"\bv(\d+(?:\.\d+)*)\b", re.I)
_TIMES = re.compile(r"\b(\d+(?:\.\d+)?)x\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_PLUS = re.compile(r"(\d)\+")
_ABBREV = [(re.compile(pattern), words) for pattern, words in {
    r"\be\.g\.": "for example", r"\bi\.e\.": "that is", r"\bvs\.?(?=\s)": "versus", r"\betc\.": "et cetera",
    r"&": " and ", r"\bw/": "with ", r"\bHN\b": "Hacker News", r"\bTIL\b": "today I learned",
}.items()]


def strip_markup(text: str) -> str:
    """HTML tags and entities, and Markdown syntax, removed; headings become sentences."""
    text = html.unescape(_TAG.sub(" ", html.unescape(text)))
    text = _MD_FENCE.sub(" ", text)
    text = _MD_IMAGE.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_HEADING.sub(lambda m: _sentence(m.group(1)), text)
    text = _MD_BULLET.sub(lambda m: _sentence(m.group(1)), text)
    text = _MD_QUOTE.sub("", text)
    for _ in range(2):  # nested emphasis such as ***word***
        text = _MD_EMPHASIS.sub(r"\2", text)
    return text


def _sentence(s: str) -> str:
    s = s.strip()
    return s if not s or s[-1] in ".!?:;" else s + "."


def _is_emoji(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat in ("So", "Sk", "Cs", "Co") or ch in "\u200d\ufe0f\ufe0e" or 0x1F000 <= ord(ch) <= 0x1FAFF


def _money(m: re.Match) -> str:
    amount = m.group(2).replace(",", "")
    scale = _SCALE.get((m.group(3) or "").lower())
    return f"{amount} {scale + ' ' if scale else ''}{_CURRENCY[m.group(1)]}"


def to_spoken(text: str) -> str:
    """Text as it should be read aloud, keeping paragraph breaks (they become pauses)."""
    text = strip_markup(text)
    text = _URL.sub("", text)
    if not text.isascii():  # most research is plain ASCII: skip the per-character look
        text = "".join(" " if _is_emoji(ch) else ch for ch in text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(lambda m: f"{m.group(1)} percent", text)
    text = _VERSION.sub(lambda m: f"version {m.group(1)}", text)
    text = _TIMES.sub(lambda m: f"{m.group(1)} times", text)
    text = _SCALED.sub(lambda m: f"{m.group(1)} {_SCALE[m.group(2).lower()]}", text)
    text = _PLUS.sub(r"\1 plus", text)
    text = _THOUSANDS.sub("", text)
    for pattern, words in _ABBREV:
        text = pattern.sub(words, text)
    paragraphs = [re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", " ", p) for p in re.split(r"\n\s*\n", text)]
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in paragraphs]
    paragraphs = [re.sub(r"\s+([,.!?;:])", r"\1", p) for p in paragraphs]
    paragraphs = [re.sub(r"([.!?])\.+", r"\1", p) for p in paragraphs]
    return "\n\n".join(p for p in paragraphs if re.search(r"\w", p))


WORDS_PER_SECOND = 2.75
"""Measured on the bundled Piper voice at speed 1.0 (about 165 words a minute)."""


def estimate_seconds(text: str, voice_speed: float = 1.0) -> float:
    words = len(text.split())
    pauses = text.count("\n\n") * 0.45
    return round(words / (WORDS_PER_SECOND * voice_speed) + pauses, 1)


def words_for_seconds(seconds: float, voice_speed: float = 1.0) -> int:
    """How many words fit in `seconds` of speech: the inverse of estimate_seconds without pauses."""
    return max(0, int(seconds * WORDS_PER_SECOND * voice_speed))


def clean_text(text: object, limit: int = 600) -> str:
    """Display text from a research field: markup gone, whitespace folded, long bodies cut at a word."""
    if not isinstance(text, str):
        return ""
    s = re.sub(r"\s+", " ", strip_markup(text)).strip()
    if len(s) > limit:
        s = s[:limit].rsplit(" ", 1)[0] + "…"
    return s
