"""The female presenters' voice: festival's SLT when it is installed (CI installs it), espeak-ng when not.

Real synthesis and real renders, measured from the decoded audio and frames.
"""

import logging
import os
import shutil

import numpy as np
import pytest

from avatar_daemon import RenderError
from avatar_daemon_plugins.local_renderer import festival, tts, visemes
from tests.test_local_look import at_rest_in_loud_speech, decode, mouth_box, mouth_difference, mouth_lag, render

HOSTILE = ('She said "stop" (twice); then \\ left \\" at 3:00 pm. ") (system "touch {marker}") ("'
           " ;; (quit) \\\") 'quote `back #t café — naïve “smart” emoji 🙂 done.")


def festival_or_skip():
    if not festival.available():
        if os.environ.get("CI"):
            pytest.fail(f"CI installs festival's SLT voice but festival cannot load it: {festival.INSTALL}")
        pytest.skip(f"festival's SLT voice is not installed ({festival.INSTALL})")


@pytest.fixture
def fresh_choice():
    tts.female_engine.cache_clear()
    yield
    tts.female_engine.cache_clear()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from avatar_daemon.testing import make_daemon

    return make_daemon(tmp_path_factory.mktemp("d"))


def test_festival_speaks_with_phone_and_word_timings():
    festival_or_skip()
    text = "Solar panels now cost five times less than in 2010, a big move."
    result = festival.synthesize(text)
    seconds = len(result.audio) / result.sample_rate
    assert 2.0 < seconds < 8.0 and np.sqrt(np.mean(result.audio ** 2)) > 0.02
    spans = [(a, b) for _, a, b in result.phones]
    assert all(a < b for a, b in spans) and all(b1 <= a2 + 1e-6 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    assert spans[-1][1] <= seconds + 0.05
    # every phone lands on a mouth shape of its own, not the catch-all
    assert all(p[0] in visemes.PHONEME_SHAPE for p, _, _ in result.phones)
    assert {visemes.shape_of(p) for p, _, _ in result.phones} >= set("ABCDG")
    assert len(result.tokens) == len(text.split()) and all(result.tokens)
    starts = [a for a, _ in result.tokens]
    assert starts == sorted(starts) and result.tokens[-1][1] > 0.8 * spans[-1][1]


def test_festival_speed_follows_the_request():
    festival_or_skip()
    slow, fast = (festival.synthesize("The quick brown fox jumps over the lazy dog.", speed) for speed in (0.8, 1.25))
    ratio = (len(slow.audio) / slow.sample_rate) / (len(fast.audio) / fast.sample_rate)
    assert 1.3 < ratio < 1.9


def test_festival_keeps_the_pace_scripts_are_sized_for(fresh_choice):
    """Scripts are cut to a word budget per second; the female voice must fit it as Piper does."""
    festival_or_skip()
    from avatar_daemon.spoken import estimate_seconds
    from tests.test_local_look import SPEECH

    text = SPEECH + " Solar panels cost five times less than in 2010, and that changes who builds power plants."
    seconds = {voice: tts.join(tts.stream([text], voice, 1.0)).duration for voice in ("en-us-female", "piper-joe")}
    assert seconds["en-us-female"] == pytest.approx(seconds["piper-joe"], rel=0.1), seconds
    assert seconds["en-us-female"] < 1.1 * estimate_seconds(text) + tts.LEAD_IN + tts.TAIL, seconds


def test_hostile_text_is_spoken_not_run(tmp_path):
    festival_or_skip()
    marker = tmp_path / "ran"
    text = HOSTILE.format(marker=marker)
    result = festival.synthesize(text)
    assert not marker.exists()
    assert len(result.tokens) == len(text.split())  # every token accounted for, so the timings map back
    assert len(result.audio) / result.sample_rate > 3.0 and result.phones


def test_the_scheme_literal_cannot_be_ended_early():
    literal = festival.scheme_string('a"b\\"c\\')
    assert literal == '"a\\"b\\\\\\"c\\\\"'
    body = literal[1:-1]
    i = 0
    while i < len(body):  # every quote inside is escaped by an unescaped backslash
        if body[i] == "\\":
            i += 2
            continue
        assert body[i] != '"'
        i += 1


def test_female_voices_use_festival_when_installed_and_say_so_once(fresh_choice, caplog):
    festival_or_skip()
    with caplog.at_level(logging.INFO, logger=tts.__name__):
        pieces = list(tts.stream(["Hello there. Second sentence here."], "en-us-female", 1.0))
        list(tts.stream(["Once more."], "en-gb-female", 1.0))
    chosen = [r.getMessage() for r in caplog.records if r.getMessage().startswith("female voices")]
    assert chosen == [f"female voices: festival's {festival.VOICE}"]
    direct = festival.synthesize("Hello there.", tts.FESTIVAL_PACE)
    assert len(pieces[0].audio) - int(tts.LEAD_IN * tts.SAMPLE_RATE) == pytest.approx(
        len(direct.audio) * tts.SAMPLE_RATE / direct.sample_rate, abs=2)
    words = [w.text for p in pieces for w in p.words]
    assert words == ["Hello", "there.", "Second", "sentence", "here."]


def test_without_festival_female_voices_fall_back_to_espeak(fresh_choice, caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no festival on it
    with caplog.at_level(logging.INFO, logger=tts.__name__):
        pieces = list(tts.stream(["Hello there."], "en-us-female", 1.0))
    assert tts.female_engine() == "espeak"
    assert any("espeak-ng" in r.getMessage() and festival.INSTALL in r.getMessage() for r in caplog.records)
    assert [w.text for w in pieces[0].words] == ["Hello", "there."] and pieces[0].phonemes


def test_a_festival_failure_is_a_render_error_naming_festival(fresh_choice, monkeypatch, tmp_path):
    festival_or_skip()
    tts.female_engine()  # chosen while festival is there; then it goes away mid-run
    fake = tmp_path / "festival"
    fake.write_text("#!/bin/sh\necho 'SIOD ERROR: the voice broke' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert shutil.which("festival") == str(fake)
    with pytest.raises(RenderError, match=r"festival failed \(exit 3\): SIOD ERROR: the voice broke"):
        list(tts.stream(["Hello."], "en-us-female", 1.0))


def test_a_female_presenters_mouth_follows_festivals_voice(base, tmp_path, fresh_choice):
    """Mouth not at rest in more than 5% of loud frames; mouth against sound lag within 80 ms."""
    festival_or_skip()
    result = render(base, tmp_path, avatar="sarah")  # the script test_local_look measures Piper with
    frames, rms = decode(result.video)
    fmt = base.formats["portrait-720"]
    diff = mouth_difference(frames, mouth_box(fmt), frames[0])
    at_rest, _, _ = at_rest_in_loud_speech(diff, rms)
    assert at_rest < 0.05, f"mouth at rest in {at_rest:.0%} of loud-speech frames"

    lag, score = mouth_lag(diff, rms)
    assert abs(lag) * 1000 / 30 <= 80 and score > 0.4, (lag, score)
    assert tts.female_engine() == "festival"
