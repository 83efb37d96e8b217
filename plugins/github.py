"""GitHub research: search/repositories responses and trending-scraper lists.

Live fetch (campaigns): repository search from `base_url` (plugins.settings.github), with
GITHUB_TOKEN when set.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, fetch, hookimpl, parse_time, secret

from ._shapes import as_dict, as_list, list_score, number

STAR_KEYS = ("stargazers_count", "stars", "stars_in_period")
PERIOD_KEYS = ("currentPeriodStars", "newStars", "starsToday", "starsThisWeek", "stars_in_period")
CONTAINERS = ("items", "repositories", "data")
MAX_TOPICS = 8  # GitHub allows 20; a card shows a few
REPOSITORY = re.compile(r"[\w.-]+/[\w.-]+")  # owner/name as GitHub allows them


def _identifier(value: Any) -> str:
    """A name as saved, for the link: never read as markup (`_private_` is a name); a number too."""
    return value.strip() if isinstance(value, str) else clean_text(value, 100)


def _repo_like(x: Any) -> bool:
    if isinstance(x, dict) and isinstance(x.get("basic_info"), dict):  # Sentigen's repository records
        x = x["basic_info"]
    return isinstance(x, dict) and (("full_name" in x) or ("author" in x and "name" in x and "stars" in x)
                                    or "repo_name" in x or ("name" in x and any(k in x for k in STAR_KEYS)))


class GitHubSource:
    name = "github"

    def __init__(self, base_url: str, min_interval: float):
        self.base_url = base_url.rstrip("/")
        self.min_interval = min_interval

    async def fetch(self, query: dict[str, Any], http: Any) -> Research:
        """Repository search: {q, created_within_days, sort: stars, limit}; GITHUB_TOKEN lifts the rate limit."""
        q = str(query.get("q") or "").strip()
        if not q:
            raise ResearchError("github: a live fetch needs `q`, a GitHub search query such as 'topic:llm'")
        if query.get("created_within_days"):
            since = date.today() - timedelta(days=int(query["created_within_days"]))
            q += f" created:>{since.isoformat()}"
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                   "User-Agent": "avatar-daemon"}
        token = secret("GITHUB_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = await fetch(http, f"{self.base_url}/search/repositories", service=self.name, headers=headers,
                              params={"q": q, "sort": query.get("sort", "stars"), "order": "desc",
                                      "per_page": int(query.get("limit", 20))},
                              min_interval=self.min_interval)
        return self.extract(payload)

    def detect(self, payload: Any, filename: str) -> float:
        if isinstance(payload, dict):
            if isinstance(payload.get("items"), list) and "total_count" in payload:
                return 0.97
            if "message" in payload and "documentation_url" in payload:
                return 0.9  # an API error body: ours to reject with its message
            if isinstance(payload.get("repositories"), list):
                return 0.9
            if isinstance(payload.get("data"), list):
                return list_score(payload["data"], _repo_like, 0.85)
        if isinstance(payload, list):
            return list_score(payload, _repo_like, 0.9)
        return 0.0

    def extract(self, payload: Any) -> Research:
        if isinstance(payload, dict) and "message" in payload and "documentation_url" in payload:
            message = clean_text(payload["message"], 200) or "no message"
            raise ResearchError(f"this is a GitHub API error, not data: {message}")
        topic = "GitHub"
        if isinstance(payload, dict):
            repos = next((payload[k] for k in CONTAINERS if isinstance(payload.get(k), list) and payload[k]), [])
            topic = clean_text(payload.get("query"), 80) or topic
        else:
            repos = as_list(payload)
        candidates = [r for r in repos if isinstance(r, dict)]
        if not candidates:
            raise ResearchError("there are no GitHub repositories in it")
        insights = [i for i in (self._insight(r) for r in candidates) if i]
        if not insights:
            raise ResearchError(f"none of its {len(candidates)} repositories has a name (or all are disabled)")
        insights.sort(key=lambda i: i.score or 0, reverse=True)
        title = "Trending on GitHub" if topic == "GitHub" else f"{topic} on GitHub"
        return Research(source=self.name, title=title, topic=topic, insights=insights)

    def _insight(self, r: dict) -> Insight | None:
        basic = as_dict(r.get("basic_info")) or r
        if basic.get("disabled") is True:  # GitHub has taken it down (a DMCA notice, abuse): nothing to link to
            return None
        author, repo_name = _identifier(basic.get("author")), _identifier(basic.get("name"))
        name = _identifier(basic.get("full_name")) or _identifier(basic.get("repo_name")) or (
            f"{author}/{repo_name}" if author and repo_name else repo_name)
        repo = clean_text(name.split("/")[-1], 100).replace("-", " ").replace("_", " ")
        if not repo:
            return None
        description = clean_text(basic.get("description"), 300)
        stars = next((number(basic[k]) for k in STAR_KEYS if number(basic.get(k)) is not None), None)
        period = next((number(basic[k]) for k in PERIOD_KEYS if k in basic), None)
        language = clean_text(basic.get("language"), 40)
        text = f"{repo}: {description}" if description else repo
        extra = []
        if stars:
            extra.append(f"{int(stars):,} stars")
        if period:
            extra.append(f"{int(period):,} new recently")
        if language:
            extra.append(f"written in {language}")
        url = next((u for u in (basic.get(k) for k in ("html_url", "url", "link")) if isinstance(u, str) and u), None)
        if not (url and url.startswith(("https://github.com/", "http://github.com/"))):
            url = f"https://github.com/{name}" if REPOSITORY.fullmatch(name) else None
        meta: dict[str, Any] = {"repo": name} if REPOSITORY.fullmatch(name) else {}
        for key, value in (("description", description), ("stars", stars), ("stars_recent", period),
                           ("language", language)):
            if value:
                meta[key] = value
        topics = [t for t in (clean_text(t, 40) for t in as_list(basic.get("topics"))[:MAX_TOPICS]) if t]
        if topics:
            meta["topics"] = topics
        return Insight(text=text, score=period if period is not None else stars, url=url,
                       detail=", ".join(extra) or None, created_at=parse_time(basic.get("created_at")), meta=meta)


@hookimpl
def register_sources(register, daemon):
    cfg = daemon.plugin_config("github")
    # Search allows 10 unauthenticated requests a minute (30 with a token).
    register(GitHubSource(cfg.get("base_url", "https://api.github.com"), float(cfg.get("min_interval", 6.0))))
