"""Caption looks in local renders: placed, coloured and split as the template says, in the bundled font."""

import av
import numpy as np
import pytest

from avatar_daemon import CaptionLook, CaptionStyle, RenderRequest, Script
from avatar_daemon.testing import make_daemon
from avatar_daemon_plugins.local_renderer import captions
from avatar_daemon_plugins.local_renderer.renderer import LocalRenderer
from avatar_daemon_plugins.local_renderer.scene import layout_for

TEXT = "Small open models now beat last year's giants on coding benchmarks."


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_daemon(tmp_path_factory.mktemp("d"))


def test_captions_use_the_font_shipped_in_the_package():
    fnt = captions.font(40)
    assert fnt.path == str(captions.BUNDLED_FONT) and captions.BUNDLED_FONT.is_file()
    assert fnt.getlength("Captions") > 100  # a real outline font at that size, not a bitmap fallback
    assert captions.font(40, "/no/such/font.ttf").path == str(captions.BUNDLED_FONT)


def test_a_template_look_places_colours_and_splits_captions(base, tmp_path):
    look = CaptionLook(position="top", active="box", active_colour="#ff0000", words_per_line=2, upper=True)
    request = RenderRequest(job_id=6, script=Script(title="Look", text=TEXT, estimated_seconds=5),
                            avatar=base.avatar("mike"), format=base.formats["portrait-720"],
                            output_dir=tmp_path / "out", title_card=False, caption_look=look)
    result = LocalRenderer(preset="ultrafast").render_sync(request, lambda p, m: None)
    with av.open(str(result.video)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    h = frames[0].shape[0]
    default_band = slice(layout_for(base.formats["portrait-720"]).caption_y, int(h * 0.85))
    white = lambda f: (f.min(axis=2) > 230).sum()  # noqa: E731
    red = lambda f: ((f[..., 0] > 200) & (f[..., 1] < 60) & (f[..., 2] < 60)).sum()  # noqa: E731
    speaking = frames[len(frames) // 3:2 * len(frames) // 3]
    assert all(white(f[:int(h * 0.2)]) > 300 for f in speaking)       # the text is at the top
    assert all(red(f[:int(h * 0.2)]) > 300 for f in speaking)         # the spoken word on a red box
    assert max(white(f[default_band]) for f in speaking) < 50          # and not in the usual place
    srt = result.srt.read_text().split("\n\n")
    assert all(len(block.split("\n")[2].split()) <= 2 for block in srt if block.strip())


def test_upper_case_changes_the_drawn_caption():
    cue = captions.Cue([captions.Word("hello", 0, 1), captions.Word("there", 1, 2)])
    plain = captions.render_caption(cue, captions.CaptionStyle.karaoke, 600, 60, (255, 255, 255))
    upper = captions.render_caption(cue, captions.CaptionStyle.karaoke, 600, 60, (255, 255, 255), upper=True)
    assert np.asarray(plain).tobytes() != np.asarray(upper).tobytes()


def test_srt_and_vtt_read_back_with_the_words_timings():
    import srt

    from avatar_daemon_plugins.local_renderer.captions import build_cues, to_srt, to_vtt
    from avatar_daemon_plugins.local_renderer.tts import Word

    words = [Word(t, 0.25 + i * 0.4, 0.6 + i * 0.4) for i, t in enumerate("One two three four five six seven.".split())]
    words.append(Word("Eight", 3725.5, 3726.0))  # past an hour
    cues = build_cues(words, CaptionStyle.karaoke, 3)
    subs = list(srt.parse(to_srt(cues)))
    assert [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in subs] == \
        [(round(c.start, 3), round(c.end, 3), c.text) for c in cues]
    vtt = to_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:00.250 --> ") and "01:02:05.500 --> 01:02:06.000" in vtt
    assert "<00:00:00.650>two" in vtt


def test_a_subtitle_that_wraps_is_split_into_even_lines():
    """Filled greedily, 'Hello there, this is a short check of how I look.' left 'look.' alone on a
    second line of a 1920-wide subtitle; balanced, the two lines of ink are about as wide."""
    from avatar_daemon_plugins.local_renderer.tts import Word

    text = "Hello there, this is a short check of how I look."
    cue = captions.Cue([Word(w, i * 0.3, i * 0.3 + 0.25) for i, w in enumerate(text.split())])
    img = captions.render_caption(cue, CaptionStyle.subtitles, 1536, 54, (255, 255, 255))
    ink = np.asarray(img.convert("RGB").convert("L")) > 200  # the white letters, not the box behind them
    rows = np.nonzero(ink.any(axis=1))[0]
    gaps = np.nonzero(np.diff(rows) > 5)[0]
    assert len(gaps) == 1, "expected two lines of text"
    widths = []
    for band in (rows[:gaps[0] + 1], rows[gaps[0] + 1:]):
        cols = np.nonzero(ink[band[0]:band[-1] + 1].any(axis=0))[0]
        widths.append(cols[-1] - cols[0])
    assert min(widths) > 0.6 * max(widths), f"uneven lines: {widths} pixels of ink"
