"""Any campaign file, however broken, gives a campaign or our own error with `path:line: reason`.

Hypothesis writes the files: arbitrary bytes and text, YAML documents shaped like a campaign
with wrong values in every field, and a valid file cut off anywhere (a half-written save).
Each is loaded the way the daemon loads it (schema, then every name it uses).
"""

import json
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar_daemon.campaigns.schema import Campaign
from avatar_daemon.campaigns.service import load_campaign
from avatar_daemon.errors import ConfigError
from avatar_daemon.testing import make_daemon

CHECKS = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

VALID = {"name": "ai", "description": "AI news", "sources": [{"source": "reddit", "fetch": {"subreddit": "ai"}}],
         "schedule": {"every": "weekly", "day": "friday", "at": "16:00", "timezone": "Europe/Berlin"},
         "max_videos_per_day": 2, "avatar": "mike", "formats": ["tiktok", "youtube"], "voice_speed": 1.1,
         "quality": {"min_insights": 2, "min_score": 10, "include_keywords": ["ai"], "max_age_hours": 24},
         "notify": {"slack_channel": "#ai"}, "auto_post": ["youtube"]}
VALID_TEXT = yaml.safe_dump(VALID, sort_keys=False)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                    st.dates(), st.sampled_from(["", "09:00", "25:99", "* * * * *", "61 * * * *", "Mars/Olympus",
                                                 "daily", "biweekly", "tiktok", "reddit", "-1", "1e400"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def campaign_shaped():
    """Campaign documents whose fields, nested ones too, hold anything."""
    def mutate(doc, path_value):
        path, value = path_value
        node = doc
        for key in path[:-1]:
            node = node[key] if isinstance(node, dict) and isinstance(node.get(key), dict) else None
            if node is None:
                return doc
        node[path[-1]] = value
        return doc

    paths = st.sampled_from([(k,) for k in [*VALID, "extra"]] +
                            [("schedule", k) for k in ["every", "at", "day", "cron", "timezone", "starts"]] +
                            [("quality", k) for k in VALID["quality"]] + [("notify", "webhook")])
    def apply(changes):
        doc = json.loads(json.dumps(VALID))
        for change in changes:
            doc = mutate(doc, change)
        return doc

    return st.lists(st.tuples(paths, values), max_size=4).map(apply)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return make_daemon(tmp_path_factory.mktemp("props")).catalogue


def load(catalogue, tmp_path, data: bytes):
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    try:
        return load_campaign(catalogue, path)
    except ConfigError as exc:
        assert exc.problems, "an error with no problem in it"
        for problem in exc.problems:
            assert re.fullmatch(rf"{re.escape(str(path))}:[1-9]\d*: \S.*", problem, re.S), problem
            assert "Traceback" not in problem
        return exc


@CHECKS
@given(st.binary(max_size=300))
def test_any_bytes(catalogue, tmp_path, data):
    load(catalogue, tmp_path, data)


@CHECKS
@given(st.text(max_size=300))
def test_any_text(catalogue, tmp_path, text):
    load(catalogue, tmp_path, text.encode())


@CHECKS
@given(campaign_shaped())
def test_campaign_shaped_documents_with_any_values(catalogue, tmp_path, doc):
    result = load(catalogue, tmp_path, yaml.safe_dump(doc, allow_unicode=True).encode())
    if isinstance(result, Campaign):
        assert Campaign.model_validate_json(result.model_dump_json()) == result  # what the store keeps loads back


@CHECKS
@given(st.integers(0, len(VALID_TEXT)), st.text(max_size=5))
def test_a_valid_file_cut_off_anywhere(catalogue, tmp_path, cut, tail):
    load(catalogue, tmp_path, (VALID_TEXT[:cut] + tail).encode())


def test_the_unmutated_document_is_valid(catalogue, tmp_path):
    assert isinstance(load(catalogue, tmp_path, VALID_TEXT.encode()), Campaign)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("text, reason", [
    ("name: ai\x00\n", ":1: invalid YAML: character #x0000 is not allowed"),
    ("name: ai\ndescription: \x07bell\n", ":2: invalid YAML: character #x0007 is not allowed"),
    ("name: " + "[" * 5000 + "]" * 5000 + "\n", ":1: nested too deeply"),
    ("name: ai\nx: " + "[" * 70 + "]" * 70 + "\n", ":2: nested too deeply"),
    (VALID_TEXT.replace("subreddit: ai", "loop: &loop {again: *loop}"), ": nested too deeply"),
    (BOMB + VALID_TEXT.replace("subreddit: ai", "bomb: *i"), ": too large once its aliases are expanded"),
    (VALID_TEXT.replace("max_age_hours: 24", "max_age_hours: .inf"), "max_age_hours: Input should be a finite"),
    (VALID_TEXT.replace("max_age_hours: 24", "max_age_hours: 1e12"), "max_age_hours: Input should be less than"),
    (VALID_TEXT.replace("min_score: 10", "min_score: .nan"), "min_score: Input should be a finite number"),
    (VALID_TEXT.replace("Europe/Berlin", "Europe"), "schedule.timezone: Value error, 'Europe' is not a known"),
])
def test_hostile_files_are_refused_with_the_reason(catalogue, tmp_path, text, reason):
    """Each of these escaped as another exception (the watcher then died), or loaded and failed every run."""
    result = load(catalogue, tmp_path, text.encode())
    assert isinstance(result, ConfigError) and any(reason in p for p in result.problems), result
