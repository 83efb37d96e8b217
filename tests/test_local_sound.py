"""The soundtrack of local renders, measured in the decoded MP4 audio with a BS.1770 loudness meter."""

import av
import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from avatar_daemon import RenderError, RenderRequest, Script
from avatar_daemon.testing import make_daemon
from avatar_daemon_plugins.local_renderer.mix import DUCK, bed_gains
from avatar_daemon_plugins.local_renderer.renderer import LocalRenderer
from avatar_daemon_plugins.local_renderer.tts import Word

RATE = 48000
TONE = 60.0  # under the voice's pitch: the voice leaves this band almost empty
TEXT = ("Small open models now beat last year's giants on coding benchmarks.\n\n"
        "Developers are shipping them in editors, phones and tiny servers, and the results are good.")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_daemon(tmp_path_factory.mktemp("d"))


def write_tone(path, seconds=3.0, rate=44100):
    """A steady sine as the music: easy to find again under the voice."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * TONE * t)).astype(np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
        frame.rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def render(base, tmp_path, avatar="mike", **kw):
    request = RenderRequest(job_id=2, script=Script(title="Sound", text=TEXT, estimated_seconds=9),
                            avatar=base.avatar(avatar), format=base.formats["portrait-720"],
                            output_dir=tmp_path / "out", title_card=False, captions=False, **kw)
    result = LocalRenderer(preset="ultrafast").render_sync(request, lambda p, m: None)
    with av.open(str(result.video)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        return np.concatenate([r.to_ndarray().reshape(-1) for f in c.decode(audio=0)
                               for r in resampler.resample(f)]).astype(np.float64)


def true_peak_db(audio):
    return 20 * np.log10(np.max(np.abs(resample_poly(audio, 4, 1))))


@pytest.mark.parametrize("avatar", ["mike", "sarah"])  # Piper and espeak
def test_voice_meets_the_social_loudness_target(base, tmp_path, avatar):
    audio = render(base, tmp_path, avatar)
    lufs = pyloudnorm.Meter(RATE).integrated_loudness(audio)
    assert -15.0 <= lufs <= -13.0, f"{lufs:.1f} LUFS"
    assert true_peak_db(audio) < -1.0


def tone_and_rest(audio, window):
    """Per window: the tone's RMS (its projection on a sine and cosine at its pitch) and the RMS of the rest."""
    t = np.arange(window) / RATE
    s, c = np.sin(2 * np.pi * TONE * t), np.cos(2 * np.pi * TONE * t)
    out = []
    for i in range(0, len(audio) - window, window):
        x = audio[i:i + window]
        a, b = 2 * x @ s / window, 2 * x @ c / window
        tone = np.hypot(a, b) / np.sqrt(2)
        rest = np.sqrt(max(np.mean(x ** 2) - tone ** 2, 1e-12))
        out.append((tone, rest))
    return np.array(out)


def test_music_bed_sits_under_the_voice_faded_and_looped(base, tmp_path):
    music = tmp_path / "bed.wav"
    write_tone(music)
    audio = render(base, tmp_path, music=music)
    levels = tone_and_rest(audio, RATE // 10)
    tone_db, voice_db = 20 * np.log10(levels[:, 0] + 1e-9), 20 * np.log10(levels[:, 1] + 1e-9)
    speaking = voice_db > np.percentile(voice_db, 90) - 10
    assert speaking.sum() > 30
    assert np.all(voice_db[speaking] - tone_db[speaking] >= 12)  # the music sits at least 12 dB under the voice
    middle = np.median(tone_db[speaking])
    assert middle > -60  # and it is there
    # Faded in and out: without the fades the lead-in and the tail, where nothing is spoken, would
    # carry the bed unducked, about 16 dB over `middle`. The last 100 ms window's place against
    # the fade's end moves with the speech's length, so the margin is kept wide of that.
    assert tone_db[0] < middle - 6 and tone_db[-1] < middle - 6
    assert len(audio) / RATE > 6  # longer than the 3 s file: it looped
    lufs = pyloudnorm.Meter(RATE).integrated_loudness(audio)
    assert -15.0 <= lufs <= -13.0 and true_peak_db(audio) < -1.0


def test_duck_is_down_before_the_voice_and_up_in_a_long_pause():
    """Computed from the words' times, the duck is already down when a word starts."""
    words = [Word("one", 1.0, 1.5), Word("two", 4.0, 4.5)]
    gains = bed_gains(words, 6 * 30, 30, end=6.0)
    assert gains[30] <= DUCK * 1.01 and gains[135] <= DUCK * 1.01  # at each word's first frame
    assert gains[int(2.8 * 30)] > 0.9  # the bed is back up between them
    assert gains[-1] == 0.0 and gains[0] == 0.0


def test_unreadable_music_file_is_named(base, tmp_path):
    bad = tmp_path / "bed.mp3"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(RenderError, match="music file .*bed.mp3"):
        render(base, tmp_path, music=bad)
