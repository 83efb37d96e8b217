"""The template writer on real research: each insight with its figures, words for numbers, varied openers."""

import json
import re
import unicodedata

import pytest

from avatar_daemon import Insight, RenderRequest, Research, Script, ScriptTemplate, numbers_in_words, say_number
from avatar_daemon import to_spoken
from avatar_daemon.planning import Limits, extract
from avatar_daemon_plugins.template_writer import TemplateWriter
from tests.builtins.test_slack import slack  # noqa: F401 (the fake Slack fixture)
from tests.conftest import fixture_bytes

MINUTE = Limits(max_seconds=60, voice_speed=1.0)


def _research(daemon, name: str) -> Research:
    return extract(daemon.catalogue, fixture_bytes(name), name, "." + name.rsplit(".", 1)[1])[0]


def _write(daemon, research: Research, limits: Limits = MINUTE) -> Script:
    return daemon.script_writer().write(research, research.source, limits)


@pytest.mark.parametrize("value, spoken", [
    (12, "twelve"), (999, "nine hundred and ninety-nine"), (200_000, "two hundred thousand"),
    (225_273, "about two hundred and thirty thousand"), (1234, "about one thousand two hundred"),
    (2_450_000, "about two and a half million"), (1_950_000, "about two million"),
])
def test_a_source_count_is_read_as_a_rough_size(value, spoken):
    assert say_number(value, rough=True) == spoken


@pytest.mark.parametrize("written, spoken", [
    ("200,000+ searches", "more than two hundred thousand searches"),
    ("50K+ searches", "more than fifty thousand searches"),
    ("the 3rd time in 2024, 1,234 users", "the third time in twenty twenty-four, one thousand two hundred and "
                                          "thirty-four users"),
    ("Up 300% to $2.5B in v2.1", "Up three hundred percent to two and a half billion dollars in version two point one"),
    ("H100, GPT-4 and a 30-second reset", "H100, GPT-4 and a thirty-second reset"),  # names keep their digits
])
def test_figures_in_text_are_written_as_spoken(written, spoken):
    assert numbers_in_words(to_spoken(written)) == spoken


def test_each_insight_is_one_unit_with_its_own_figures(daemon):
    """GitHub's stars belong to their repository's paragraph, in words, not in a list after all items."""
    script = _write(daemon, _research(daemon, "github_trending.json"))
    items = [p for p in script.paragraphs if p.startswith(("First:", "Second:"))]
    assert len(items) == 2
    assert items[0].startswith("First: go:") and "one hundred and ten thousand stars" in items[0]
    assert items[1].startswith("Second: architect awesome") and "about forty thousand stars" in items[1]
    assert not re.search(r"\d", script.text)  # captions show the script: words, as spoken


def test_numbers_are_read_one_way_in_one_script(daemon):
    """'200,000+' and '50K+' (both as Google Trends writes traffic) come out alike."""
    research = Research(source="google_trends", title="Trending searches", topic="today's searches", insights=[
        Insight(text="Solar eclipse", score=200_000, detail="200,000+ searches. Millions look up."),
        Insight(text="Cup final", score=50_000, detail="50K+ searches."),
    ])
    text = _write(daemon, research).text
    assert "More than two hundred thousand searches" in text and "More than fifty thousand searches" in text
    assert "plus" not in text and "+" not in text and not re.search(r"\d", text)


def test_a_topic_that_is_the_source_is_not_said_twice():
    template = ScriptTemplate(title="Trending on Reddit: {topic}", intro=[
        "Here's what {source_label} is buzzing about in {topic} today.", "Fresh from {source_label} today."])
    writer = TemplateWriter({"reddit": template})
    for n in range(6):
        research = Research(source="reddit", title="Trending on Reddit", topic="Reddit",
                            insights=[Insight(text=f"Story {n} about gardens and tools")])
        script = writer.write(research, "reddit", MINUTE)
        assert script.paragraphs[0] == "Fresh from Reddit today."
        assert script.title == "Trending on Reddit"
    python = Research(source="reddit", title="t", topic="r/python", insights=[Insight(text="A story about tools")])
    chosen = {writer.write(python.model_copy(update={"insights": [Insight(text=f"Story {n} about tools")]}),
                           "reddit", MINUTE).paragraphs[0] for n in range(12)}
    assert "Here's what Reddit is buzzing about in r/python today." in chosen


def test_openers_and_closers_vary_by_research_and_repeat_for_the_same_one(daemon):
    def research(n):
        return Research(source="hackernews", title="t", topic="Hacker News",
                        insights=[Insight(text=f"Story number {n} on databases", score=100 + n)])

    openers = {_write(daemon, research(n)).paragraphs[0] for n in range(12)}
    closers = {_write(daemon, research(n)).paragraphs[-1] for n in range(12)}
    assert len(openers) >= 2 and len(closers) >= 2
    assert all("Hacker News" not in o or o.count("Hacker News") == 1 for o in openers)
    assert _write(daemon, research(3)).text == _write(daemon, research(3)).text


def _latin_only(text: str) -> bool:
    return all(not ch.isalpha() or unicodedata.name(ch).startswith("LATIN") for ch in text)


def test_text_the_voice_cannot_read_is_left_out_and_reported(daemon):
    research = _research(daemon, "trends_rss.xml")
    assert any(i.text == "코스피 폭락" for i in research.insights)
    script = _write(daemon, research)
    assert _latin_only(script.text) and "AT and T outage" in script.text
    assert any("코스피 폭락" in note and "left out of the narration" in note for note in script.notes)
    github = _write(daemon, _research(daemon, "github_trending.json"))
    assert _latin_only(github.text) and "architect awesome" in github.text
    assert "后端架构师技术图谱" in github.description  # still on the video's page, just not spoken


def test_content_length_rules_hold_and_details_stay_with_their_item():
    template = ScriptTemplate.model_validate({"intro": "Today's notes.", "item": "{ordinal}: {text}.",
                                              "outro": "Bye.", "min_content_length": 300,
                                              "max_content_length": 420})
    writer = TemplateWriter({"default": template})
    short = Research(source="research_job", title="t", topic="teams", insights=[
        Insight(text="Teams automate reporting first", detail="Weekly reports took 6 hours before automation."),
        Insight(text="Reviews move to async", detail="Most teams now review code in writing."),
    ])
    script = writer.write(short, "research_job", MINUTE)
    assert script.paragraphs[1] == ("First: Teams automate reporting first. Weekly reports took six hours "
                                    "before automation.")
    assert script.paragraphs[2].startswith("Second: Reviews move to async.")
    assert script.paragraphs[-1] == "Bye."
    long = short.model_copy(update={"insights": [Insight(text=f"Finding {n} " + "with plenty of words " * 8)
                                                 for n in range(8)]})
    assert len(writer.write(long, "research_job", Limits(max_seconds=600, voice_speed=1.0)).text) <= 420


def test_every_script_has_a_title_description_and_hashtags(daemon):
    research = _research(daemon, "github_trending.json")
    script = _write(daemon, research)
    assert script.title == "Trending on GitHub"
    for insight in research.insights[: script.insights_used]:
        assert f"{insight.text} {insight.url}" in script.description
    assert script.hashtags[0] == "#GitHub" and "#Go" in script.hashtags
    own = TemplateWriter({"github": ScriptTemplate(description="Daily picks from {source_label}",
                                                   hashtags=["#opensource"])}).write(research, "github", MINUTE)
    assert own.description.startswith("Daily picks from GitHub\n\n1. go:")
    assert own.hashtags[:2] == ["#opensource", "#GitHub"]


def test_metadata_json_carries_the_description_and_hashtags(daemon, tmp_path):
    from avatar_daemon_plugins.local_renderer.renderer import LocalRenderer

    script = Script(title="Picks", text="Two picks today.", estimated_seconds=2,
                    description="Picks\n\n1. go https://github.com/golang/go", hashtags=["#GitHub", "#Go"])
    request = RenderRequest(job_id=1, script=script, avatar=daemon.avatar(daemon.settings.default_avatar),
                            format=daemon.formats["portrait-720"], output_dir=tmp_path / "out")
    meta = json.loads(LocalRenderer(preset="ultrafast").render_sync(request, lambda p, m: None).metadata.read_text())
    assert meta["description"] == script.description and meta["hashtags"] == ["#GitHub", "#Go"]


async def test_a_request_overrides_the_page_text_and_the_job_reports_what_was_left_out(daemon, plugin):
    from avatar_daemon.testing import running, wait_until

    rss = fixture_bytes("trends_rss.xml").decode()
    async with running(daemon):
        plain = await daemon.pipeline.ingest(rss.encode(), "trends.xml", ".xml")
        await wait_until(lambda: plugin.notifier.states(plain.job_ids[0]))
        envelope = {"request": {"description": "Our own words", "hashtags": ["#mine"]},
                    "research": json.loads(fixture_bytes("github_trending.json"))}
        own = await daemon.pipeline.ingest(json.dumps(envelope).encode(), "g.json", ".json")
    queued = next(e for e in plugin.notifier.events if e.job_id == plain.job_ids[0] and e.state == "queued")
    assert any("코스피 폭락" in note for note in queued.data["notes"])
    assert own.script.description == "Our own words" and own.script.hashtags == ["#mine"]


async def test_the_api_shows_a_video_s_description_and_hashtags(tmp_path):
    import aiohttp

    from tests.test_http_api import TOKENS, users_yaml
    from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running

    users_yaml(tmp_path)
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer())],
                         settings=make_settings(tmp_path, users_file="users.yaml"))
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        ingested = await daemon.pipeline.ingest(fixture_bytes("github_trending.json"), "g.json", ".json")
        async with http.get(f"/videos/{ingested.job_ids[0]}",
                            headers={"Authorization": f"Bearer {TOKENS['root']}"}) as resp:
            video = await resp.json()
    assert resp.status == 200
    assert video["description"] == ingested.script.description and "https://github.com/golang/go" in video["description"]
    assert video["hashtags"] == ingested.script.hashtags and "#GitHub" in video["hashtags"]
    assert any("后端架构师技术图谱" in n for n in video["script_notes"])


async def test_slack_shows_the_description_and_hashtags_with_the_script(tmp_path, slack):
    from avatar_daemon.testing import running, wait_until
    from tests.builtins.test_slack import slack_daemon

    daemon, _ = slack_daemon(tmp_path, slack, source_channels={"hackernews": "C-HN"})
    async with running(daemon):
        done = await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
        await wait_until(lambda: [p for p in slack.called("chat.postMessage") if p.get("thread_ts")])
    (thread,) = [p for p in slack.called("chat.postMessage") if p.get("thread_ts")]
    shown = json.dumps(thread["blocks"] if isinstance(thread["blocks"], list) else json.loads(thread["blocks"]))
    assert "*Description*" in shown and "https://news.ycombinator.com/item?id=13713480" in shown
    assert " ".join(done.script.hashtags) in shown and "#HackerNews" in shown


async def test_a_campaign_puts_its_own_hashtags_first(tmp_path):
    from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, running, wait_until

    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer())])
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns/ai.yaml").write_text(
        "name: ai\nsources: [{source: github}]\nschedule: {every: daily}\nhashtags: ['#DailyRepos', GitHub]\n"
        "quality: {min_insights: 1, max_age_hours: 1000000}\n")
    async with running(daemon):
        await wait_until(lambda: daemon.campaigns.path_of("ai"))
        await daemon.pipeline.ingest(fixture_bytes("github_search.json"), "gh.json", ".json")
        report = await daemon.campaigns.run_now("ai")
        script = await daemon.jobs.script_for(await daemon.store.job(report.job_ids[0]))
    assert script.hashtags[:2] == ["#DailyRepos", "#GitHub"] and script.hashtags.count("#GitHub") == 1
