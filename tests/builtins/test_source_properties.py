"""Every source's detect/extract on any payload: a confidence, a Research, or a ResearchError with a sentence.

Payloads are arbitrary JSON, and the reference shapes (the fixtures) with parts swapped for
arbitrary JSON, dropped or added: the near misses real files are made of.
"""

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar_daemon import Research, ResearchError
from avatar_daemon.decoding import parse
from avatar_daemon.testing import make_daemon
from tests.conftest import FIXTURES

PROPERTY = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

KEYS = st.sampled_from(["title", "score", "id", "type", "kind", "data", "children", "deleted", "dead", "text",
                        "selftext", "body", "url", "hits", "items", "name", "stars", "query", "value", "trend",
                        "traffic", "isPartial", "analysis", "key_insights", "removed_by_category", "replies",
                        "default", "timelineData", "posts", "reddit_data", "session_info", "message"]) | st.text()
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10 ** 30) | st.floats()
           | st.text() | st.sampled_from(["[deleted]", "[removed]", "[deleted by user]", "Listing", "t3", "t1",
                                          "story", "1,234", "Breakout", "50K+", "<p>x</p>", "\x1b[0m", "1984"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                    max_leaves=12)


def _seed(name: str):
    return parse((FIXTURES / "research" / name).read_bytes(), name, "." + name.rsplit(".", 1)[1])


SEEDS = [_seed(p.name) for p in sorted((FIXTURES / "research").glob("*.json"))]


@st.composite
def mutated(draw, value):
    """`value` with some parts replaced by arbitrary JSON, some dict keys dropped, some elements added."""
    roll = draw(st.integers(0, 9))
    if roll == 0:
        return draw(JSON)
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            if draw(st.integers(0, 7)):
                out[key] = draw(mutated(child))
        if roll == 1:
            out[draw(KEYS)] = draw(JSON)
        return out
    if isinstance(value, list):
        out = [draw(mutated(child)) for child in value[:6]]
        if roll == 1:
            out.insert(draw(st.integers(0, len(out))), draw(JSON))
        return out
    return value


PAYLOADS = JSON | st.sampled_from(SEEDS).flatmap(mutated)


@st.composite
def rss(draw):
    """A Trending-now feed with arbitrary text, missing parts and stray elements."""
    ns = draw(st.sampled_from(["https://trends.google.com/trending/rss",
                               "https://trends.google.com/trends/trendingsearches/daily", "urn:other"]))
    root = ET.Element(draw(st.sampled_from(["rss", "feed", "rss"])))
    channel = ET.SubElement(root, "channel")
    for _ in range(draw(st.integers(0, 3))):
        item = ET.SubElement(channel, "item")
        for tag in draw(st.lists(st.sampled_from(["title", f"{{{ns}}}approx_traffic", "pubDate",
                                                  f"{{{ns}}}news_item", "description"]), max_size=5)):
            child = ET.SubElement(item, tag)
            child.text = draw(st.none() | st.text(max_size=20) | st.sampled_from(["200,000+", "1천+", "9" * 400]))
            if tag.endswith("news_item"):
                ET.SubElement(child, f"{{{ns}}}news_item_title").text = draw(st.none() | st.text(max_size=20))
                ET.SubElement(child, f"{{{ns}}}news_item_url").text = draw(st.none() | st.text(max_size=20))
    return root


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    daemon = make_daemon(tmp_path_factory.mktemp("properties"))
    return list(daemon.sources)


def _check(sources, payload):
    for source in sources:
        score = source.detect(payload, "drop.json")
        assert isinstance(score, float | int) and 0.0 <= score <= 1.0, (source.name, score)
        try:
            research = source.extract(payload)
        except ResearchError as exc:
            assert len(str(exc)) > 10 and str(exc)[0].isalpha(), (source.name, str(exc))
        else:
            assert isinstance(research, Research)
            assert research.insights or research.script_text
            json.loads(research.model_dump_json())  # storable


def test_every_builtin_source_is_checked(sources):
    assert {s.name for s in sources} == {"reddit", "hackernews", "github", "google_trends", "research_job", "text"}


@PROPERTY
@given(payload=PAYLOADS)
def test_any_json_gives_a_research_or_a_sentence(sources, payload):
    _check(sources, payload)


@PROPERTY
@given(payload=rss() | st.text())
def test_any_feed_or_text_gives_a_research_or_a_sentence(sources, payload):
    _check(sources, payload)
