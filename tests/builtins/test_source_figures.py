"""The figures each source keeps on its insights for the research cards: as saved, never made up."""

from avatar_daemon.planning import extract
from tests.conftest import fixture_bytes


def research_of(daemon, name):
    return extract(daemon.catalogue, fixture_bytes(name), name, "." + name.rsplit(".", 1)[1])[0]


def by_text(research, part):
    return next(i for i in research.insights if part in i.text)


def test_reddit_keeps_subreddit_and_comments(daemon):
    post = by_text(research_of(daemon, "reddit_thread.json"), "What tool saved you")
    assert post.score == 5730 and post.meta == {"subreddit": "r/self", "comments": 3}
    # the tutorial export names its comment count comms_num
    records = research_of(daemon, "praw_records.json")
    assert all("comments" in i.meta for i in records.insights)


def test_hacker_news_keeps_comments_and_the_site_it_links_to(daemon):
    hits = research_of(daemon, "hn_algolia.json")
    react = by_text(hits, "Relicensing React")
    assert react.score == 2280 and react.meta == {"comments": 498, "site": "code.facebook.com"}
    assert by_text(hits, "SHA-1").meta == {}  # no count and no link saved: nothing to show
    items = research_of(daemon, "hn_items.json")
    assert by_text(items, "Dropbox").meta == {"comments": 71, "site": "getdropbox.com"}
    assert "site" not in by_text(items, "Ask HN").meta  # its link is HN's own item page


def test_github_keeps_name_description_stars_language_and_topics(daemon):
    research = research_of(daemon, "github_search.json")
    react = by_text(research, "react")
    assert react.meta == {"repo": "facebook/react", "description": "The library for web and native user interfaces.",
                          "stars": 225273, "language": "JavaScript", "topics": ["react"]}
    docs = next(i for i in research.insights if i.meta.get("repo") == "someone/docs")
    assert "language" not in docs.meta and "topics" not in docs.meta  # null in the data: left out
    trending = research_of(daemon, "github_trending.json")
    assert any(i.meta.get("stars_recent") for i in trending.insights)


def test_trends_interest_keeps_its_series_and_dates(daemon):
    research = research_of(daemon, "pytrends_columns.json")
    pizza = by_text(research, "pizza")
    # the partial last week is left out, as in the sentence
    assert pizza.meta == {"keyword": "pizza", "series": [100, 84], "dates": ["2021-01-01", "2021-01-08"]}
    serp = research_of(daemon, "serpapi.json").insights[0]
    assert serp.meta == {"keyword": "Klima", "series": [90, 100], "dates": ["Jan 2004", "Feb 2004"]}
    widget = by_text(research_of(daemon, "trends_widget.json"), "keyword 1")
    assert widget.meta["series"] == [88]


def test_trending_searches_keep_their_traffic_as_written(daemon):
    research = research_of(daemon, "trends_rss.xml")
    outage = by_text(research, "AT&T outage")
    assert outage.meta["traffic"].endswith("+") and outage.meta["traffic"] in outage.detail
    assert outage.meta.get("news", "") in (outage.detail or "")
