"""Hacker News research: Algolia search results, Firebase items and id lists, Sentigen story dumps.

Live fetch (campaigns): HN Algolia search from `base_url` (plugins.settings.hackernews).
"""

from __future__ import annotations

import time
from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, fetch, hookimpl, parse_time


def _is_item(x: Any) -> bool:
    return isinstance(x, dict) and isinstance(x.get("id"), int) and x.get("type") in (
        "story", "comment", "job", "poll", "pollopt")


class HackerNewsSource:
    name = "hackernews"

    def __init__(self, base_url: str, min_interval: float):
        self.base_url = base_url.rstrip("/")
        self.min_interval = min_interval

    async def fetch(self, query: dict[str, Any], http: Any) -> Research:
        """Algolia search: {query, hours (default 24), min_points, limit}."""
        since = int(time.time() - float(query.get("hours", 24)) * 3600)
        filters = [f"created_at_i>{since}"]
        if query.get("min_points"):
            filters.append(f"points>={int(query['min_points'])}")
        payload = await fetch(http, f"{self.base_url}/api/v1/search", service=self.name,
                              params={"query": str(query.get("query", "")), "tags": "story",
                                      "numericFilters": ",".join(filters),
                                      "hitsPerPage": int(query.get("limit", 30))},
                              min_interval=self.min_interval)
        return self.extract(payload)

    def detect(self, payload: Any, filename: str) -> float:
        if isinstance(payload, dict):
            if isinstance(payload.get("hits"), list) and ("nbHits" in payload or any(
                    isinstance(h, dict) and "objectID" in h for h in payload["hits"][:3])):
                return 0.97
            if payload.get("source") == "hackernews" or isinstance(payload.get("stories"), list):
                return 0.9
            if _is_item(payload):
                return 0.9
        if isinstance(payload, list) and payload:
            if all(isinstance(x, int) and not isinstance(x, bool) for x in payload):
                return 0.6
            items = [x for x in payload if x is not None]
            if items and all(_is_item(x) for x in items):
                return 0.9
        return 0.0

    def extract(self, payload: Any) -> Research:
        topic = "Hacker News"
        if isinstance(payload, dict) and isinstance(payload.get("hits"), list):
            insights = [self._hit(h) for h in payload["hits"] if isinstance(h, dict)]
            if payload.get("query"):
                topic = str(payload["query"])
        elif isinstance(payload, dict) and isinstance(payload.get("stories"), list):
            insights = [self._item(s) for s in payload["stories"] if isinstance(s, dict)]
            topic = str(payload.get("query") or topic)
        elif isinstance(payload, dict):
            insights = [self._item(payload)]
        elif payload and all(isinstance(x, int) for x in payload):
            raise ResearchError(f"a bare list of {len(payload)} story ids has no titles or text to narrate; "
                                "save the items themselves (or the Algolia search result)")
        else:
            insights = [self._item(x) for x in payload if isinstance(x, dict)]
        insights = [i for i in insights if i]
        insights.sort(key=lambda i: i.score or 0, reverse=True)
        if not insights:
            raise ResearchError("no stories left after dropping deleted, dead and empty items")
        return Research(source=self.name, title=f"{topic}: top stories" if topic != "Hacker News"
                        else "Top stories on Hacker News", topic=topic, insights=insights)

    def _hit(self, h: dict) -> Insight | None:
        title = h.get("title") or h.get("story_title")
        if not title:
            hl = (h.get("_highlightResult") or {}).get("title") or {}
            title = hl.get("value")
        text = clean_text(title, 300)
        body = clean_text(h.get("story_text") or h.get("comment_text"), 500)
        if not text:
            return None
        url = h.get("url") or h.get("story_url") or (
            f"https://news.ycombinator.com/item?id={h['objectID']}" if h.get("objectID") else None)
        score = h.get("points")
        return Insight(text=text, score=float(score) if isinstance(score, (int, float)) else None, url=url or None,
                       detail=body or None, created_at=parse_time(h.get("created_at_i") or h.get("created_at")))

    def _item(self, d: dict) -> Insight | None:
        if d.get("deleted") or d.get("dead"):
            return None
        text = clean_text(d.get("title"), 300)
        body = clean_text(d.get("text"), 500)
        if not text:
            text, body = body, ""
        if not text:
            return None
        url = d.get("url") or f"https://news.ycombinator.com/item?id={d.get('id')}"
        score = d.get("score")
        return Insight(text=text, score=float(score) if isinstance(score, (int, float)) else None, url=url,
                       detail=body or None, created_at=parse_time(d.get("time")))


@hookimpl
def register_sources(register, daemon):
    cfg = daemon.plugin_config("hackernews")
    register(HackerNewsSource(cfg.get("base_url", "https://hn.algolia.com"), float(cfg.get("min_interval", 1.0))))
