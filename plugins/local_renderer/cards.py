"""Research cards: the insight a sentence speaks about, drawn from the research's own fields.

A card shows only what the research holds: per source the fields its page shows (a Reddit
post's subreddit, upvotes and comments; a Hacker News story's points, comments and site; a
repository's owner/name, description, stars, language and topics; a Google Trends keyword's
interest over time as a line chart, or a trending search's traffic), read from the insight's
`meta` as the source plugins saved them. A plain script's card is its key sentence. A card is
up while the sentences that mention it are spoken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from PIL import Image, ImageDraw

from avatar_daemon import Insight, Research, clean_text

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
CHART_LINE = (25, 103, 210)     # the interest-over-time line
CHART_FILL = (226, 236, 252)    # under it
_STOP = set("""the a an and or but of to in on for with at by from is are was were be been this that these those it
its as has have had not no you your we our they their them he she his her i my me so than then there here what
which who how about into over more most very can will just also all any some one two new now""".split())
ENTER = 0.25   # seconds of slide in and out
MIN_MATCH = 2  # content words a sentence must share with an insight to show its card
KEY_SENTENCES = 5  # at most, of a plain script
_EMPHASIS = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_SENTENCE_END = re.compile(r"[.!?…][\"')\]*_]*(?=\s|$)")  # closing quotes and emphasis stay with it


@dataclass
class CardCue:
    insight: int   # index into the research's insights
    start: float
    end: float


def _content(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOP}


def with_key_sentences(research: Research | None) -> Research | None:
    """A plain script's research with its key sentences as insights, so they get cards too.

    The key sentences are the ones its author emphasised (Markdown **bold** or a > quote); in a
    script without emphasis, the first sentence that states a figure. Research with insights
    of its own is returned as it is.
    """
    if research is None or research.insights or not research.script_text:
        return research
    marked, figures = [], []
    for paragraph in re.split(r"\n\s*\n", research.script_text):
        quoted = all(line.lstrip().startswith(">") for line in paragraph.strip().splitlines())
        for sentence in _split_sentences(paragraph.strip()):
            text = clean_text(sentence, 300)
            if not text:
                continue
            if quoted or _EMPHASIS.search(sentence):
                marked.append(text)
            elif re.search(r"\d", text):
                figures.append(text)
    keys = marked[:KEY_SENTENCES] or figures[:1]
    return research.model_copy(update={"insights": [Insight(text=k) for k in keys]}) if keys else research


def _split_sentences(text: str) -> list[str]:
    out, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        out.append(text[start:end.end()])
        start = end.end()
    return [s.strip() for s in out + [text[start:]] if s.strip()]


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
    return [_fit(ln, fnt, width) for ln in lines]


def _fit(text: str, fnt, width: float) -> str:
    """One line cut to the width (a single word longer than the card: a URL, a long name)."""
    if fnt.getlength(text) <= width:
        return text
    while text and fnt.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def count(value: float) -> str:
    """A figure as people read it on a card: 950, 4.2k, 12.3k, 225k, 1.5M."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            scaled = value / size
            text = f"{scaled:.0f}" if abs(scaled) >= 100 else f"{scaled:.1f}".removesuffix(".0")
            return text + suffix
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _site(url: str | None) -> str | None:
    try:
        host = urlparse(url).hostname if url else None
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


@dataclass
class Face:
    """What one card says, part by part, every part taken from the research."""

    label: str
    colour: tuple[int, int, int]
    context: str | None = None          # after the label: the subreddit, the site, the keyword
    title: str = ""
    title_lines: int = 4
    body: str | None = None
    stats: list[tuple[str, str]] = field(default_factory=list)  # (figure, what it counts)
    chips: list[str] = field(default_factory=list)
    series: list[float] | None = None
    dates: list[str | None] | None = None
    footer: str | None = None


def face(research: Research, insight: Insight) -> Face:
    label, colour, unit = SOURCES.get(research.source, _PLAIN)
    m = insight.meta
    f = Face(label, colour, title=insight.text, body=insight.detail)
    score = insight.score
    if research.source == "reddit":
        f.context = m.get("subreddit") or research.topic
        f.stats = _stats((score, "upvotes"), (m.get("comments"), "comments"))
    elif research.source == "hackernews":
        f.context = m.get("site")
        f.stats = _stats((score, "points"), (m.get("comments"), "comments"))
    elif research.source == "github":
        if m.get("repo"):
            f.title, f.title_lines = m["repo"], 2
            f.body = m.get("description")
        f.stats = _stats((m.get("stars", score), "stars"), (m.get("stars_recent"), "new stars"))
        if isinstance(m.get("language"), str):
            f.stats.append((m["language"], "language"))
        f.chips = [t for t in m.get("topics", []) if isinstance(t, str)]
    elif research.source == "google_trends":
        series = [v for v in m.get("series", []) if _number(v) is not None]
        if len(series) >= 2:
            f.context, f.title_lines, f.body = m.get("keyword"), 2, None
            f.series = series
            dates = m.get("dates")
            f.dates = dates if isinstance(dates, list) and len(dates) == len(m["series"]) else None
        elif m.get("traffic"):
            f.stats, f.body = [(str(m["traffic"]), "searches")], m.get("news")
        elif m.get("growth"):
            f.stats = [(str(m["growth"]), "rising")]
        f.context = f.context or research.topic
    elif score is not None and unit:
        f.stats = _stats((score, unit))
    if research.source not in SOURCES and research.topic and research.topic != insight.text:
        f.context = research.topic
    if research.source not in ("reddit", "hackernews", "github"):  # theirs is the source's own site
        f.footer = _site(insight.url)  # a trending search's news story, a research job's link
    return f


def _stats(*pairs: tuple[Any, str]) -> list[tuple[str, str]]:
    return [(count(v), unit) for value, unit in pairs if (v := _number(value)) is not None]


class _Fonts:
    def __init__(self, width: int, path: str | None):
        self.small = font(width // 30, path)
        self.title = font(width // 16, path)
        self.body = font(width // 26, path)
        self.stat = font(width // 13, path)
        self.chip = font(width // 34, path)
        self.small_h, self.title_h = int(width / 30 * 1.3), int(width / 16 * 1.25)
        self.body_h, self.stat_h = int(width / 26 * 1.3), int(width / 13 * 1.15)


def card_image(research: Research, insight: Insight, width: int, font_path: str | None = None,
               max_height: int | None = None) -> Image.Image:
    """A white card with the source's badge, the insight and its figures; `info["chart"]` is the
    chart's box (x0, y0, x1, y1) in the card, when it has one."""
    f = face(research, insight)
    fonts = _Fonts(width, font_path)
    pad = width // 18
    inner = width - 2 * pad
    max_height = max_height or int(width * 0.74)  # clear of the captions below it
    title_lines, body_lines = f.title_lines, 2
    while True:  # fewer lines of text until the card fits its place on screen
        parts = _parts(f, fonts, width, pad, inner, title_lines, body_lines)
        height = pad + sum(h for _, h in parts) + pad
        if height <= max_height or (title_lines <= 1 and body_lines == 0):
            break
        if body_lines and (title_lines <= 2 or body_lines > 1):
            body_lines -= 1
        else:
            title_lines -= 1
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([0, 0, width - 1, height - 1], radius=pad // 2, fill=(255, 255, 255, 245))
    d.rounded_rectangle([0, 0, pad // 4, height - 1], radius=pad // 8, fill=f.colour + (255,))
    y = pad
    for draw, h in parts:
        draw(d, img, y)
        y += h
    return img


def _parts(f: Face, fonts: _Fonts, width: int, pad: int, inner: int, title_lines: int, body_lines: int):
    """The card's rows top to bottom: (a function drawing the row at y, its height)."""
    parts = []
    badge = f.label.upper()

    def header(d, img, y):
        d.text((pad, y), badge, font=fonts.small, fill=f.colour + (255,))
        if f.context and f.context != f.label:
            x = pad + fonts.small.getlength(badge + "   ")
            d.text((x, y), _fit(f.context, fonts.small, width - pad - x), font=fonts.small, fill=(100, 100, 110, 255))
    parts.append((header, fonts.small_h + pad // 2))

    title_font, title_h = (fonts.title, fonts.title_h) if f.series is None else (fonts.body, fonts.body_h)
    title = _wrap(f.title, title_font, inner, max(title_lines, 1))

    def draw_title(d, img, y):
        for i, line in enumerate(title):
            d.text((pad, y + i * title_h), line, font=title_font, fill=(20, 20, 28, 255))
    parts.append((draw_title, len(title) * title_h))

    body = _wrap(f.body, fonts.body, inner, body_lines) if f.body and body_lines else []
    if body:
        def draw_body(d, img, y):
            for i, line in enumerate(body):
                d.text((pad, y + pad // 3 + i * fonts.body_h), line, font=fonts.body, fill=(70, 70, 80, 255))
        parts.append((draw_body, pad // 3 + len(body) * fonts.body_h))

    if f.series is not None:
        chart_h = int(width * 0.36)

        def draw_chart(d, img, y):
            _chart(d, img, f, fonts, (pad, y + pad // 2, width - pad, y + pad // 2 + chart_h))
        parts.append((draw_chart, pad // 2 + chart_h + (fonts.small_h if f.dates else 0)))

    stats = _fitting_stats(f.stats, fonts, inner, pad)
    if stats:
        def draw_stats(d, img, y):
            x = pad
            for figure, unit in stats:
                d.text((x, y + pad // 2), figure, font=fonts.stat, fill=(20, 20, 28, 255))
                d.text((x, y + pad // 2 + fonts.stat_h), unit, font=fonts.small, fill=(100, 100, 110, 255))
                x += _stat_width(figure, unit, fonts) + pad
        parts.append((draw_stats, pad // 2 + fonts.stat_h + fonts.small_h))

    rows = _chip_rows(f.chips, fonts, inner, pad)
    if rows:
        chip_h = int(fonts.chip.size * 1.7)

        def draw_chips(d, img, y):
            for r, row in enumerate(rows):
                x, top = pad, y + pad // 2 + r * (chip_h + pad // 4)
                for chip in row:
                    w = fonts.chip.getlength(chip) + pad // 2
                    d.rounded_rectangle([x, top, x + w, top + chip_h], radius=chip_h // 2, fill=(221, 235, 255, 255))
                    d.text((x + pad // 4, top + (chip_h - fonts.chip.size) // 2 - 1), chip, font=fonts.chip,
                           fill=(9, 105, 218, 255))
                    x += w + pad // 4
        parts.append((draw_chips, pad // 2 + len(rows) * (chip_h + pad // 4)))

    if f.footer:
        def draw_footer(d, img, y):
            d.text((pad, y + pad // 3), _fit(f.footer, fonts.small, inner), font=fonts.small, fill=(110, 110, 120, 255))
        parts.append((draw_footer, pad // 3 + fonts.small_h))
    return parts


def _stat_width(figure: str, unit: str, fonts: _Fonts) -> float:
    return max(fonts.stat.getlength(figure), fonts.small.getlength(unit))


def _fitting_stats(stats: list[tuple[str, str]], fonts: _Fonts, inner: int, pad: int) -> list[tuple[str, str]]:
    out, used = [], 0.0
    for figure, unit in stats:
        w = _stat_width(figure, unit, fonts)
        if used + w > inner:
            break
        out.append((figure, unit))
        used += w + pad
    return out


def _chip_rows(chips: list[str], fonts: _Fonts, inner: int, pad: int, max_rows: int = 2) -> list[list[str]]:
    rows: list[list[str]] = []
    x = inner + 1
    for chip in chips:
        w = fonts.chip.getlength(chip) + pad // 2
        if w > inner:
            continue
        if x + w > inner:
            if len(rows) == max_rows:
                break
            rows.append([])
            x = 0
        rows[-1].append(chip)
        x += w + pad // 4
    return rows


def _chart(d: ImageDraw.ImageDraw, img: Image.Image, f: Face, fonts: _Fonts, box: tuple[int, int, int, int]) -> None:
    """Interest over time: the series as a line over its own range, labelled only with its own
    highest and lowest values and (when the data has them) its first and last dates."""
    series = f.series or []
    lo, hi = min(series), max(series)
    top_label, bottom_label = count(hi), count(lo)
    label_w = int(max(fonts.small.getlength(top_label), fonts.small.getlength(bottom_label))) + fonts.small.size // 2
    x0, y0, x1, y1 = box[0] + label_w, box[1], box[2], box[3]
    grid = (225, 225, 232, 255)
    d.line([(x0, y0), (x1, y0)], fill=grid, width=1)
    d.line([(x0, y1), (x1, y1)], fill=grid, width=1)
    d.text((box[0], y0 - fonts.small.size // 2), top_label, font=fonts.small, fill=(100, 100, 110, 255))
    d.text((box[0], y1 - fonts.small.size // 2 - 2), bottom_label, font=fonts.small, fill=(100, 100, 110, 255))
    span = hi - lo
    points = [(x0 + (x1 - x0) * i / (len(series) - 1),
               (y0 + y1) / 2 if span == 0 else y1 - (v - lo) / span * (y1 - y0)) for i, v in enumerate(series)]
    d.polygon([(x0, y1), *points, (x1, y1)], fill=CHART_FILL + (255,))
    d.line(points, fill=CHART_LINE + (255,), width=max(3, (x1 - x0) // 150), joint="curve")
    if f.dates and f.dates[0] and f.dates[-1]:
        first, last = _fit(f.dates[0], fonts.small, (x1 - x0) / 2), _fit(f.dates[-1], fonts.small, (x1 - x0) / 2)
        d.text((x0, y1 + 4), first, font=fonts.small, fill=(100, 100, 110, 255))
        d.text((x1 - fonts.small.getlength(last), y1 + 4), last, font=fonts.small, fill=(100, 100, 110, 255))
    img.info["chart"] = (x0, y0, x1, y1)


def slide(t: float, cue: CardCue) -> float | None:
    """How far the card is in (0 off screen .. 1 in place) at time t, easing in and out; None when
    it is not up."""
    end = cue.end + 0.4
    if t < cue.start - ENTER or t > end + ENTER:
        return None
    k = min(1.0, (t - cue.start + ENTER) / ENTER, (end + ENTER - t) / ENTER)
    return 1 - (1 - max(k, 0.0)) ** 3
