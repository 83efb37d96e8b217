"""The LLM writer against a fake OpenAI-compatible server on loopback: grounded, checked, retried, off the loop."""

import asyncio
import json
import re

import pytest

from avatar_daemon import Insight, Research, ScriptTemplate
from avatar_daemon.planning import Limits, awrite_script, prepare
from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings
from avatar_daemon_plugins.llm_writer import check
from tests.conftest import fixture_bytes
from tests.fake_llm import FakeLLM, Reply

RESEARCH = Research(source="hackernews", title="Top stories on Hacker News", topic="Hacker News", insights=[
    Insight(text="SQLite 3.45 adds JSONB", score=1234, url="https://sqlite.org/releaselog/3_45_0.html",
            detail="Faster JSON storage"),
    Insight(text="Rust in the Linux kernel", score=856, url="https://lwn.net/Articles/rust"),
])
GOOD = ("Here are today's top stories on Hacker News.\n\n"
        "SQLite 3.45 adds JSONB, with about 1,200 points. It means faster JSON storage.\n\n"
        "Rust in the Linux kernel follows, with 856 points.\n\n"
        "That's it for today. Follow for more.")
UNGROUNDED = ("Here are today's top stories on Hacker News.\n\nSQLite 3.45 adds JSONB, and Microsoft "
              "is said to be adopting it, with 5,000 points.\n\nRust in the Linux kernel follows, with 856 points. "
              "That's it for today. Follow for more.")
MINUTE = Limits(max_seconds=60, voice_speed=1.0)


def _daemon(tmp_path, base_url, **llm):
    settings = make_settings(tmp_path, plugins={"settings": {"llm": {
        "base_url": base_url, "model": "test-model", "retry_delay": 0, **llm}}})
    return make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer())], settings=settings)


async def _write(daemon, research=RESEARCH, writer="llm"):
    return await awrite_script(daemon.catalogue, research, ["tiktok"], None, writer)


async def test_a_grounded_script_streams_in_and_is_spoken_in_words(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-123")
    fake = FakeLLM([Reply(GOOD)], api_key="sk-test-key-123")
    async with fake as url:
        script = await _write(_daemon(tmp_path, url))
    assert script.writer == "llm" and script.notes == []
    assert script.paragraphs[1] == ("SQLite three point four five adds JSONB, with about one thousand two hundred "
                                    "points. It means faster JSON storage.")
    assert not re.search(r"\d", script.text)  # captions show the words the voice says
    assert script.title and "https://lwn.net/Articles/rust" in script.description and "#HackerNews" in script.hashtags
    (body,) = fake.requests
    assert body["model"] == "test-model" and body["stream"] is True
    asked = body["messages"][-1]["content"]
    for fact in ("SQLite 3.45 adds JSONB", "points: 1,234", "https://sqlite.org/releaselog/3_45_0.html",
                 "points: 856", "Faster JSON storage"):
        assert fact in asked
    assert fake.headers[0]["Authorization"] == "Bearer sk-test-key-123"


async def test_a_server_that_does_not_stream_is_read_too(tmp_path):
    fake = FakeLLM([Reply(GOOD)])
    async with fake as url:
        script = await _write(_daemon(tmp_path, url, stream=False))
    assert script.writer == "llm" and fake.requests[0]["stream"] is False
    assert "Authorization" not in fake.headers[0]  # no key configured: a local server needs none


async def test_rate_limits_and_server_errors_are_retried(tmp_path):
    fake = FakeLLM([Reply(status=429, message="Rate limit reached", retry_after="0"),
                    Reply(status=503, message="The server is overloaded"), Reply(GOOD)])
    async with fake as url:
        script = await _write(_daemon(tmp_path, url))
    assert script.writer == "llm" and len(fake.requests) == 3


async def test_a_script_that_fails_a_check_is_asked_for_again_with_the_reasons(tmp_path):
    fake = FakeLLM([Reply(UNGROUNDED), Reply(GOOD)])
    async with fake as url:
        script = await _write(_daemon(tmp_path, url))
    assert script.writer == "llm" and len(fake.requests) == 2
    retry = fake.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": UNGROUNDED}
    assert "the name 'Microsoft' is not in the research" in retry[-1]["content"]
    assert "the figure '5,000' is not in the research" in retry[-1]["content"]


async def test_two_failed_scripts_fall_back_to_the_template_writer_and_say_why(tmp_path):
    fake = FakeLLM([Reply(UNGROUNDED), Reply("**Breaking**: read it at https://example.com 🚀")])
    async with fake as url:
        script = await _write(_daemon(tmp_path, url))
    assert script.writer == "template" and script.paragraphs[1].startswith("First: SQLite")
    (note,) = script.notes
    assert "failed its checks twice" in note and "link" in note and "template writer's script is used" in note


async def test_an_error_body_is_reported_without_retrying_or_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-wrong-secret")
    fake = FakeLLM([Reply(GOOD)], api_key="sk-right")
    async with fake as url:
        script = await _write(_daemon(tmp_path, url, api_key_env="MY_LLM_KEY"))
    assert script.writer == "template" and len(fake.headers) == 1
    (note,) = script.notes
    assert "HTTP 401: Incorrect API key provided." in note and "sk-wrong-secret" not in note


async def test_a_server_that_never_answers_times_out_into_the_template_writer(tmp_path):
    never = asyncio.Event()
    fake = FakeLLM([Reply(GOOD, hold=never)])
    async with fake as url:
        script = await _write(_daemon(tmp_path, url, timeout_seconds=0.3))
        never.set()
    assert script.writer == "template" and "no answer within 0.3 seconds" in script.notes[0]


async def test_the_event_loop_keeps_running_while_the_model_writes(tmp_path):
    """The fake server runs on this loop: a writer that blocked it could never be answered."""
    ready = asyncio.Event()
    fake = FakeLLM([Reply(GOOD, hold=ready)])
    async with fake as url:
        task = asyncio.create_task(_write(_daemon(tmp_path, url)))
        await asyncio.wait_for(fake.arrived.wait(), 10)
        assert not task.done()
        ready.set()
        script = await asyncio.wait_for(task, 10)
    assert script.writer == "llm"


async def test_the_writer_is_chosen_by_request_or_template_and_is_off_by_default(tmp_path):
    fake = FakeLLM([Reply(GOOD) for _ in range(4)])
    async with fake as url:
        daemon = _daemon(tmp_path, url)
        algolia = json.loads(fixture_bytes("hn_algolia.json"))
        default = await asyncio.to_thread(prepare, daemon.catalogue, fixture_bytes("hn_algolia.json"), "a.json", ".json")
        assert default.script.writer == "template" and fake.requests == []
        envelope = json.dumps({"request": {"writer": "llm"}, "research": algolia}).encode()
        chosen = await asyncio.to_thread(prepare, daemon.catalogue, envelope, "b.json", ".json")
        # GOOD is about other stories: the llm writer was asked, twice, and said why it fell back
        assert len(fake.requests) == 2 and "failed its checks twice" in chosen.script.notes[-1]
        templates = daemon.settings.script_templates
        templates["hackernews"] = templates["hackernews"].model_copy(update={"writer": "llm"})
        script = await _write(daemon, writer=None)
        assert len(fake.requests) == 3 and script.writer == "llm"


def test_bad_settings_name_the_setting_and_leave_the_rest_running(tmp_path):
    daemon = _daemon(tmp_path, "http://127.0.0.1:9/v1", temperature=5)
    (info,) = [p for p in daemon.plugins if p.name == "llm_writer"]
    assert "plugins.settings.llm.temperature: Input should be less than or equal to 2" in info.error
    assert "llm" not in daemon.script_writers and daemon.script_writer().name == "template"


@pytest.mark.parametrize("text, problem", [
    ("See https://example.com for more.", "link"),
    ("## Today\n\nSQLite 3.45 adds JSONB.", "markup"),
    ("- SQLite 3.45 adds JSONB\n- Rust in the Linux kernel", "list"),
    ("SQLite 3.45 adds JSONB 🚀.", "emoji"),
    ("SQLite 3.45 adds JSONB, say 東京 fans.", "script the voice cannot read"),
    ("SQLite 3.45 adds JSONB with two hundred thousand fans.", "in digits"),
    ("SQLite 3.45 adds JSONB. " * 60, "seconds to say"),
    ("SQLite 3.45.", "at least"),
])
def test_unspeakable_or_misfit_scripts_are_refused(text, problem):
    problems = check(text, RESEARCH, MINUTE, ScriptTemplate(min_chars=50))
    assert any(problem in p for p in problems), problems


def test_a_grounded_plain_script_passes_every_check():
    assert check(GOOD, RESEARCH, MINUTE, ScriptTemplate()) == []
