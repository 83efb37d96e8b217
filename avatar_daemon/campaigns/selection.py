"""Which research becomes a campaign's videos: quality rules, no insight twice, best first.

Pure functions over Research, so a campaign run, `batch` and their tests share one rule book
and every verdict can be written down in the run's record.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .schema import QualityRules
from ..models import Insight, Research


def insight_key(insight: Insight) -> str:
    """The same story from two sources or two days is one story: its URL, else its words."""
    if insight.url:
        url = re.sub(r"^https?://(www\.)?", "", insight.url.strip().lower()).rstrip("/")
        return "url:" + url
    words = " ".join(re.findall(r"\w+", insight.text.lower()))
    return "text:" + hashlib.sha1(words.encode()).hexdigest()[:16]


@dataclass
class Candidate:
    research: Research
    research_id: int | None
    created_at: datetime
    kept: list[Insight] = field(default_factory=list)
    verdict: str = ""
    score: float = 0.0

    def summary(self) -> dict:
        return {"research_id": self.research_id, "source": self.research.source, "title": self.research.title,
                "insights": len(self.research.insights), "kept": len(self.kept), "score": round(self.score, 1),
                "verdict": self.verdict}


def _mentions(text: str, words: list[str]) -> bool:
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(w.lower())}\b", lowered) for w in words)


def judge(candidate: Candidate, rules: QualityRules, used: set[str], now: datetime) -> bool:
    """Apply the rules; `verdict` says why in words (kept for the run's record)."""
    if now - candidate.created_at > timedelta(hours=rules.max_age_hours):
        candidate.verdict = f"older than {rules.max_age_hours:g} h"
        return False
    dropped: dict[str, int] = {}
    kept = []
    for insight in candidate.research.insights:
        text = f"{insight.text} {insight.detail or ''}"
        reason = None
        if insight_key(insight) in used:
            reason = "already used"
        elif rules.min_score is not None and (insight.score or 0) < rules.min_score:
            reason = f"score under {rules.min_score:g}"
        elif rules.include_keywords and not _mentions(text, rules.include_keywords):
            reason = "no include keyword"
        elif rules.exclude_keywords and _mentions(text, rules.exclude_keywords):
            reason = "exclude keyword"
        elif insight.created_at and now - _aware(insight.created_at) > timedelta(hours=rules.max_age_hours):
            reason = "too old"
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            kept.append(insight)
    candidate.kept = kept
    candidate.score = sum(i.score or 1.0 for i in kept)
    why = ", ".join(f"{n} {r}" for r, n in dropped.items())
    if len(kept) < rules.min_insights:
        candidate.verdict = f"{len(kept)} usable insights, needs {rules.min_insights}" + (f" ({why})" if why else "")
        return False
    candidate.verdict = f"{len(kept)} usable insights" + (f" ({why} dropped)" if why else "")
    return True


def choose(candidates: list[Candidate], rules: QualityRules, used: set[str], now: datetime,
           slots: int, per_pick: int) -> list[Candidate]:
    """Judge every candidate; the best-scoring that pass fill `slots` jobs, `per_pick` at a time.

    Insights picked for one video are counted as used for the next, so two videos of one run
    never tell the same story.
    """
    passing = [c for c in candidates if judge(c, rules, used, now)]
    passing.sort(key=lambda c: c.score, reverse=True)
    chosen: list[Candidate] = []
    taken = set(used)
    for c in passing:
        if (len(chosen) + 1) * per_pick > slots:
            c.verdict += "; not chosen: today's video limit is reached"
            continue
        if not judge(c, rules, taken, now):  # overlaps a better pick of this run
            c.verdict = "not chosen: " + c.verdict
            continue
        c.verdict = "chosen: " + c.verdict
        chosen.append(c)
        taken.update(insight_key(i) for i in c.kept)
    return chosen


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
