"""Reddit research: listings, threads with comments, PRAW exports and Sentigen research dumps.

Live fetch (campaigns): a subreddit listing from `base_url` (plugins.settings.reddit).
"""

from __future__ import annotations

from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, fetch, hookimpl, parse_time

REMOVED = {"[deleted]", "[removed]", ""}
PRAW_KEYS = {"title", "score"}
PRAW_HINTS = {"num_comments", "comms_num", "created_utc", "permalink", "subreddit", "upvotes", "selftext"}


def _num(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", "")) if value not in (None, "") else None
    except ValueError:
        return None


def _link(d: dict) -> str | None:
    if d.get("permalink"):
        p = str(d["permalink"])
        return p if p.startswith("http") else "https://www.reddit.com" + p
    url = d.get("url") or d.get("link")
    return url if isinstance(url, str) and url.startswith("http") else None


def _is_listing(x: Any) -> bool:
    return isinstance(x, dict) and x.get("kind") == "Listing" and isinstance(x.get("data"), dict)


def _columns_to_records(d: dict) -> list[dict]:
    """pandas `to_json()` default orient: {"title": {"0": ..}, "score": {"0": ..}}."""
    index = list(next(iter(d.values())).keys())
    return [{col: d[col].get(i) for col in d if isinstance(d[col], dict)} for i in index]


class RedditSource:
    name = "reddit"

    def __init__(self, base_url: str, min_interval: float):
        self.base_url = base_url.rstrip("/")
        self.min_interval = min_interval

    async def fetch(self, query: dict[str, Any], http: Any) -> Research:
        """A subreddit listing: {subreddit, listing: top|hot|new|rising, time: day|week, limit}."""
        sub = str(query.get("subreddit") or "").strip().removeprefix("r/")
        if not sub:
            raise ResearchError("reddit: a live fetch needs `subreddit`")
        listing = query.get("listing", "top")
        payload = await fetch(http, f"{self.base_url}/r/{sub}/{listing}.json", service=self.name,
                              params={"t": query.get("time", "day"), "limit": int(query.get("limit", 25)),
                                      "raw_json": 1},
                              headers={"User-Agent": "avatar-daemon/0.1 (campaign research)"},
                              min_interval=self.min_interval)
        return self.extract(payload)

    def detect(self, payload: Any, filename: str) -> float:
        if _is_listing(payload):
            children = payload["data"].get("children") or []
            return 0.95 if any(isinstance(c, dict) and c.get("kind") in ("t3", "t1") for c in children) else 0.5
        if isinstance(payload, list) and len(payload) == 2 and all(_is_listing(x) for x in payload):
            return 0.98
        if isinstance(payload, dict) and isinstance(payload.get("posts"), list) and "session_info" in payload:
            return 0.95
        if isinstance(payload, dict) and "session_info" in payload and "results" in payload:
            return 0.8  # an error-only research dump: ours to reject with its reason
        if isinstance(payload, dict) and isinstance(payload.get("json"), dict):
            return 0.6 if "things" in payload["json"].get("data", {}) else 0.0
        records = self._records(payload)
        if records:
            keys = set().union(*(r.keys() for r in records[:5]))
            if PRAW_KEYS <= keys and keys & PRAW_HINTS:
                return 0.7
        return 0.0

    def _records(self, payload: Any) -> list[dict]:
        if isinstance(payload, list) and payload and all(isinstance(x, dict) for x in payload):
            return payload
        if (isinstance(payload, dict) and "title" in payload and isinstance(payload["title"], dict)
                and all(isinstance(v, dict) for v in payload.values())):
            return _columns_to_records(payload)
        return []

    def extract(self, payload: Any) -> Research:
        topic = None
        if _is_listing(payload):
            things = [c.get("data", {}) for c in payload["data"].get("children") or [] if isinstance(c, dict)]
        elif isinstance(payload, list) and len(payload) == 2 and all(_is_listing(x) for x in payload):
            post = [c.get("data", {}) for c in payload[0]["data"].get("children") or []]
            comments = list(self._walk(payload[1]))
            things = post + comments
            topic = clean_text(post[0].get("title"), 120) if post else None
        elif isinstance(payload, dict) and "session_info" in payload:
            if not isinstance(payload.get("posts"), list):
                error = (payload.get("results") or {}).get("error") if isinstance(payload.get("results"), dict) else None
                raise ResearchError(f"the research dump holds only an error: {clean_text(error, 200) or 'no posts'}")
            things = []
            for p in payload["posts"]:
                if isinstance(p, dict) and isinstance(p.get("reddit_data"), dict):
                    things.append({**p["reddit_data"], "_analysis": p.get("ai_analysis")})
            cfg = (payload["session_info"] or {}).get("config") or {}
            topic = cfg.get("search_query")
        elif isinstance(payload, dict) and isinstance(payload.get("json"), dict):
            things = [t.get("data", {}) for t in payload["json"].get("data", {}).get("things", [])]
        else:
            things = self._records(payload)
        insights = [i for i in (self._insight(t) for t in things if isinstance(t, dict)) if i]
        insights.sort(key=lambda i: i.score or 0, reverse=True)
        subs = [t.get("subreddit") for t in things if isinstance(t, dict) and isinstance(t.get("subreddit"), str)]
        if not topic:
            topic = f"r/{max(set(subs), key=subs.count)}" if subs else "Reddit"
        if not insights:
            raise ResearchError("no posts or comments left after dropping deleted, removed and stickied ones")
        return Research(source=self.name, title=f"Trending on {topic}", topic=str(topic), insights=insights,
                        meta={"items": len(things)})

    def _walk(self, listing: Any):
        if not _is_listing(listing):
            return
        for child in listing["data"].get("children") or []:
            if isinstance(child, dict) and child.get("kind") == "t1":
                data = child.get("data") or {}
                yield data
                yield from self._walk(data.get("replies"))  # "" when there are none

    def _insight(self, d: dict) -> Insight | None:
        if d.get("stickied") or d.get("distinguished") == "moderator":
            return None
        title = d.get("title")
        body = d.get("selftext", d.get("body", d.get("text", d.get("content"))))
        if isinstance(title, str) and title.strip() in REMOVED:
            return None
        text = clean_text(title, 300) if isinstance(title, str) else ""
        detail = clean_text(body, 500) if isinstance(body, str) and body.strip() not in REMOVED else ""
        if not text:
            text, detail = detail, ""
        if not text or text in REMOVED:
            return None
        analysis = d.get("_analysis")
        if isinstance(analysis, dict) and isinstance(analysis.get("key_insights"), list) and not detail:
            detail = clean_text(" ".join(str(x) for x in analysis["key_insights"][:2]), 400)
        score = _num(d.get("score", d.get("ups", d.get("upvotes"))))
        created = parse_time(d.get("created_utc", d.get("date", d.get("created_at", d.get("created")))))
        return Insight(text=text, score=score, url=_link(d), detail=detail or None, created_at=created)


@hookimpl
def register_sources(register, daemon):
    cfg = daemon.plugin_config("reddit")
    # Reddit allows about ten unauthenticated requests a minute.
    register(RedditSource(cfg.get("base_url", "https://www.reddit.com"), float(cfg.get("min_interval", 6.0))))
