"""Hacker News research: Algolia search results, Firebase items and id lists, Sentigen story dumps.

Live fetch (campaigns): HN Algolia search from `base_url` (plugins.settings.hackernews).
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlparse

from avatar_daemon import Insight, Research, ResearchError, clean_text, fetch, hookimpl, parse_time

from ._shapes import SAMPLE, as_dict, list_score, number

TYPES = ("story", "comment", "job", "poll", "pollopt")
# What HN shows instead of text that is gone; scrapers of the site save these words.
GONE = re.compile(r"\[\s*(?:deleted|dead|flagged|removed)\s*\]", re.I)


def _is_id(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_item(x: Any) -> bool:
    """A Firebase item; a deleted one may be only `{"id": N, "deleted": true}`, and still is one."""
    return isinstance(x, dict) and _is_id(x.get("id")) and (
        x.get("type") in TYPES or x.get("deleted") is True or x.get("dead") is True)


def _gone(d: dict, *fields: str) -> bool:
    return bool(d.get("deleted") or d.get("dead")) or any(
        isinstance(d.get(f), str) and GONE.fullmatch(d[f].strip()) for f in fields)


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("http://", "https://")) else None


def _item_url(item_id: Any) -> str | None:
    return f"https://news.ycombinator.com/item?id={item_id}" if _is_id(item_id) or (
        isinstance(item_id, str) and item_id.isdigit()) else None


def _figures(comments: Any, url: str | None) -> dict[str, Any]:
    """What HN shows under a story: its comment count and the site it links to (none for Ask HN)."""
    meta: dict[str, Any] = {}
    if number(comments) is not None:
        meta["comments"] = number(comments)
    try:
        site = urlparse(url).hostname if url else None
    except ValueError:  # a malformed address ("http://[x"): no site to show
        site = None
    if site:
        meta["site"] = site.removeprefix("www.")
    return meta


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
            hits = payload.get("hits")
            if isinstance(hits, list) and ("nbHits" in payload or any(
                    isinstance(h, dict) and "objectID" in h for h in hits[:3])):
                return 0.97
            if payload.get("source") == "hackernews" or isinstance(payload.get("stories"), list):
                return 0.9
            if _is_item(payload):
                return 0.9
        if isinstance(payload, list) and payload:
            if any(_is_item(x) for x in payload[:SAMPLE]):
                return list_score(payload, lambda x: _is_item(x) or _is_id(x), 0.9)
            return list_score(payload, _is_id, 0.6)  # topstories: ids only, refused in extract
        return 0.0

    def extract(self, payload: Any) -> Research:
        topic = "Hacker News"
        if isinstance(payload, dict) and isinstance(payload.get("hits"), list):
            insights = [self._hit(h) for h in payload["hits"] if isinstance(h, dict)]
            topic = clean_text(payload.get("query"), 80) or topic
        elif isinstance(payload, dict) and isinstance(payload.get("stories"), list):
            insights = [self._item(s) for s in payload["stories"] if isinstance(s, dict)]
            topic = clean_text(payload.get("query"), 80) or topic
        elif _is_item(payload):
            insights = [self._item(payload)]
        elif isinstance(payload, list) and any(isinstance(x, dict) for x in payload):
            insights = [self._item(x) for x in payload if isinstance(x, dict)]
        elif isinstance(payload, list) and any(_is_id(x) for x in payload):
            ids = sum(1 for x in payload if _is_id(x))
            raise ResearchError(f"a bare list of {ids} story ids has no titles or text to narrate; "
                                "save the items themselves (or the Algolia search result)")
        else:
            raise ResearchError("there are no Hacker News stories, comments or search hits in it")
        insights = [i for i in insights if i]
        if not insights:
            raise ResearchError("no stories left after dropping deleted, dead and empty items")
        insights.sort(key=lambda i: i.score or 0, reverse=True)
        return Research(source=self.name, title=f"{topic}: top stories" if topic != "Hacker News"
                        else "Top stories on Hacker News", topic=topic, insights=insights)

    def _hit(self, h: dict) -> Insight | None:
        """An Algolia hit: a story, or a comment (no title of its own: its story's title stands in)."""
        if _gone(h, "title", "story_text", "comment_text"):
            return None
        title = next((h[k] for k in ("title", "story_title") if h.get(k) not in (None, "")), None)
        if title is None:  # some saves keep only the highlighted title
            title = as_dict(as_dict(h.get("_highlightResult")).get("title")).get("value")
        text = clean_text(title, 300)
        body = clean_text(h.get("story_text") or h.get("comment_text"), 500)
        if not text:
            return None
        url = _url(h.get("url")) or _url(h.get("story_url"))
        return Insight(text=text, score=number(h.get("points")), url=url or _item_url(h.get("objectID")),
                       detail=body or None, created_at=parse_time(h.get("created_at_i") or h.get("created_at")),
                       meta=_figures(h.get("num_comments"), url))

    def _item(self, d: dict) -> Insight | None:
        """A Firebase item (or Algolia's /items/ tree node, which says `points` and `created_at`)."""
        if _gone(d, "title", "text"):
            return None
        text = clean_text(d.get("title"), 300)
        body = clean_text(d.get("text"), 500)
        if not text:
            text, body = body, ""
        if not text:
            return None
        score = number(d["score"]) if "score" in d else number(d.get("points"))
        url = _url(d.get("url"))
        return Insight(text=text, score=score, url=url or _item_url(d.get("id")),
                       detail=body or None, created_at=parse_time(d.get("time") or d.get("created_at")),
                       meta=_figures(d.get("descendants", d.get("num_comments")), url))


@hookimpl
def register_sources(register, daemon):
    cfg = daemon.plugin_config("hackernews")
    register(HackerNewsSource(cfg.get("base_url", "https://hn.algolia.com"), float(cfg.get("min_interval", 1.0))))
