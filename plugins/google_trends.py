"""Google Trends research: the Trending-now RSS, pytrends saves, SerpApi and raw widget JSON.

Live fetch (campaigns): the Trending-now RSS from `base_url` (plugins.settings.google_trends).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, fetch, hookimpl, parse_time

from ._shapes import as_dict, as_list, list_score, number

HT = "{https://trends.google.com/trending/rss}"
MAX_POINTS = 520  # ten years of weekly points: more than a card's chart has pixels for
HT_OLD = "{https://trends.google.com/trends/trendingsearches/daily}"


def traffic(value: Any) -> float | None:
    """'200,000+', '50K+', '2M+' -> a number; the raw string is kept as detail."""
    if not isinstance(value, str):
        return number(value)
    m = re.search(r"([\d.,]+)\s*([KkMm]?)", value)
    figure = number(m.group(1)) if m else None
    return None if figure is None else figure * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]


def _date_label(value: Any) -> str | None:
    """A point's date as the data gives it: a timestamp as its day, a label ("Jan 2004") as written."""
    if value is None or isinstance(value, bool):
        return None
    when = parse_time(value)
    return when.date().isoformat() if when else (clean_text(value, 24) or None)


def _growth(value: Any) -> float | None:
    if isinstance(value, str) and "breakout" in value.lower():
        return 5000.0
    return traffic(value)


def _is_trend(x: Any) -> bool:
    """An item of the Trending-now RSS converted to JSON (trendspyg and friends)."""
    return isinstance(x, dict) and "trend" in x and "traffic" in x


def _is_row(x: Any) -> bool:
    """A row of pytrends' interest over time saved as records."""
    return isinstance(x, dict) and "isPartial" in x


def _is_related(x: Any) -> bool:
    return isinstance(x, dict) and bool(x) and set(x) <= {"top", "rising"}


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
            engine = as_dict(payload.get("search_parameters")).get("engine")
            if isinstance(engine, str) and engine.startswith("google_trends"):
                return 0.98
            default = as_dict(payload.get("default"))
            if "timelineData" in default or "trendingSearchesDays" in default:
                return 0.95
            if isinstance(payload.get("trending_searches"), list):
                return 0.9
            if isinstance(payload.get("isPartial"), dict) and any(
                    isinstance(v, dict) for k, v in payload.items() if k != "isPartial"):
                return 0.9
            if isinstance(payload.get("data"), list) and "keywords" in payload and "timeframe" in payload:
                return 0.9
            if payload:
                return list_score(list(payload.values()), _is_related, 0.85)
        if isinstance(payload, list):
            return max(list_score(payload, _is_trend, 0.9), list_score(payload, _is_row, 0.85))
        return 0.0

    def extract(self, payload: Any) -> Research:
        topic, insights = "Google Trends", []
        if isinstance(payload, ET.Element):
            insights = self._rss(payload)
            topic = "today's searches"
        elif isinstance(payload, list) and any(_is_trend(x) for x in payload):
            for item in payload:
                if _is_trend(item):
                    news = [n.get("headline") for n in as_list(item.get("news_articles")) if isinstance(n, dict)]
                    insights.append(self._trend(item["trend"], item["traffic"], news, item.get("url")))
            topic = "today's searches"
        elif isinstance(payload, list):
            topic, insights = self._interest(payload)
        elif isinstance(payload, dict) and isinstance(payload.get("search_parameters"), dict):
            topic, insights = self._serpapi(payload)
        elif isinstance(payload, dict) and isinstance(payload.get("default"), dict):
            topic, insights = self._widget(payload["default"])
        elif isinstance(payload, dict) and isinstance(payload.get("trending_searches"), list):
            names = payload["trending_searches"]
            for n, q in enumerate(names):
                q = as_dict(q) or {"query": q}
                insight = self._trend(q.get("query"), q.get("formattedTraffic"), [], None)
                if insight.score is None:  # a plain list is ranked by its order
                    insight.score = float(len(names) - n)
                insights.append(insight)
            topic = "today's searches"
        elif isinstance(payload, dict) and isinstance(payload.get("isPartial"), dict):
            topic, insights = self._interest(self._columns(payload))
        elif isinstance(payload, dict) and isinstance(payload.get("data"), list):
            topic, insights = self._interest(payload["data"])
        elif isinstance(payload, dict):
            topic, insights = self._related(payload)
        insights = [i for i in insights if i.text]
        if not insights:
            raise ResearchError("no trends with a search term")
        insights.sort(key=lambda i: i.score or 0, reverse=True)
        return Research(source=self.name, title=f"Trending searches: {topic}" if topic != "Google Trends"
                        else "What people are searching for", topic=topic, insights=insights)

    def _columns(self, payload: dict) -> list[dict]:
        """pandas `to_json()` of interest over time: one {epoch ms: value} dict per keyword, plus isPartial."""
        columns = {k: v for k, v in payload.items() if isinstance(v, dict)}
        index = next((list(v) for k, v in columns.items() if k != "isPartial"), [])
        return [{k: v.get(i) for k, v in columns.items()} | {"date": i} for i in index]

    def _trend(self, query: Any, raw_traffic: Any, news: list, url: Any) -> Insight:
        news = [clean_text(n, 200) for n in news]
        news = [n for n in news if n]
        shown = clean_text(raw_traffic, 40)
        detail = (f"{shown} searches. " if shown else "") + (news[0] if news else "")
        meta = ({"traffic": shown} if shown else {}) | ({"news": news[0]} if news else {})
        return Insight(text=clean_text(query, 200), score=traffic(raw_traffic), detail=detail.strip() or None,
                       url=url if isinstance(url, str) and url.startswith(("http://", "https://")) else None,
                       meta=meta)

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

    def _interest(self, rows: list) -> tuple[str, list[Insight]]:
        """Interest over time: rank keywords by their latest full (not partial) value and their rise."""
        rows = [r for r in rows if isinstance(r, dict)]
        keywords = list(dict.fromkeys(k for r in rows for k in r if k not in ("date", "isPartial", "time")))
        full = [r for r in rows if not r.get("isPartial")] or rows
        insights = []
        for kw in keywords:
            name = clean_text(kw, 100)
            points = [(r, v) for r, v in ((r, number(r.get(kw), text=False)) for r in full) if v is not None]
            values = [v for _, v in points]
            if not name or not values:
                continue
            chart: dict[str, Any] = {"keyword": name, "series": values[-MAX_POINTS:]}
            dates = [_date_label(r.get("date", r.get("time"))) for r, _ in points][-MAX_POINTS:]
            if dates[0] and dates[-1]:
                chart["dates"] = dates
            latest, first = values[-1], values[0]
            change = f"rising from {first:.0f} to {latest:.0f}" if latest > first else (
                f"down from {first:.0f} to {latest:.0f}" if latest < first else f"steady at {latest:.0f}")
            insights.append(Insight(text=f"Search interest in {name} is {change} out of 100",
                                    score=latest, detail=f"peak {max(values):.0f}", meta=chart))
        return (", ".join(clean_text(k, 100) for k in keywords[:3]) or "Google Trends"), insights

    def _serpapi(self, p: dict) -> tuple[str, list[Insight]]:
        topic = clean_text(p["search_parameters"].get("q"), 80) or "Google Trends"
        if isinstance(p.get("interest_over_time"), dict):
            rows = []
            for point in as_list(p["interest_over_time"].get("timeline_data")):
                row = {"date": as_dict(point).get("date")}
                for v in as_list(as_dict(point).get("values")):
                    v = as_dict(v)
                    if isinstance(v.get("query"), str):
                        row[v["query"]] = v.get("extracted_value", traffic(v.get("value")))
                rows.append(row)
            return topic, self._interest(rows)[1]
        if isinstance(p.get("related_queries"), dict):
            return topic, self._related({topic: p["related_queries"]})[1]
        return topic, [self._trend(s.get("query"), s.get("formattedTraffic") or s.get("search_volume"), [], None)
                       for s in as_list(p.get("trending_searches")) if isinstance(s, dict)]

    def _widget(self, default: dict) -> tuple[str, list[Insight]]:
        if "trendingSearchesDays" in default:
            out = []
            for day in as_list(default["trendingSearchesDays"]):
                for s in as_list(as_dict(day).get("trendingSearches")):
                    s = as_dict(s)
                    news = [a.get("title") for a in as_list(s.get("articles")) if isinstance(a, dict)]
                    out.append(self._trend(as_dict(s.get("title")).get("query"), s.get("formattedTraffic"), news,
                                           None))
            return "today's searches", out
        rows = [{f"keyword {i + 1}": v for i, v in enumerate(as_list(point.get("value")))} | {
            "isPartial": point.get("isPartial", False),
            "date": point.get("formattedAxisTime") or point.get("formattedTime") or point.get("time")}
            for point in as_list(default.get("timelineData")) if isinstance(point, dict)]
        return self._interest(rows)

    def _related(self, d: dict) -> tuple[str, list[Insight]]:
        out = []
        for groups in d.values():
            for kind in ("rising", "top"):
                for q in as_list(as_dict(groups).get(kind)):
                    query = clean_text(as_dict(q).get("query"), 200)
                    if not query:
                        continue
                    growth = _growth(q.get("extracted_value", q.get("value")))
                    label = f"rising fast, up {clean_text(q.get('value'), 40)}" if kind == "rising" else "a top search"
                    rise = clean_text(q.get("value"), 40) if kind == "rising" else ""
                    out.append(Insight(text=f"{query}: {label}" if kind == "rising" else query, score=growth,
                                       detail=label, meta={"growth": rise} if rise else {}))
        return ", ".join(clean_text(k, 100) for k in list(d)[:3]) or "Google Trends", out


@hookimpl
def register_sources(register, daemon):
    cfg = daemon.plugin_config("google_trends")
    register(GoogleTrendsSource(cfg.get("base_url", "https://trends.google.com"), float(cfg.get("min_interval", 2.0))))
