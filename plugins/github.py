"""GitHub research: search/repositories responses and trending-scraper lists."""

from __future__ import annotations

from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, hookimpl, parse_time

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
def register_sources(register):
    register(GitHubSource())
