"""Every payload shape from the reference, through the real daemon's detection and extraction."""

import json

import pytest

from avatar_daemon import ResearchError
from avatar_daemon.planning import extract, write_script
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
    research, _ = extract(daemon.catalogue, fixture_bytes(name), name, "." + name.rsplit(".", 1)[1])
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
    research, _ = extract(daemon.catalogue, data, "r.json", ".json")
    texts = [i.text for i in research.insights]
    assert not any("hiring" in t for t in texts)
    assert not any("removed" in t for t in texts)
    assert "Small open models now beat last year's giants on coding benchmarks" in texts
    assert research.insights[0].url.startswith("https://www.reddit.com/r/artificial/")


def test_thread_walks_nested_replies(daemon):
    research, _ = extract(daemon.catalogue, fixture_bytes("reddit_thread.json"), "t.json", ".json")
    texts = [i.text for i in research.insights]
    assert "Same, it writes my standups" in texts
    assert "A local LLM for drafting emails > everything else" in texts


def test_github_strings_with_commas_rank(daemon):
    research, _ = extract(daemon.catalogue, fixture_bytes("github_trending.json"), "g.json", ".json")
    assert research.insights[0].text.startswith("go")
    assert "110,000 stars" in research.insights[0].detail


def test_trends_rss_traffic_and_time(daemon):
    research, _ = extract(daemon.catalogue, fixture_bytes("trends_rss.xml"), "t.xml", ".xml")
    top = research.insights[0]
    assert top.score == 200000
    assert top.created_at.isoformat() == "2026-08-11T13:30:00+00:00"
    assert any(i.text == "코스피 폭락" and i.score == 50000 for i in research.insights)


@pytest.mark.parametrize("name,reason", [
    ("sentigen_error.json", "only an error: invalid input syntax"),
    ("github_error.json", "GitHub API error, not data: API rate limit exceeded"),
    ("research_error.json", "analysis failed upstream: model timed out"),
    ("hn_ids.json", "bare list of 3 story ids"),
    ("error_only.json", "holds only an error: quota exceeded for today"),
])
def test_error_payloads_rejected_with_reason(daemon, name, reason):
    with pytest.raises(ResearchError) as exc:
        extract(daemon.catalogue, fixture_bytes(name), name, ".json")
    assert reason in str(exc.value)
    assert name in str(exc.value)


def test_text_script_is_the_script(daemon):
    research, _ = extract(daemon.catalogue, fixture_bytes("script.md"), "script.md", ".md")
    assert research.source == "text"
    script = write_script(daemon.catalogue, research, ["tiktok"], None)
    assert script.title == "Three things about focus"
    assert "**" not in script.text and "https" not in script.text and "💧" not in script.text
    assert "Three things about focus." in script.text
    assert "See the study." in script.text


@pytest.mark.parametrize("payload,encoding", [("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"),
                                              ("utf-16-le", "utf-16-le")])
def test_encodings(daemon, payload, encoding):
    data = fixture_bytes("hn_algolia.json").decode().encode(encoding)
    research, _ = extract(daemon.catalogue, data, "x.json", ".json")
    assert research.source == "hackernews"


def test_envelope_names_source_and_settings(daemon):
    import json

    env = {"source": "reddit", "request": {"formats": ["youtube"], "avatar": "mike"},
           "research": json.loads(fixture_bytes("praw_records.json"))}
    research, settings = extract(daemon.catalogue, json.dumps(env).encode(), "e.json", ".json")
    assert research.source == "reddit" and settings.formats == ["youtube"] and settings.avatar == "mike"


def test_envelope_with_bad_field_names_it(daemon):
    import json

    env = {"request": {"voice_speed": 9}, "research": {}}
    with pytest.raises(ResearchError, match=r"request envelope field request.voice_speed"):
        extract(daemon.catalogue, json.dumps(env).encode(), "e.json", ".json")


# ---- deleted, removed and odd elements ---------------------------------------------------------

def test_reddit_drops_deleted_and_removed_posts_even_with_the_highest_scores(daemon):
    research, _ = extract(daemon.catalogue, fixture_bytes("reddit_removed.json"), "r.json", ".json")
    # "[deleted by user]", removed_by_category set, "[removed]"/"[deleted]" bodies, "[ Removed by Reddit ]"
    assert [i.text for i in research.insights] == ["1984", "2001"]  # a title that is a number is not gone
    assert research.insights[0].detail == "Rereading it this month, still unsettling."
    assert research.meta == {"items": 7}  # the `more` stub is not a post


def test_a_listing_of_nothing_but_removed_posts_is_refused_with_a_sentence(daemon):
    with pytest.raises(ResearchError) as exc:
        extract(daemon.catalogue, fixture_bytes("reddit_all_removed.json"), "gone.json", ".json")
    assert str(exc.value) == ("gone.json: reddit: none of its 3 posts and comments can be used: "
                              "3 deleted or removed")


@pytest.mark.parametrize("record", [
    {"title": "[deleted by user]", "score": 900, "comms_num": 3, "body": ""},
    {"title": "Real title", "score": 900, "comms_num": 3, "body": "[removed]"},
    {"title": "Real title", "score": 900, "num_comments": 3, "selftext": "", "removed_by_category": "author"},
])
def test_praw_exports_drop_deleted_and_removed_posts_too(daemon, record):
    records = [record, {"title": "Kept", "score": 5, "comms_num": 1, "body": ""}]
    research, _ = extract(daemon.catalogue, json.dumps(records).encode(), "p.json", ".json")
    assert [i.text for i in research.insights] == ["Kept"]


def test_sentigen_dump_drops_removed_posts(daemon):
    dump = json.loads(fixture_bytes("sentigen_reddit.json"))
    removed = {**dump["posts"][0]["reddit_data"], "title": "Top but removed", "score": 10 ** 6,
               "selftext": "[removed]"}
    dump["posts"].append({"reddit_data": removed, "comments": []})
    research, _ = extract(daemon.catalogue, json.dumps(dump).encode(), "s.json", ".json")
    assert "Top but removed" not in [i.text for i in research.insights]


def test_hn_item_list_with_deleted_stubs_is_hacker_news(daemon):
    research, _ = extract(daemon.catalogue, fixture_bytes("hn_firebase_stubs.json"), "hn.json", ".json")
    assert research.source == "hackernews"
    assert [i.text for i in research.insights] == ["My YC app: Dropbox - Throw away your USB drive", "1984"]
    assert research.insights[1].url == "https://news.ycombinator.com/item?id=1984"  # "url": "" is no link


def test_hn_list_of_only_deleted_stubs_is_refused_with_a_sentence(daemon):
    data = json.dumps([{"id": 1, "deleted": True}, {"id": 2, "dead": True, "type": "comment"}, None]).encode()
    with pytest.raises(ResearchError, match=r"^x.json: hackernews: no stories left after dropping deleted"):
        extract(daemon.catalogue, data, "x.json", ".json")


def _fixture(name):
    return json.loads(fixture_bytes(name))


ODD = [None, "a stray string", 42, [], {"unrelated": True}]


@pytest.mark.parametrize("name,source,first", [
    ("praw_records.json", "reddit", "Automation tools"),
    ("hn_items.json", "hackernews", "Dropbox"),
    ("github_trending.json", "github", "go"),
])
@pytest.mark.parametrize("odd", ODD, ids=repr)
def test_one_element_of_another_shape_never_stops_a_list_being_recognised(daemon, name, source, first, odd):
    for at in (0, 1, -1):
        items = _fixture(name)
        items.insert(at if at >= 0 else len(items), odd)
        research, _ = extract(daemon.catalogue, json.dumps(items).encode(), name, ".json")
        assert research.source == source and first in research.insights[0].text


@pytest.mark.parametrize("odd", ODD, ids=repr)
def test_odd_elements_in_the_other_lists_too(daemon, odd):
    thread = _fixture("reddit_thread.json") + [odd]
    assert extract(daemon.catalogue, json.dumps(thread).encode(), "t.json", ".json")[0].insights[0].text.startswith(
        "What tool saved you")
    trends = [odd, {"trend": "epic", "traffic": "1000+", "news_articles": [odd, {"headline": "Epic wins"}]}]
    research, _ = extract(daemon.catalogue, json.dumps(trends).encode(), "g.json", ".json")
    assert research.source == "google_trends" and research.insights[0].detail == "1000+ searches. Epic wins"
    rows = [odd, {"date": "2021-01-01", "pizza": 80, "isPartial": False}, {"date": "2021-01-08", "pizza": 95,
                                                                             "isPartial": False}]
    research, _ = extract(daemon.catalogue, json.dumps(rows).encode(), "i.json", ".json")
    assert research.insights[0].text == "Search interest in pizza is rising from 80 to 95 out of 100"
    search = _fixture("github_search.json")
    search["items"].insert(0, odd)
    assert extract(daemon.catalogue, json.dumps(search).encode(), "s.json", ".json")[0].source == "github"


def test_numbers_are_titles_in_every_source(daemon):
    hits = {"hits": [{"objectID": "7", "title": 1984, "points": 3, "created_at_i": 1}], "nbHits": 1}
    assert extract(daemon.catalogue, json.dumps(hits).encode(), "a.json", ".json")[0].insights[0].text == "1984"
    job = {"analysis": {"key_insights": [1984, {"title": 2049, "description": "sequel"}]}}
    research, _ = extract(daemon.catalogue, json.dumps(job).encode(), "j.json", ".json")
    assert [(i.text, i.detail) for i in research.insights] == [("1984", None), ("2049", "sequel")]
    repos = [{"author": "orwell", "name": 1984, "stars": 10}]
    assert extract(daemon.catalogue, json.dumps(repos).encode(), "g.json", ".json")[0].insights[0].url == (
        "https://github.com/orwell/1984")


def test_github_drops_repositories_github_disabled(daemon):
    search = _fixture("github_search.json")
    search["items"][0]["disabled"] = True
    research, _ = extract(daemon.catalogue, json.dumps(search).encode(), "s.json", ".json")
    assert search["items"][0]["full_name"] not in [i.url.removeprefix("https://github.com/") for i in research.insights]


def test_a_timestamp_no_calendar_holds_is_no_time(daemon):
    records = [{"title": "Far future", "score": 1, "comms_num": 0, "created_utc": 10 ** 400}]
    research, _ = extract(daemon.catalogue, json.dumps(records).encode(), "p.json", ".json")
    assert research.insights[0].text == "Far future" and research.insights[0].created_at is None
