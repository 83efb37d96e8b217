"""Research cards: the insight a sentence speaks about, drawn from the research's own fields.

A card shows only what the research holds: the source, the insight's text and detail, its score
under the source's own name for it, and the site it links to. It is up while the sentences that
mention it are spoken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

from PIL import Image, ImageDraw

from avatar_daemon import Insight, Research

from .captions import font
from .tts import Word

# source name -> (label, colour, what its score counts)
SOURCES = {
    "reddit": ("Reddit", (255, 69, 0), "upvotes"),
    "hackernews": ("Hacker News", (255, 102, 0), "points"),
    "github": ("GitHub", (36, 41, 47), "stars"),
    "google_trends": ("Google Trends", (66, 133, 244), "searches"),
}
_PLAIN = ("Key point", (79, 70, 229), "")
_STOP = set("""the a an and or but of to in on for with at by from is are was were be been this that these those it
its as has have had not no you your we our they their them he she his her i my me so than then there here what
which who how about into over more most very can will just also all any some one two new now""".split())
ENTER = 0.25   # seconds of slide in and out
MIN_MATCH = 2  # content words a sentence must share with an insight to show its card


@dataclass
class CardCue:
    insight: int   # index into the research's insights
    start: float
    end: float


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOP}


def plan(research: Research, words: list[Word]) -> list[CardCue]:
    """For each spoken sentence, the insight it shares the most content words with (if enough);
    a run of sentences about the same insight keeps one card up."""
    insights = [_content(i.text) for i in research.insights]
    cues: list[CardCue] = []
    for sentence in _sentences(words):
        said = _content(" ".join(w.text for w in sentence))
        best, best_n = None, 0
        for k, words_of in enumerate(insights):
            n = len(said & words_of)
            if n > best_n and n >= min(MIN_MATCH, len(words_of)):
                best, best_n = k, n
        if best is None:
            continue
        start, end = sentence[0].start, sentence[-1].end
        if cues and cues[-1].insight == best and start - cues[-1].end < 1.0:
            cues[-1].end = end
        else:
            cues.append(CardCue(best, start, end))
    return cues


def _sentences(words: list[Word]) -> list[list[Word]]:
    out, current = [], []
    for w in words:
        current.append(w)
        if w.text.rstrip("\"')").endswith((".", "!", "?")):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _wrap(text: str, fnt, width: float, max_lines: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and fnt.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(".,;:") + "…"
    return lines


def _count(score: float) -> str:
    if score >= 10000:
        return f"{score / 1000:.0f}k"
    if score >= 1000:
        return f"{score / 1000:.1f}k"
    return f"{int(score)}" if float(score).is_integer() else f"{score:.1f}"


def card_image(research: Research, insight: Insight, width: int, font_path: str | None = None) -> Image.Image:
    """A white card with the source's badge, the insight, its detail and its figures."""
    label, colour, unit = SOURCES.get(research.source, _PLAIN)
    pad = width // 18
    title_f, body_f, small_f = font(width // 16, font_path), font(width // 26, font_path), font(width // 30, font_path)
    inner = width - 2 * pad
    title = _wrap(insight.text, title_f, inner, 4)
    detail = _wrap(insight.detail, body_f, inner, 2) if insight.detail else []
    figures = []
    if insight.score is not None and unit:
        figures.append(f"{_count(insight.score)} {unit}")
    site = urlparse(insight.url).hostname if insight.url else None
    if site:
        figures.append(site.removeprefix("www."))
    title_h, body_h, small_h = int(width / 16 * 1.25), int(width / 26 * 1.3), int(width / 30 * 1.3)
    height = (pad + small_h + pad // 2 + len(title) * title_h + (pad // 3 + len(detail) * body_h if detail else 0)
              + (pad // 2 + small_h if figures else 0) + pad)
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([0, 0, width - 1, height - 1], radius=pad // 2, fill=(255, 255, 255, 245))
    d.rounded_rectangle([0, 0, pad // 4, height - 1], radius=pad // 8, fill=colour + (255,))
    y = pad
    d.text((pad, y), label.upper(), font=small_f, fill=colour + (255,))
    if research.topic and research.topic != label:
        x = pad + small_f.getlength(label.upper() + "   ")
        d.text((x, y), _wrap(research.topic, small_f, inner - x, 1)[0], font=small_f, fill=(100, 100, 110, 255))
    y += small_h + pad // 2
    for line in title:
        d.text((pad, y), line, font=title_f, fill=(20, 20, 28, 255))
        y += title_h
    if detail:
        y += pad // 3
        for line in detail:
            d.text((pad, y), line, font=body_f, fill=(70, 70, 80, 255))
            y += body_h
    if figures:
        y += pad // 2
        d.text((pad, y), "  ·  ".join(figures), font=small_f, fill=(90, 90, 100, 255))
    return img


def slide(t: float, cue: CardCue) -> float | None:
    """How far the card is in (0 off screen .. 1 in place) at time t, easing in and out; None when
    it is not up."""
    end = cue.end + 0.4
    if t < cue.start - ENTER or t > end + ENTER:
        return None
    k = min(1.0, (t - cue.start + ENTER) / ENTER, (end + ENTER - t) / ENTER)
    return 1 - (1 - max(k, 0.0)) ** 3
