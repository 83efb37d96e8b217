"""Plain .txt and .md drops: the file is the script itself, spoken as written (Markdown read as prose)."""

from __future__ import annotations

from typing import Any

from avatar_daemon import Research, ResearchError, clean_text, hookimpl


class TextScriptSource:
    name = "text"

    def detect(self, payload: Any, filename: str) -> float:
        return 0.9 if isinstance(payload, str) else 0.0

    def extract(self, payload: Any) -> Research:
        if not isinstance(payload, str):
            raise ResearchError("a script is text, not JSON")
        lines = [line.strip() for line in payload.splitlines() if clean_text(line, 100)]
        if not lines:
            raise ResearchError("the script is empty: it has no text to show or speak")
        first = clean_text(lines[0], 100).rstrip(".") or "Script"
        title = first if lines[0].lstrip().startswith("#") or len(first) <= 80 else first[:77] + "..."
        return Research(source=self.name, title=title, topic=title, insights=[], script_text=payload)


@hookimpl
def register_sources(register):
    register(TextScriptSource())
