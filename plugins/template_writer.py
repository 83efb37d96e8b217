"""The template script writer: intro, numbered insights and outro, fitted to the format's length.

Templates come from `script_templates` in config/templates.yaml, one per source
(falling back to `default`); each names `title`, `intro`, `item`, `outro`,
`min_chars`, `max_chars` and `max_items`, with {topic}, {source_label}, {n}, {text},
{score} and {count} placeholders.
"""

from __future__ import annotations


from avatar_daemon import Research, Script, ScriptTemplate, estimate_seconds, hookimpl, to_spoken, words_for_seconds

SOURCE_LABELS = {
    "reddit": "Reddit", "hackernews": "Hacker News", "github": "GitHub", "google_trends": "Google Trends",
    "research_job": "our research", "text": "this script",
}
ORDINALS = ["First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth"]


class _Safe(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fmt(template: str, **values: object) -> str:
    return template.format_map(_Safe(values))


def _shorten(text: str, max_words: int) -> str:
    """Cut at the last sentence end that fits, else at a word, so nothing stops mid-thought."""
    words = text.split()
    if len(words) <= max_words:
        return text
    cut = " ".join(words[:max_words])
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > len(cut) // 3 else cut.rstrip(",;:") + "."


class TemplateWriter:
    name = "template"

    def __init__(self, templates: dict[str, ScriptTemplate]):
        self.templates = templates

    def template_for(self, name: str) -> ScriptTemplate:
        return self.templates.get(name) or self.templates.get("default") or ScriptTemplate()

    def write(self, research: Research, template: str, limits) -> Script:
        t = self.template_for(template)
        label = SOURCE_LABELS.get(research.source, research.source)
        values = dict(topic=research.topic, source_label=label, count=len(research.insights))
        title = to_spoken(_fmt(t.title, **values)).replace("\n\n", " ")
        intro = to_spoken(_fmt(t.intro, **values))
        outro = to_spoken(_fmt(t.outro, **values))
        speed = limits.voice_speed
        budget = limits.max_seconds * 0.95
        paragraphs = [intro]
        used = 0
        for n, insight in enumerate(research.insights[: t.max_items], start=1):
            text = to_spoken(insight.text).replace("\n\n", " ").rstrip(".!?")
            if not text:
                continue
            item = to_spoken(_fmt(t.item, n=n, ordinal=ORDINALS[min(n, 10) - 1], text=text,
                                  score=_score(insight.score)))
            candidate = "\n\n".join(paragraphs + [item, outro])
            if estimate_seconds(candidate, speed) > budget or len(candidate) > t.max_chars:
                spare = budget - estimate_seconds("\n\n".join(paragraphs + [outro]), speed)
                spare_words = words_for_seconds(spare, speed) - 4
                if used == 0 and spare_words > 8:
                    paragraphs.append(_shorten(item, spare_words))
                    used += 1
                break
            paragraphs.append(item)
            used += 1
        if len("\n\n".join(paragraphs)) < t.min_chars:  # short research: add detail so the video has substance
            for insight in research.insights[:used]:
                detail = to_spoken(insight.detail or "").replace("\n\n", " ")
                if detail and len("\n\n".join(paragraphs)) < t.min_chars:
                    paragraphs.append(_shorten(detail, 40))
        paragraphs.append(outro)
        text = "\n\n".join(p for p in paragraphs if p)
        return Script(title=title, text=text, estimated_seconds=estimate_seconds(text, speed), insights_used=used)


def _score(score: float | None) -> str:
    if score is None:
        return ""
    return f"{int(score):,}" if float(score).is_integer() else f"{score:.1f}"


@hookimpl
def register_script_writers(register, daemon):
    register(TemplateWriter(daemon.settings.script_templates))
