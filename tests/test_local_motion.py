"""The presenter moves like a person, measured from decoded frames only: the head glides to
fractions of a pixel and tilts a little, the brows lift at sentence starts, a hand rises now and then."""

import json

import av
import numpy as np
import pytest

from avatar_daemon import RenderRequest, Script
from avatar_daemon.testing import make_daemon
from avatar_daemon_plugins.local_renderer.renderer import LocalRenderer
from avatar_daemon_plugins.local_renderer.scene import layout_for

TEXT = ("Small open models now beat last year's giants on coding benchmarks, and they run on a laptop. "
        "Developers are shipping 4200 of them in editors, phones and tiny servers! "
        "Nobody expected that. The next release lands in spring, with longer context and better tools.")
FMT = "portrait-720"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_daemon(tmp_path_factory.mktemp("d"))


@pytest.fixture(scope="module")
def clip(base, tmp_path_factory):
    """One render of TEXT by mike (no glasses: the eyes are plain to see), decoded to grey frames."""
    request = RenderRequest(job_id=11, script=Script(title="Motion", text=TEXT, estimated_seconds=14),
                            avatar=base.avatar("mike"), format=base.formats[FMT],
                            output_dir=tmp_path_factory.mktemp("motion") / "out", title_card=False, captions=False)
    result = LocalRenderer(preset="ultrafast").render_sync(request, lambda p, m: None)
    with av.open(str(result.video)) as c:
        frames = [f.to_ndarray(format="gray").astype(np.float32) for f in c.decode(video=0)]
    return result, frames, json.loads(result.metadata.read_text())["words"]


def geometry(base):
    lay = layout_for(base.formats[FMT])
    return lay.neck, lay.head_width


def eyes(frame, neck, hw):
    """The two eyes' centres (x, y) from the whites of the eyes, or None while they are shut."""
    x0, x1 = neck[0] - hw // 2, neck[0] + hw // 2
    y0, y1 = neck[1] - int(hw * 0.8), neck[1] - int(hw * 0.4)
    band = frame[y0:y1, x0:x1]
    white = band > 215
    ys, xs = np.nonzero(white)
    if len(xs) < 40:
        return None
    mid = xs.mean()
    out = []
    for side in (xs < mid, xs >= mid):
        if side.sum() < 20:
            return None
        out.append((xs[side].mean() + x0, ys[side].mean() + y0, side.sum()))
    return out


def head_steps(frames, neck, hw):
    """The hair and forehead's shift from each frame to the next (x, y), to a fraction of a pixel,
    by phase correlation: the region holds no eyes, brows or mouth, whose shapes change."""
    import cv2

    y0, y1 = neck[1] - int(hw * 1.55), neck[1] - int(hw * 0.85)
    x0, x1 = neck[0] - int(hw * 0.75), neck[0] + int(hw * 0.75)
    window = cv2.createHanningWindow((x1 - x0, y1 - y0), cv2.CV_32F)
    return np.array([cv2.phaseCorrelate(a[y0:y1, x0:x1], b[y0:y1, x0:x1], window)[0]
                     for a, b in zip(frames, frames[1:])])


def test_the_head_glides_by_fractions_of_a_pixel(base, clip):
    """The head is resampled into place, not stepped a whole pixel at a time: most of its moves
    between frames end between pixels; it moves in nearly every frame, smoothly, and goes somewhere."""
    _, frames, _ = clip
    steps = head_steps(frames, *geometry(base))
    moving = np.abs(steps).max(axis=1) > 0.05
    between = np.abs(steps[:, 0] - np.round(steps[:, 0])) > 0.15
    assert moving.mean() > 0.8, f"the head stands still in {1 - moving.mean():.0%} of frames"
    assert between.mean() > 0.4, f"only {between.mean():.0%} of the head's moves end between pixels"
    assert np.percentile(np.abs(steps), 95) < 1.5  # smooth: no jumps
    travel = np.ptp(np.cumsum(steps, axis=0), axis=0)
    assert travel[0] > 4 and travel[1] > 3, travel


def test_the_head_tilts_a_degree_or_two(base, clip):
    """The line through the eyes turns, a few degrees at most and smoothly (blinks are skipped)."""
    _, frames, _ = clip
    neck, hw = geometry(base)
    angles = []
    for f in frames:
        e = eyes(f, neck, hw)
        angles.append(np.degrees(np.arctan2(e[1][1] - e[0][1], e[1][0] - e[0][0])) if e else np.nan)
    angles = np.array(angles)
    seen = angles[~np.isnan(angles)]
    assert len(seen) > 0.8 * len(frames)
    assert np.std(seen) > 0.3 and np.ptp(seen) > 1.5, f"the eye line hardly turns: {np.ptp(seen):.2f} degrees"
    assert np.abs(seen).max() < 4
    change = np.abs(np.diff(angles))
    assert np.nanpercentile(change, 95) < 0.5


def brow_gap(frame, found, hw):
    """How far above the eyes' centres the brows are: the darkness-weighted row of a band above each eye."""
    gaps = []
    for x, y, _ in found:
        y0 = int(y - 0.3 * hw)
        band = frame[y0:int(y - 0.07 * hw), int(x - 0.07 * hw):int(x + 0.07 * hw)]
        dark = np.clip(np.median(band) - band - 20, 0, None).sum(axis=1)
        gaps.append(y - (y0 + (dark * np.arange(len(dark))).sum() / max(dark.sum(), 1e-6)))
    return float(np.mean(gaps))


def test_the_brows_lift_at_sentence_starts(base, clip):
    """Measured against the eyes (so the head's motion does not count): the brows sit higher as
    each sentence begins than on the small words in the middle of one."""
    _, frames, words = clip
    neck, hw = geometry(base)

    def gap_at(t):
        i = int(t * 30)
        found = next(e for e in (eyes(frames[j], neck, hw) for j in (i, i + 1, i - 1, i + 2)) if e)
        return brow_gap(frames[i], found, hw)

    starts = [w for i, w in enumerate(words) if i == 0 or words[i - 1]["text"].endswith((".", "!", "?"))]
    small = [w for w in words if w["text"] in ("and", "on", "of", "in", "with", "a", "that")]
    assert len(starts) == 4 and len(small) >= 5
    lifted = [gap_at(w["start"] + 0.15) for w in starts]
    calm = [gap_at((w["start"] + w["end"]) / 2) for w in small]
    assert min(lifted) > np.median(calm) + 0.02 * hw, (lifted, calm)


def test_a_hand_rises_now_and_then_on_emphasis(base, clip):
    """Now and then something rises into the bottom of the frame (a hand) and goes again: a few
    times in the clip, a second or so each, and never there most of the time."""
    _, frames, words = clip
    neck, _ = geometry(base)
    h = frames[0].shape[0]
    region = np.stack([f[int(h - 0.55 * (h - neck[1])):] for f in frames])
    changed = np.abs(region - np.median(region, axis=0)).mean(axis=(1, 2)) > 0.5
    edges = np.flatnonzero(np.diff(changed.astype(int)))
    runs = [(a + 1, b + 1) for a, b in zip(edges[::2], edges[1::2])] if changed[0] == 0 else []
    assert 1 <= len(runs) <= 5 and changed.mean() < 0.4, (runs, changed.mean())
    for a, b in runs:
        assert 0.6 <= (b - a) / 30 <= 2.0
        assert any(w["start"] * 30 - 30 <= a <= w["end"] * 30 for w in words)  # while speaking


def test_the_same_request_moves_the_same_way(base):
    """Every motion is seeded by the job: two scenes of one request draw the same frames, even when
    one hears the speech a sentence at a time (as a render does) and the other all at once."""
    from avatar_daemon import Background, Brand
    from avatar_daemon_plugins.local_renderer.presenter import PresenterArtist
    from avatar_daemon_plugins.local_renderer.scene import Scene
    from avatar_daemon_plugins.local_renderer.tts import Word
    from avatar_daemon_plugins.local_renderer.yuv import Frame

    spec = base.formats["square"]
    text = "Numbers like 4200 matter enormously. Yes! And then some more words with a longer sentence!"
    words = [Word(t, 0.3 + 0.4 * i, 0.6 + 0.4 * i) for i, t in enumerate(text.split())]
    drawn = []
    for seed, heard in ((5, [words]), (5, [words[:5], words[:6], words]), (6, [words])):
        scene = Scene(spec, PresenterArtist(base.avatar("emma"), layout_for(spec).head_width), None, "T", False, False,
                      Background(), Brand(), seed=seed)
        for part in heard:
            scene.use_words(part)
        frames = []
        for i in (10, 40, 75, 130):
            f = Frame(spec.width, spec.height)
            scene.draw(f, i, 3, 0.5, None, None)
            frames.append(f.y.copy())
        drawn.append(np.stack(frames))
    assert np.array_equal(drawn[0], drawn[1])
    assert not np.array_equal(drawn[0], drawn[2])


@pytest.mark.parametrize("fmt", ["tiktok", "youtube", "square"])
def test_a_raised_hand_stays_in_front_of_the_chest(base, fmt):
    """At the top of a gesture the hand (the pixels it changes) is clear of the frame's sides and
    below the chin, on either side, for every presenter: turned out about an elbow below the frame,
    a portrait presenter's fingers once reached within 50 px of the edge."""
    from avatar_daemon import Background, Brand
    from avatar_daemon_plugins.local_renderer.presenter import PresenterArtist
    from avatar_daemon_plugins.local_renderer.scene import GESTURE_SECONDS, Scene
    from avatar_daemon_plugins.local_renderer.yuv import Frame

    spec = base.formats[fmt]
    lay = layout_for(spec)
    for avatar in base.settings.avatars:
        artist = PresenterArtist(base.avatar(avatar), lay.head_width)
        for side in (-1, 1):
            scene = Scene(spec, artist, None, "T", False, False, Background(), Brand(), seed=1)
            still = Frame(spec.width, spec.height)
            scene.draw(still, 100, 0, 0.3, None, None)
            scene.gestures = [(100 - int(0.5 * GESTURE_SECONDS * spec.fps), side)]
            raised = Frame(spec.width, spec.height)
            scene.draw(raised, 100, 0, 0.3, None, None)
            ys, xs = np.nonzero(np.abs(raised.y.astype(int) - still.y.astype(int)) > 8)
            assert len(xs) > 1000, (avatar, side)  # a hand was drawn
            margin = 0.12 * spec.width
            assert margin < xs.min() and xs.max() < spec.width - margin, (avatar, side, xs.min(), xs.max())
            assert ys.min() > lay.neck[1], (avatar, side, ys.min())


def test_the_thumbnail_catches_the_presenter_with_eyes_open(base, tmp_path):
    """Job 3's first blink falls on the frame thumbnails used to be taken from (1.2 s in): the still
    must still show the eyes as open as the video shows them between blinks, whites and all."""
    from PIL import Image

    request = RenderRequest(job_id=3, script=Script(title="Still", text="Hello there. This is a short check.",
                                                    estimated_seconds=3),
                            avatar=base.avatar("mike"), format=base.formats[FMT], output_dir=tmp_path / "out",
                            captions=False)
    result = LocalRenderer(preset="ultrafast").render_sync(request, lambda p, m: None)
    neck, hw = geometry(base)
    with av.open(str(result.video)) as c:
        frames = [f.to_ndarray(format="gray").astype(np.float32) for f in c.decode(video=0)]
    whites = [sum(side[2] for side in e) if (e := eyes(f, neck, hw)) else 0 for f in frames]
    assert min(whites[30:45]) < 0.5 * np.median(whites), "no blink near 1.2 s: the test shows nothing"
    with Image.open(result.thumbnail) as still:
        seen = eyes(np.asarray(still.convert("L"), np.float32), neck, hw)
    assert seen is not None, "the thumbnail shows the eyes shut"
    assert sum(side[2] for side in seen) > 0.8 * np.median(whites)
