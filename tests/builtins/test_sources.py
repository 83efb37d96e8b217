"""Every payload shape from the reference, through the real daemon's detection and extraction."""

import pytest

from avatar_daemon import ResearchError
from tests.conftest import fixture_bytes

CASES = [
    # file, expected source, first insight contains, minimum insights
    ("reddit_thread.json", "reddit", "What tool saved you", 3),
    ("praw_records.json", "reddit", "Automation tools", 2),
    ("praw_columns.json", "reddit", "Second post", 2),
    ("sentigen_reddit.json", "reddit", "2020 vs 2025", 1),
    ("hn_algolia.json", "hackernews", "SHA-1 collision", 3),
    ("hn_items.json", "hackernews", "Dropbox", 2),
    ("github_search.json", "github", "react", 2),
    ("github_trending.json", "github", "go", 2),
    ("trends_rss.xml", "google_trends", "AT&T outage", 3),
    ("pytrends_columns.json", "google_trends", "pizza", 2),
    ("serpapi.json", "google_trends", "Klima", 1),
    ("trends_widget.json", "google_trends", "keyword 1", 2),
    ("research_job.json", "research_job", "micro-reset rituals", 5),
    ("research_nested.json", "research_job", "Axum overtakes", 2),
]


@pytest.mark.parametrize("name,source,first,count", CASES)
def test_payload_shapes(daemon, name, source, first, count):
    research, _ = daemon.pipeline.extract(fixture_bytes(name), name, "." + name.rsplit(".", 1)[1])
    assert research.source == source
    assert first in research.insights[0].text
    assert len(research.insights) >= count
    if source != "research_job":  # research jobs rank by section first
        scores = [i.score or 0 for i in research.insights]
        assert scores == sorted(scores, reverse=True)
    for insight in research.insights:
        assert "&amp;" not in insight.text and "<" not in insight.text and "[removed]" not in insight.text


def test_reddit_drops_stickied_deleted_and_unescapes(daemon):
    from pathlib import Path

    data = (Path(__file__).parents[2] / "examples" / "reddit-ai-top.json").read_bytes()
    research, _ = daemon.pipeline.extract(data, "r.json", ".json")
    texts = [i.text for i in research.insights]
    assert not any("hiring" in t for t in texts)
    assert not any("removed" in t for t in texts)
    assert "Small open models now beat last year's giants on coding benchmarks" in texts
    assert research.insights[0].url.startswith("https://www.reddit.com/r/artificial/")


def test_thread_walks_nested_replies(daemon):
    research, _ = daemon.pipeline.extract(fixture_bytes("reddit_thread.json"), "t.json", ".json")
    texts = [i.text for i in research.insights]
    assert "Same, it writes my standups" in texts
    assert "A local LLM for drafting emails > everything else" in texts


def test_github_strings_with_commas_rank(daemon):
    research, _ = daemon.pipeline.extract(fixture_bytes("github_trending.json"), "g.json", ".json")
    assert research.insights[0].text.startswith("go")
    assert "110,000 stars" in research.insights[0].detail


def test_trends_rss_traffic_and_time(daemon):
    research, _ = daemon.pipeline.extract(fixture_bytes("trends_rss.xml"), "t.xml", ".xml")
    top = research.insights[0]
    assert top.score == 200000
    assert top.created_at.isoformat() == "2026-08-11T13:30:00+00:00"
    assert any(i.text == "코스피 폭락" and i.score == 50000 for i in research.insights)


@pytest.mark.parametrize("name,reason", [
    ("sentigen_error.json", "only an error: invalid input syntax"),
    ("github_error.json", "GitHub API error, not data: API rate limit exceeded"),
    ("research_error.json", "analysis failed upstream: model timed out"),
    ("hn_ids.json", "bare list of 3 story ids"),
])
def test_error_payloads_rejected_with_reason(daemon, name, reason):
    with pytest.raises(ResearchError) as exc:
        daemon.pipeline.extract(fixture_bytes(name), name, ".json")
    assert reason in str(exc.value)
    assert name in str(exc.value)


def test_text_script_is_the_script(daemon):
    research, _ = daemon.pipeline.extract(fixture_bytes("script.md"), "script.md", ".md")
    assert research.source == "text"
    script = daemon.pipeline.write_script(research, ["tiktok"], None)
    assert script.title == "Three things about focus"
    assert "**" not in script.text and "https" not in script.text and "💧" not in script.text
    assert "Three things about focus." in script.text
    assert "See the study." in script.text


@pytest.mark.parametrize("payload,encoding", [("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"),
                                              ("utf-16-le", "utf-16-le")])
def test_encodings(daemon, payload, encoding):
    data = fixture_bytes("hn_algolia.json").decode().encode(encoding)
    research, _ = daemon.pipeline.extract(data, "x.json", ".json")
    assert research.source == "hackernews"


def test_envelope_names_source_and_settings(daemon):
    import json

    env = {"source": "reddit", "request": {"formats": ["youtube"], "avatar": "mike"},
           "research": json.loads(fixture_bytes("praw_records.json"))}
    research, settings = daemon.pipeline.extract(json.dumps(env).encode(), "e.json", ".json")
    assert research.source == "reddit" and settings.formats == ["youtube"] and settings.avatar == "mike"


def test_envelope_with_bad_field_names_it(daemon):
    import json

    env = {"request": {"voice_speed": 9}, "research": {}}
    with pytest.raises(ResearchError, match=r"request envelope field request.voice_speed"):
        daemon.pipeline.extract(json.dumps(env).encode(), "e.json", ".json")
