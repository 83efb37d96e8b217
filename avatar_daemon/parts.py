"""Scripts longer than a format allows: refused with the limit in the sentence, or split into parts.

A part ends between sentences, never inside one, and the parts come out about equally long, so
a 70 s script for a 60 s format becomes two of 35 s rather than 60 s and 10 s. The length is the
one estimate everything uses (spoken.estimate_seconds), so a part the intake let through is
one the renderer takes.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re

from .errors import ResearchError
from .models import TITLE_MAX_CHARS, FormatSpec, Part, Script
from .spoken import PARAGRAPH_PAUSE_SECONDS, WORDS_PER_SECOND, estimate_seconds, words_for_seconds

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"')\]])\s+")


def fitted(script: Script, fmt: FormatSpec, voice_speed: float | None, split: bool) -> list[Script]:
    """[script] when it fits `fmt`; else its parts when `split`; else ResearchError with the limit."""
    speed = voice_speed or fmt.voice_speed
    seconds = estimate_seconds(script.text, speed)
    if seconds <= fmt.max_seconds:
        return [script]
    if not split:
        try:
            offer = f", or ask for split: true to make it {len(_split(script.text, fmt, speed))} videos"
        except ResearchError:  # a sentence alone is too long: splitting would not help
            offer = ""
        raise ResearchError(
            f"the script runs about {seconds:.0f} s read aloud ({len(script.text.split()):,} words), over the "
            f"{fmt.max_seconds:g} s format {fmt.name} allows: shorten it to about "
            f"{words_for_seconds(fmt.max_seconds, speed):,} words{offer}")
    chunks = _split(script.text, fmt, speed)
    series = hashlib.sha256(f"{fmt.name}\n{speed}\n{script.text}".encode()).hexdigest()[:16]
    n = len(chunks)
    return [script.model_copy(update={
        "title": part_title(script.title, k, n), "text": text, "estimated_seconds": estimate_seconds(text, speed),
        "part": Part(number=k, of=n, series=series)}) for k, text in enumerate(chunks, 1)]


def part_title(title: str, number: int, of: int) -> str:
    suffix = f" (Part {number} of {of})"
    return title[:TITLE_MAX_CHARS - len(suffix)].rstrip() + suffix


def _split(text: str, fmt: FormatSpec, speed: float) -> list[str]:
    """The text cut between sentences into the fewest parts that fit, as even as that allows."""
    units = []  # (paragraph, sentence)
    for p, paragraph in enumerate(x for x in text.split("\n\n") if x.strip()):
        units += [(p, s) for s in _SENTENCE_END.split(paragraph.strip()) if s.strip()]
    seconds = [len(s.split()) / (WORDS_PER_SECOND * speed) for _, s in units]
    limit = fmt.max_seconds
    for i, s in enumerate(seconds):
        if s > limit:
            raise ResearchError(
                f"one sentence of the script runs about {s:.0f} s read aloud, over the {limit:g} s format "
                f"{fmt.name} allows, and a script is split only between sentences: break it up "
                f"(it starts \"{' '.join(units[i][1].split()[:8])}\")")
    total = sum(seconds)
    for n in itertools.count(max(2, math.ceil(total / limit))):
        for slack in (1.0, 1.05, 1.1, 1.2, 1.35, 1.5, 2.0, math.inf):  # even parts first, then fewer of them
            target = min(limit, total / n * slack)
            groups = _greedy(units, seconds, target)
            if len(groups) <= n:
                return ["\n\n".join(" ".join(s for _, s in para) for para in _paragraphs(g)) for g in groups]
            if target == limit:
                break
    raise AssertionError("unreachable: at the limit itself the greedy split always fits")


def _greedy(units, seconds, target) -> list[list[tuple[int, str]]]:
    groups: list[list[tuple[int, str]]] = [[]]
    used = 0.0
    for unit, s in zip(units, seconds):
        group = groups[-1]
        pause = PARAGRAPH_PAUSE_SECONDS if group and group[-1][0] != unit[0] else 0.0
        if group and used + pause + s > target:
            groups.append([])
            used, pause = 0.0, 0.0
        groups[-1].append(unit)
        used += pause + s
    return groups


def _paragraphs(group: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    out: list[list[tuple[int, str]]] = []
    for unit in group:
        if not out or out[-1][-1][0] != unit[0]:
            out.append([])
        out[-1].append(unit)
    return out
