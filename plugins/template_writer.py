"""The template script writer: an opener, each insight with its own figures, a closer; fitted to the format.

Templates come from `script_templates` in config/templates.yaml, one per source (falling back
to `default`); each names `title`, `intro` and `outro` (one line or a list to vary over),
`item`, `facts`, `min_content_length`, `max_content_length` and `max_items`, with {topic},
{source_label}, {n}, {ordinal}, {text}, {score}, {detail} and {count} placeholders. Every figure
is spoken in words (avatar_daemon.numbers), so the captions show what the voice says.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata

from avatar_daemon import (
    Insight, Research, Script, ScriptTemplate, estimate_seconds, hookimpl, numbers_in_words, say_number, to_spoken,
    words_for_seconds,
)

SOURCE_LABELS = {
    "reddit": "Reddit", "hackernews": "Hacker News", "github": "GitHub", "google_trends": "Google Trends",
    "research_job": "our research", "text": "this script",
}
ORDINALS = ["First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth"]
GENERIC_INTRO = "Here's what's trending on {source_label}."
# Voices whose language is written in Latin letters: for them, other scripts are unspeakable.
LATIN_LANGUAGES = {"en", "de", "fr", "es", "it", "pt", "nl", "da", "sv", "no", "nb", "fi", "pl", "cs", "ro", "tr",
                   "hu", "ca", "id", "ms", "vi", "sw", "cy", "is", "sk", "sl", "hr", "lt", "lv", "et"}
MAX_HASHTAGS = 8


class _Safe(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fmt(template: str, **values: object) -> str:
    return template.format_map(_Safe(values))


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _spoken(text: str, rough: bool = False) -> str:
    """One paragraph as it is read aloud: markup gone, every figure in words."""
    return numbers_in_words(to_spoken(text).replace("\n\n", " "), rough)


def _shorten(text: str, max_words: int) -> str:
    """Cut at the last sentence end that fits, else at a word, so nothing stops mid-thought."""
    words = text.split()
    if len(words) <= max_words:
        return text
    cut = " ".join(words[:max_words])
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > len(cut) // 3 else cut.rstrip(",;:") + "."


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _is_latin_letter(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("LATIN")


def speakable(text: str, language: str) -> tuple[str, bool]:
    """`text` without the words a voice of `language` cannot read, and whether anything went.

    Only Latin-script voices are checked (the bundled ones are English). Transliteration was
    tried and left out on purpose: romanised Chinese or Japanese read by an English voice is
    not the title a viewer would recognise, and Japanese kanji come out as Chinese readings.
    """
    if text.isascii() or language.split("-")[0].lower() not in LATIN_LANGUAGES:
        return text, False
    words = text.split()
    kept = [w for w in words if not any(ch.isalpha() and not _is_latin_letter(ch) for ch in w)]
    return " ".join(kept), len(kept) < len(words)


def _pick(options: str | list[str], seed: int) -> str:
    if isinstance(options, str):
        return options
    return options[seed % len(options)] if options else ""


def _seed(research: Research, salt: str) -> int:
    """The same research always gets the same opener; the next day's research likely another."""
    key = "\n".join([salt, research.source, research.topic, *(i.text for i in research.insights[:5])])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def _redundant(topic: str, label: str) -> bool:
    """A topic that only repeats the source ("Reddit" on Reddit) adds nothing but an echo."""
    t, lab = _norm(topic), _norm(label)
    return not t or t == lab or lab in t or t in ("all", "rall", "popular", "frontpage", "trending")


def hashtag(text: str) -> str:
    """'hacker news' -> '#HackerNews'; '' when nothing usable is left."""
    words = re.findall(r"[^\W_]+", re.sub(r"['’]", "", text))
    tag = "".join(w if w[:1].isupper() else w.capitalize() for w in words)
    return f"#{tag}" if tag and not tag.isdigit() and len(tag) <= 30 else ""


def hashtags(research: Research, label: str, used: list[Insight], extra: list[str]) -> list[str]:
    """The template's own tags, the source, the topic and short insight names (a repo, a search)."""
    own = research.source not in ("research_job", "text")  # "our research" is no one's hashtag
    candidates = [*extra, label if own else ""]
    topic = re.sub(r"^r/", "", research.topic)
    if len(topic.split()) <= 3:
        candidates.append(topic)
    for insight in used:
        name = insight.text.split(":")[0]
        if len(name.split()) <= 3:
            candidates.append(name)
    tags, seen = [], set()
    for c in candidates:
        # A template's own tag is kept as its author spelled it.
        tag = "#" + c.lstrip("#") if c in extra and re.fullmatch(r"#?[^\W_]+", c) else hashtag(c.lstrip("#"))
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            tags.append(tag)
    return tags[:MAX_HASHTAGS]


def description(title: str, lead: str, used: list[Insight]) -> str:
    """What the video covers, for its page: the template's lead line, then each insight and its link."""
    lines = [lead or title, ""]
    for n, insight in enumerate(used, start=1):
        lines.append(f"{n}. {insight.text}" + (f" {insight.url}" if insight.url else ""))
    return "\n".join(lines).strip()


class TemplateWriter:
    name = "template"

    def __init__(self, templates: dict[str, ScriptTemplate]):
        self.templates = templates

    def template_for(self, name: str) -> ScriptTemplate:
        return self.templates.get(name) or self.templates.get("default") or ScriptTemplate()

    def write(self, research: Research, template: str, limits) -> Script:
        t = self.template_for(template)
        language = limits.language
        notes: list[str] = []
        label = SOURCE_LABELS.get(research.source, research.source)
        topic, cut = speakable(research.topic, language)
        if cut:
            notes.append(f"topic {research.topic!r} is not in a script the voice reads: left out of the narration")
        echo = _redundant(topic, label) or cut
        values = dict(topic=topic, source_label=label, count=len(research.insights))
        intros = [t.intro] if isinstance(t.intro, str) else list(t.intro)
        if echo:
            intros = [i for i in intros if "{topic}" not in i] or [GENERIC_INTRO]
        intro = _spoken(_fmt(_pick(intros, _seed(research, "intro")), **values))
        outro = _spoken(_fmt(_pick(t.outro, _seed(research, "outro")), **values))
        title = research.title if echo and "{topic}" in t.title else _fmt(t.title, **values)
        title = re.sub(r"\s+", " ", title).strip()

        speed = limits.voice_speed
        budget = limits.max_seconds * 0.95
        facts_use_detail = "detail" in _fields(t.facts)

        def fits(paragraphs: list[str]) -> bool:
            text = "\n\n".join(paragraphs + [outro])
            return estimate_seconds(text, speed) <= budget and len(text) <= t.max_chars

        paragraphs = [intro]
        used: list[Insight] = []
        for insight in research.insights:
            if len(used) >= t.max_items:
                break
            raw, cut = speakable(insight.text, language)
            if cut:
                whole = len(raw.split()) < 2
                notes.append(f"insight {insight.text!r}: " + (
                    "not in a script the voice reads, left out of the narration" if whole else
                    "its words in a script the voice cannot read were left out of the narration"))
                if whole:
                    continue
            text = _spoken(raw).rstrip(".!?:;,")
            if not text:
                continue
            n = len(used) + 1
            score = say_number(insight.score, rough=True) if insight.score is not None else ""
            item = _fmt(t.item, n=n, ordinal=ORDINALS[min(n, 10) - 1], text=text, score=score)
            facts = self._facts(t.facts, score, insight, language)
            item = _spoken(f"{item} {facts}" if facts else item)
            if not fits(paragraphs + [item]):
                spare = budget - estimate_seconds("\n\n".join(paragraphs + [outro]), speed)
                spare_words = words_for_seconds(spare, speed) - 4
                if not used and spare_words > 8:
                    paragraphs.append(_shorten(item, spare_words))
                    used.append(insight)
                break
            paragraphs.append(item)
            used.append(insight)
        if not facts_use_detail:
            self._lengthen(paragraphs, used, t, fits, language)
        paragraphs.append(outro)
        text = "\n\n".join(p for p in paragraphs if p)
        lead = _fmt(t.description, **{**values, "topic": research.topic}) if t.description else ""
        return Script(title=title, text=text, estimated_seconds=estimate_seconds(text, speed),
                      insights_used=len(used), description=description(title, lead, used),
                      hashtags=hashtags(research, label, used, t.hashtags), notes=notes, writer=self.name)

    @staticmethod
    def _facts(template: str, score: str, insight: Insight, language: str) -> str:
        """The item's own figures in words, or nothing when the template needs a figure it lacks."""
        if not template:
            return ""
        detail = speakable(insight.detail or "", language)[0]
        detail = _shorten(_spoken(detail, rough=True).rstrip(".!?:;,"), 25) if detail else ""
        needed = _fields(template)
        if ("score" in needed and not score) or ("detail" in needed and not detail):
            return ""
        facts = _fmt(template, score=score, detail=detail).strip()
        return facts[:1].upper() + facts[1:]

    @staticmethod
    def _lengthen(paragraphs: list[str], used: list[Insight], t: ScriptTemplate, fits, language: str) -> None:
        """Short research: each item gains its own detail, in place, so the video has substance."""
        for i, insight in enumerate(used, start=1):
            if len("\n\n".join(paragraphs)) >= t.min_chars:
                return
            detail = _spoken(speakable(insight.detail or "", language)[0])
            if not detail:
                continue
            longer = paragraphs[:i] + [f"{paragraphs[i]} {_shorten(detail, 40)}"] + paragraphs[i + 1:]
            if fits(longer):
                paragraphs[:] = longer


@hookimpl
def register_script_writers(register, daemon):
    register(TemplateWriter(daemon.settings.script_templates))
