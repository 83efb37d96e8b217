"""The seed's research-job JSON: `analysis` or `analyzed_data.analysis`, its sections ranked as the seed read them."""

from __future__ import annotations

from typing import Any

from avatar_daemon import Insight, Research, ResearchError, clean_text, hookimpl

from ._shapes import as_dict, number

SECTIONS = [  # synonyms per section; earlier sections rank higher, as the seed read them
    ("key_insights", "key_findings", "insights", "top_insights", "breakout_topics"),
    ("actionable_recommendations", "recommendations", "recommended_actions", "action_items",
     "actionable_intelligence", "business_opportunities", "content_ideas", "question_opportunities"),
    ("trending_topics", "top_topics", "key_topics", "trends", "trending_stories", "top_discussions",
     "emerging_technologies", "trending_repositories", "emerging_projects", "trend_insights"),
]
NESTED = ("content_opportunities",)
SCORE_KEYS = ("score", "stars", "search_volume", "engagement_score", "total_score")
ERROR_ONLY = {"error", "message", "timestamp", "status", "code", "details"}
TOPIC_PATHS = (("config", "keywords"), ("config", "search_terms"), ("config", "topics"), ("metadata", "topic"),
               ("query", "keywords"), ("query",), ("topic",))


def _analysis(payload: dict) -> dict | None:
    if isinstance(payload.get("analysis"), dict):
        return payload["analysis"]
    analyzed = payload.get("analyzed_data")
    if isinstance(analyzed, dict):
        if isinstance(analyzed.get("analysis"), dict):
            return analyzed["analysis"]
        if "error" in analyzed:
            raise ResearchError(f"the analysis failed upstream: {_reason(analyzed['error'])}")
    return None


def _reason(error: Any) -> str:
    """An upstream error as saved: a sentence, or an object with a `message`."""
    return clean_text(error, 200) or clean_text(as_dict(error).get("message"), 200) or "no reason given"


def _item_text(item: Any) -> tuple[str, str | None, float | None]:
    """Strings, or dicts in the seed's shapes: {title, description}, {query, growth}, {action, description}..."""
    if not isinstance(item, dict):
        return clean_text(item, 300), None, None  # a string, a number, or "" for anything else
    info = item.get("topic_info") if isinstance(item.get("topic_info"), dict) else item
    head = next((info[k] for k in ("title", "action", "query", "question", "name", "topic", "topic_name")
                 if clean_text(info.get(k), 200)), None)
    body = next((info[k] for k in ("description", "explanation", "reason", "impact", "growth")
                 if clean_text(info.get(k), 300)), None)
    scores = (number(info.get(k), text=False) for k in SCORE_KEYS)
    score = next((s for s in scores if s is not None), None)
    if head is None:  # the first three short values, as the seed did
        shown = ((k, clean_text(v, 80)) for k, v in info.items())
        pairs = [f"{k}: {v}" for k, v in shown if v and not v.endswith("…")]
        return clean_text("; ".join(pairs[:3]), 300), None, score
    text = clean_text(head, 200)
    if isinstance(body, str) and item.get("action"):
        text = f"{text}: {clean_text(body, 200)}"
        body = None
    return text, clean_text(body, 300) if body is not None else None, score


class ResearchJobSource:
    name = "research_job"

    def detect(self, payload: Any, filename: str) -> float:
        if isinstance(payload, dict):
            if isinstance(payload.get("analysis"), dict):
                return 0.9
            if isinstance(payload.get("analyzed_data"), dict):
                return 0.92  # beats the per-source detectors: the analysis is the point
            if "error" in payload and set(payload) <= ERROR_ONLY:
                return 0.5  # a research tool saved only its failure: ours to refuse with the reason
        return 0.0

    def extract(self, payload: Any) -> Research:
        if not isinstance(payload, dict):
            raise ResearchError("a research job is a JSON object with an `analysis` section")
        if "error" in payload and set(payload) <= ERROR_ONLY:
            raise ResearchError(f"the file holds only an error: {_reason(payload['error'])}")
        analysis = _analysis(payload)
        if not analysis:
            raise ResearchError("there is no `analysis` (or `analyzed_data.analysis`) section")
        if "error" in analysis and len(analysis) == 1:
            raise ResearchError(f"the analysis holds only an error: {_reason(analysis['error'])}")
        ranked: list[tuple[int, float, int, Insight]] = []
        seen: set[str] = set()
        places = [analysis] + [analysis[n] for n in NESTED if isinstance(analysis.get(n), dict)]
        for section, synonyms in enumerate(SECTIONS):
            for place in places:
                for key in synonyms:
                    items = place.get(key)
                    if isinstance(items, str):
                        items = [items]
                    if not isinstance(items, list):
                        continue
                    for item in items:
                        text, detail, score = _item_text(item)
                        if text and text.lower() not in seen:
                            seen.add(text.lower())
                            # Section order ranks across sections (as the seed read them); an item's own
                            # score, then its place in the list, ranks within one.
                            ranked.append((section, -(score or 0), len(ranked),
                                           Insight(text=text, detail=detail, score=score)))
        if not ranked:
            raise ResearchError("the analysis has no insights, recommendations or topics")
        insights = [r[-1] for r in sorted(ranked, key=lambda r: r[:3])]
        topic = self._topic(payload)
        source = payload.get("source") if isinstance(payload.get("source"), str) else None
        return Research(source=self.name, title=f"{topic}: key insights", topic=topic, insights=insights,
                        meta={"origin": source} if source else {})

    def _topic(self, payload: dict) -> str:
        for path in TOPIC_PATHS:
            node: Any = payload
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, list) and node and isinstance(node[0], str):
                return clean_text(node[0], 80)
            if isinstance(node, str) and node.strip():
                return clean_text(node, 80)
        return "Research"


@hookimpl
def register_sources(register):
    register(ResearchJobSource())
