"""GitHub research: search/repositories responses and trending-scraper lists.

Live fetch (campaigns): repository search from `base_url` (plugins.settings.github), with
GITHUB_TOKEN when set.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, fetch, hookimpl, parse_time, secret

STAR_KEYS = ("stargazers_count", "stars", "stars_in_period")
PERIOD_KEYS = ("currentPeriodStars", "newStars", "starsToday", "starsThisWeek", "stars_in_period")


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        digits = value.replace(",", "").strip()
        try:
            return float(digits)
        except ValueError:
            return None
    return None


def _repo_like(x: Any) -> bool:
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
            if isinstance(payload.get("data"), list) and payload["data"] and _repo_like(payload["data"][0]):
                return 0.85
        if isinstance(payload, list) and payload and all(_repo_like(x) for x in payload[:5]):
            return 0.9
        return 0.0

    def extract(self, payload: Any) -> Research:
        if isinstance(payload, dict) and "message" in payload and "documentation_url" in payload:
            raise ResearchError(f"this is a GitHub API error, not data: {clean_text(payload['message'], 200)}")
        topic = "GitHub"
        if isinstance(payload, dict):
            repos = payload.get("items") or payload.get("repositories") or payload.get("data") or []
            topic = str(payload.get("query") or topic)
        else:
            repos = payload
        insights = [i for i in (self._insight(r) for r in repos if isinstance(r, dict)) if i]
        insights.sort(key=lambda i: i.score or 0, reverse=True)
        if not insights:
            raise ResearchError("no repositories with a name")
        title = "Trending on GitHub" if topic == "GitHub" else f"{topic} on GitHub"
        return Research(source=self.name, title=title, topic=topic, insights=insights)

    def _insight(self, r: dict) -> Insight | None:
        basic = r.get("basic_info") if isinstance(r.get("basic_info"), dict) else r
        name = basic.get("full_name") or basic.get("repo_name") or (
            f"{basic['author']}/{basic['name']}" if basic.get("author") and basic.get("name") else basic.get("name"))
        if not isinstance(name, str) or not name:
            return None
        description = clean_text(basic.get("description"), 300)
        stars = next((_num(basic[k]) for k in STAR_KEYS if k in basic and _num(basic[k]) is not None), None)
        period = next((_num(basic[k]) for k in PERIOD_KEYS if k in basic), None)
        language = basic.get("language")
        repo = name.split("/")[-1].replace("-", " ").replace("_", " ")
        text = f"{repo}: {description}" if description else repo
        extra = []
        if stars:
            extra.append(f"{int(stars):,} stars")
        if period:
            extra.append(f"{int(period):,} new recently")
        if isinstance(language, str) and language:
            extra.append(f"written in {language}")
        url = basic.get("html_url") or basic.get("url") or basic.get("link")
        if not (isinstance(url, str) and "github.com" in url and "api.github.com" not in url):
            url = f"https://github.com/{name}" if "/" in name else None
        return Insight(text=text, score=period if period is not None else stars, url=url,
                       detail=", ".join(extra) or None, created_at=parse_time(basic.get("created_at")))


@hookimpl
def register_sources(register, daemon):
    cfg = daemon.plugin_config("github")
    # Search allows 10 unauthenticated requests a minute (30 with a token).
    register(GitHubSource(cfg.get("base_url", "https://api.github.com"), float(cfg.get("min_interval", 6.0))))
