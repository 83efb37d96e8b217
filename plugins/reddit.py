"""Reddit research: listings, threads with comments, PRAW exports and Sentigen research dumps.

Live fetch (campaigns): a subreddit listing from `base_url` (plugins.settings.reddit).
"""

from __future__ import annotations

import re
from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, fetch, hookimpl, parse_time

from ._shapes import as_dict, as_list, list_score, number

COMMENT_KEYS = ("num_comments", "comms_num", "comments")  # the listing's, the tutorial export's, others'
PRAW_HINTS = {"num_comments", "comms_num", "created_utc", "permalink", "subreddit", "upvotes", "selftext"}
# Reddit's placeholders for content its author deleted or a moderator, admin or Reddit removed:
# "[deleted]", "[removed]", "[deleted by user]", "[ Removed by Reddit ]", "[removed by moderator]".
GONE = re.compile(r"\[\s*(?:deleted|removed)\b[^\]]*\]", re.I)
# Set (to "moderator", "deleted", "author", "reddit", "copyright_takedown", ...) once a post is gone,
# even where the title and body are still in the save.
REMOVAL_FIELDS = ("removed_by_category", "removed_by", "banned_by")


def _gone(value: Any) -> bool:
    return isinstance(value, str) and GONE.fullmatch(value.strip()) is not None


def _link(d: dict) -> str | None:
    permalink = d.get("permalink")
    if isinstance(permalink, str) and permalink:
        return permalink if permalink.startswith("http") else "https://www.reddit.com" + permalink
    url = d.get("url") or d.get("link")
    return url if isinstance(url, str) and url.startswith("http") else None


def _is_listing(x: Any) -> bool:
    return isinstance(x, dict) and x.get("kind") == "Listing" and isinstance(x.get("data"), dict)


def _children(listing: dict) -> list:
    return as_list(listing["data"].get("children"))


def _is_thing(x: Any) -> bool:
    return isinstance(x, dict) and x.get("kind") in ("t3", "t1")


def _looks_like_post(r: Any) -> bool:
    """A PRAW-style record: a title, a score and one more Reddit field, whatever the exporter named them."""
    return isinstance(r, dict) and "title" in r and ("score" in r or "upvotes" in r) and bool(r.keys() & PRAW_HINTS)


def _columns_to_records(d: dict) -> list[dict]:
    """pandas `to_json()` default orient: {"title": {"0": ..}, "score": {"0": ..}}; other values are ignored."""
    columns = {k: v for k, v in d.items() if isinstance(v, dict)}
    return [{col: values.get(i) for col, values in columns.items()} for i in columns["title"]]


def _records(payload: Any) -> list:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("title"), dict):
        return _columns_to_records(payload)
    return []


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
            return 0.95 if any(_is_thing(c) for c in _children(payload)) else 0.5
        if isinstance(payload, list) and any(_is_listing(x) for x in payload[:4]):
            return list_score(payload, _is_listing, 0.98)  # a thread: [post listing, comment listing]
        if isinstance(payload, dict) and "session_info" in payload:
            if isinstance(payload.get("posts"), list):
                return 0.95
            if "results" in payload:
                return 0.8  # an error-only research dump: ours to reject with its reason
        if isinstance(payload, dict) and isinstance(payload.get("json"), dict):
            return 0.6 if "things" in as_dict(payload["json"].get("data")) else 0.0
        if isinstance(payload, list):
            return list_score(payload, _looks_like_post, 0.7)
        if isinstance(payload, dict) and isinstance(payload.get("title"), dict):
            columns = {k for k, v in payload.items() if isinstance(v, dict)}
            return 0.7 if ("score" in columns or "upvotes" in columns) and columns & PRAW_HINTS else 0.0
        return 0.0

    def extract(self, payload: Any) -> Research:
        topic = None
        if _is_listing(payload) or (isinstance(payload, list) and any(_is_listing(x) for x in payload)):
            listings = [payload] if _is_listing(payload) else [x for x in payload if _is_listing(x)]
            things = [t for listing in listings for t in self._walk(listing)]
            if len(listings) > 1:  # a thread is about its post
                post = next((c["data"] for c in _children(listings[0])
                             if _is_thing(c) and c["kind"] == "t3" and isinstance(c.get("data"), dict)), {})
                topic = clean_text(post.get("title"), 120)
        elif isinstance(payload, dict) and "session_info" in payload:
            if not isinstance(payload.get("posts"), list):
                error = as_dict(payload.get("results")).get("error")
                raise ResearchError(f"the research dump holds only an error: {clean_text(error, 200) or 'no posts'}")
            things = [{**p["reddit_data"], "_analysis": p.get("ai_analysis")} for p in payload["posts"]
                      if isinstance(p, dict) and isinstance(p.get("reddit_data"), dict)]
            topic = clean_text(as_dict(as_dict(payload.get("session_info")).get("config")).get("search_query"), 120)
        elif isinstance(payload, dict) and isinstance(payload.get("json"), dict):
            things = [as_dict(t.get("data")) for t in as_list(as_dict(payload["json"].get("data")).get("things"))
                      if isinstance(t, dict)]
        else:
            things = [r for r in _records(payload) if isinstance(r, dict)]
        if not things:
            raise ResearchError("there are no Reddit posts or comments in it")
        insights, dropped = [], {"deleted or removed": 0, "stickied or by a moderator": 0, "empty": 0}
        for thing in things:
            insight = self._insight(thing, dropped)
            if insight:
                insights.append(insight)
        if not insights:
            reasons = ", ".join(f"{n} {why}" for why, n in dropped.items() if n)
            raise ResearchError(f"none of its {len(things)} posts and comments can be used: {reasons}")
        insights.sort(key=lambda i: i.score or 0, reverse=True)
        subs = [t["subreddit"] for t in things if isinstance(t.get("subreddit"), str) and t["subreddit"]]
        if not topic:
            topic = f"r/{clean_text(max(set(subs), key=subs.count), 60)}" if subs else "Reddit"
        return Research(source=self.name, title=f"Trending on {topic}", topic=topic, insights=insights,
                        meta={"items": len(things)})

    def _walk(self, listing: dict) -> list[dict]:
        """Posts and comments, replies included: `replies` is a nested Listing, or "" when there are none."""
        out, pending = [], list(reversed(_children(listing)))
        while pending:  # depth first, in the saved order, without recursion
            child = pending.pop()
            if _is_thing(child) and isinstance(child.get("data"), dict):
                out.append(child["data"])
                replies = child["data"].get("replies")
                if _is_listing(replies):
                    pending.extend(reversed(_children(replies)))
        return out

    def _insight(self, d: dict, dropped: dict[str, int]) -> Insight | None:
        """The post or comment as an insight, or None (counted in `dropped`) when it is gone or not for us."""
        title = d.get("title")
        body = next((d[k] for k in ("selftext", "body", "text", "content") if k in d), None)
        if _gone(title) or _gone(body) or any(d.get(k) for k in REMOVAL_FIELDS):
            dropped["deleted or removed"] += 1
            return None
        if d.get("stickied") or d.get("distinguished") in ("moderator", "admin"):
            dropped["stickied or by a moderator"] += 1
            return None
        text, detail = clean_text(title, 300), clean_text(body, 500)
        if not text:
            text, detail = detail, ""
        if not text:
            dropped["empty"] += 1
            return None
        analysis = as_dict(d.get("_analysis"))
        if isinstance(analysis.get("key_insights"), list) and not detail:
            detail = clean_text(" ".join(clean_text(x) for x in analysis["key_insights"][:2]), 400)
        score = next((number(d[k]) for k in ("score", "ups", "upvotes") if k in d), None)
        created = parse_time(next((d[k] for k in ("created_utc", "date", "created_at", "created") if k in d), None))
        meta = {}
        sub = clean_text(d.get("subreddit"), 60) if isinstance(d.get("subreddit"), str) else ""
        if sub:
            meta["subreddit"] = f"r/{sub.removeprefix('r/')}"
        comments = next((number(d[k]) for k in COMMENT_KEYS if number(d.get(k)) is not None), None)
        if comments is not None:
            meta["comments"] = comments
        return Insight(text=text, score=score, url=_link(d), detail=detail or None, created_at=created, meta=meta)


@hookimpl
def register_sources(register, daemon):
    cfg = daemon.plugin_config("reddit")
    # Reddit allows about ten unauthenticated requests a minute.
    register(RedditSource(cfg.get("base_url", "https://www.reddit.com"), float(cfg.get("min_interval", 6.0))))
