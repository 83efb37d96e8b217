"""Google Trends research: the Trending-now RSS, pytrends saves, SerpApi and raw widget JSON.

Live fetch (campaigns): the Trending-now RSS from `base_url` (plugins.settings.google_trends).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, fetch, hookimpl, parse_time

HT = "{https://trends.google.com/trending/rss}"
HT_OLD = "{https://trends.google.com/trends/trendingsearches/daily}"


def traffic(value: Any) -> float | None:
    """'200,000+', '50K+', '2M+' -> a number; the raw string is kept as detail."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    m = re.search(r"([\d.,]+)\s*([KkMm]?)", value)
    if not m:
        return None
    try:
        number = float(m.group(1).replace(",", ""))
    except ValueError:
        return None
    return number * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]


def _growth(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if "breakout" in value.lower():
            return 5000.0
        return traffic(value)
    return None


class GoogleTrendsSource:
    name = "google_trends"

    def __init__(self, base_url: str, min_interval: float):
        self.base_url = base_url.rstrip("/")
        self.min_interval = min_interval

    async def fetch(self, query: dict[str, Any], http: Any) -> Research:
        """The Trending-now RSS feed for a country: {geo: US}."""
        payload = await fetch(http, f"{self.base_url}/trending/rss", service=self.name,
                              params={"geo": str(query.get("geo", "US")).upper()}, min_interval=self.min_interval)
        return self.extract(payload)

    def detect(self, payload: Any, filename: str) -> float:
        if isinstance(payload, ET.Element):
            if payload.tag == "rss" and (payload.find(f".//{HT}approx_traffic") is not None
                                         or payload.find(f".//{HT_OLD}approx_traffic") is not None):
                return 0.98
            return 0.3 if payload.tag == "rss" else 0.0
        if isinstance(payload, dict):
            params = payload.get("search_parameters") or {}
            if isinstance(params, dict) and str(params.get("engine", "")).startswith("google_trends"):
                return 0.98
            default = payload.get("default")
            if isinstance(default, dict) and ("timelineData" in default or "trendingSearchesDays" in default):
                return 0.95
            if "trending_searches" in payload and isinstance(payload["trending_searches"], list):
                return 0.9
            if "isPartial" in payload and all(isinstance(v, dict) for v in payload.values()):
                return 0.9
            if isinstance(payload.get("data"), list) and "keywords" in payload and "timeframe" in payload:
                return 0.9
            if payload and all(isinstance(v, dict) and set(v) <= {"top", "rising"} and v for v in payload.values()):
                return 0.85
        if isinstance(payload, list) and payload and isinstance(payload[0], dict):
            keys = set(payload[0])
            if {"trend", "traffic"} <= keys:
                return 0.9
            if "isPartial" in keys:
                return 0.85
        return 0.0

    def extract(self, payload: Any) -> Research:
        topic, insights = "Google Trends", []
        if isinstance(payload, ET.Element):
            insights = self._rss(payload)
            topic = "today's searches"
        elif isinstance(payload, list) and payload and "trend" in payload[0]:
            for item in payload:
                news = [n.get("headline") for n in item.get("news_articles") or [] if isinstance(n, dict)]
                insights.append(self._trend(item.get("trend"), item.get("traffic"), news, item.get("url")))
            topic = "today's searches"
        elif isinstance(payload, list):
            topic, insights = self._interest(payload)
        elif isinstance(payload, dict) and isinstance(payload.get("search_parameters"), dict):
            topic, insights = self._serpapi(payload)
        elif isinstance(payload, dict) and isinstance(payload.get("default"), dict):
            topic, insights = self._widget(payload["default"])
        elif isinstance(payload, dict) and "trending_searches" in payload:
            names = payload["trending_searches"]
            insights = [self._trend(q if isinstance(q, str) else q.get("query"), None if isinstance(q, str)
                                    else q.get("formattedTraffic"), [], None) for q in names]
            insights = [Insight(**{**i.model_dump(), "score": i.score or float(len(names) - n)})
                        for n, i in enumerate(insights)]
            topic = "today's searches"
        elif isinstance(payload, dict) and "isPartial" in payload:
            rows = [dict(zip([k for k in payload if k != "isPartial"], vals))
                    for vals in zip(*[payload[k].values() for k in payload if k != "isPartial"])]
            topic, insights = self._interest(rows)
        elif isinstance(payload, dict) and isinstance(payload.get("data"), list):
            topic, insights = self._interest(payload["data"])
        elif isinstance(payload, dict):
            topic, insights = self._related(payload)
        insights = [i for i in insights if i and i.text]
        insights.sort(key=lambda i: i.score or 0, reverse=True)
        if not insights:
            raise ResearchError("no trends with a search term")
        return Research(source=self.name, title=f"Trending searches: {topic}" if topic != "Google Trends"
                        else "What people are searching for", topic=topic, insights=insights)

    def _trend(self, query: Any, raw_traffic: Any, news: list, url: Any) -> Insight:
        news = [clean_text(n, 200) for n in news if isinstance(n, str) and n.strip()]
        detail = (f"{raw_traffic} searches. " if raw_traffic else "") + (news[0] if news else "")
        return Insight(text=clean_text(query, 200), score=traffic(raw_traffic), detail=detail.strip() or None,
                       url=url if isinstance(url, str) and url else None)

    def _rss(self, root: ET.Element) -> list[Insight]:
        out = []
        for item in root.iter("item"):
            ns = HT if item.find(f"{HT}approx_traffic") is not None else HT_OLD
            news = [n.findtext(f"{ns}news_item_title") for n in item.findall(f"{ns}news_item")]
            first_url = next((n.findtext(f"{ns}news_item_url") for n in item.findall(f"{ns}news_item")), None)
            insight = self._trend(item.findtext("title"), item.findtext(f"{ns}approx_traffic"), news, first_url)
            insight.created_at = parse_time(item.findtext("pubDate"))
            out.append(insight)
        return out

    def _interest(self, rows: list[dict]) -> tuple[str, list[Insight]]:
        """Interest over time: rank keywords by their latest full (not partial) value and their rise."""
        rows = [r for r in rows if isinstance(r, dict)]
        keywords = [k for k in (rows[0] if rows else {}) if k not in ("date", "isPartial", "time")]
        full = [r for r in rows if not r.get("isPartial")] or rows
        insights = []
        for kw in keywords:
            values = [float(r[kw]) for r in full if isinstance(r.get(kw), (int, float))]
            if not values:
                continue
            latest, first = values[-1], values[0]
            change = f"rising from {first:.0f} to {latest:.0f}" if latest > first else (
                f"down from {first:.0f} to {latest:.0f}" if latest < first else f"steady at {latest:.0f}")
            insights.append(Insight(text=f"Search interest in {kw} is {change} out of 100",
                                    score=latest, detail=f"peak {max(values):.0f}"))
        return (", ".join(keywords[:3]) or "Google Trends"), insights

    def _serpapi(self, p: dict) -> tuple[str, list[Insight]]:
        topic = str(p["search_parameters"].get("q") or "Google Trends")
        if isinstance(p.get("interest_over_time"), dict):
            rows = []
            for point in p["interest_over_time"].get("timeline_data") or []:
                row = {"date": point.get("date")}
                for v in point.get("values") or []:
                    row[v.get("query")] = v.get("extracted_value", traffic(v.get("value")))
                rows.append(row)
            return topic, self._interest(rows)[1]
        if isinstance(p.get("related_queries"), dict):
            return topic, self._related({topic: p["related_queries"]})[1]
        searches = p.get("trending_searches") or []
        return topic, [self._trend(s.get("query"), s.get("formattedTraffic") or s.get("search_volume"), [], None)
                       for s in searches if isinstance(s, dict)]

    def _widget(self, default: dict) -> tuple[str, list[Insight]]:
        if "trendingSearchesDays" in default:
            out = []
            for day in default["trendingSearchesDays"] or []:
                for s in day.get("trendingSearches") or []:
                    title = (s.get("title") or {}).get("query")
                    news = [a.get("title") for a in s.get("articles") or [] if isinstance(a, dict)]
                    out.append(self._trend(title, s.get("formattedTraffic"), news, None))
            return "today's searches", out
        rows = [{f"keyword {i + 1}": v for i, v in enumerate(point.get("value") or [])} | {
            "isPartial": point.get("isPartial", False)} for point in default.get("timelineData") or []]
        return self._interest(rows)

    def _related(self, d: dict) -> tuple[str, list[Insight]]:
        out = []
        for groups in d.values():
            for kind in ("rising", "top"):
                for q in (groups or {}).get(kind) or []:
                    if isinstance(q, dict) and q.get("query"):
                        growth = _growth(q.get("extracted_value", q.get("value")))
                        label = f"rising fast, up {q.get('value')}" if kind == "rising" else "a top search"
                        out.append(Insight(text=f"{clean_text(q['query'], 200)}: {label}" if kind == "rising"
                                           else clean_text(q["query"], 200), score=growth, detail=label))
        return ", ".join(list(d)[:3]) or "Google Trends", out


@hookimpl
def register_sources(register, daemon):
    cfg = daemon.plugin_config("google_trends")
    register(GoogleTrendsSource(cfg.get("base_url", "https://trends.google.com"), float(cfg.get("min_interval", 2.0))))
