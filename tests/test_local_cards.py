"""Research cards in local renders, seen in decoded frames and timed by the decoded audio."""

import av
import numpy as np
import pytest

from avatar_daemon import Insight, RenderRequest, Research, Script
from avatar_daemon.planning import request_for
from avatar_daemon.testing import make_daemon
from avatar_daemon_plugins.local_renderer.renderer import LocalRenderer
from avatar_daemon_plugins.local_renderer.scene import card_stage
from avatar_daemon_plugins.local_renderer.yuv import hex_rgb

RESEARCH = Research(source="reddit", title="Trending on r/LocalLLaMA", topic="r/LocalLLaMA", insights=[
    Insight(text="Rust overtakes Go in new backend projects", score=1800, url="https://www.reddit.com/r/rust/1"),
    Insight(text="Small open models now beat last year's giants on coding benchmarks", score=4210,
            url="https://www.reddit.com/r/LocalLLaMA/comments/abc", detail="They run on a laptop."),
])
# three paragraphs: only the middle one speaks about an insight
TEXT = ("Here is what people are saying this week.\n\n"
        "Small open models now beat last year's giants on coding benchmarks.\n\n"
        "Thanks for watching, see you tomorrow.")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_daemon(tmp_path_factory.mktemp("d"))


def render(base, tmp_path, fmt="portrait-720", **kw):
    request = RenderRequest(job_id=4, script=Script(title="Cards", text=TEXT, estimated_seconds=9),
                            avatar=base.avatar("sarah"), format=base.formats[fmt], output_dir=tmp_path / "out",
                            title_card=False, research=RESEARCH, **kw)
    result = LocalRenderer(preset="ultrafast").render_sync(request, lambda p, m: None)
    with av.open(str(result.video)) as c:
        fps = float(c.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(result.video)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        audio = np.concatenate([r.to_ndarray().reshape(-1) for f in c.decode(audio=0) for r in resampler.resample(f)])
    return frames, fps, audio


def paragraphs(audio, fps, n):
    """Voiced spans (in frames) separated by the long pauses between paragraphs."""
    per = int(16000 / fps)
    rms = np.array([np.sqrt(np.mean(audio[i:i + per] ** 2)) for i in range(0, len(audio) - per, per)])
    voiced = np.nonzero(rms > 0.01)[0]
    gaps = np.nonzero(np.diff(voiced) > 0.35 * fps)[0]
    starts = [voiced[0]] + [voiced[g + 1] for g in gaps]
    ends = [voiced[g] for g in gaps] + [voiced[-1]]
    assert len(starts) == n, f"{len(starts)} voiced spans, expected {n}"
    return list(zip(starts, ends))


def card_shown(frame, fmt):
    x, y, w = card_stage(fmt).card
    box = frame[y + 10:y + 60, x + w // 3:x + w - 20].astype(int)
    return np.mean(box.min(axis=2) > 225) > 0.5  # the card is white; the backdrop is dark blue


@pytest.mark.parametrize("fmt", ["portrait-720", "landscape-720"])
def test_card_is_up_while_its_insight_is_spoken(base, tmp_path, fmt):
    frames, fps, audio = render(base, tmp_path, fmt)
    spans = paragraphs(audio, fps, 3)
    middle = lambda s: (s[0] + s[1]) // 2  # noqa: E731
    spec = base.formats[fmt]
    assert card_shown(frames[middle(spans[1])], spec)
    assert not card_shown(frames[middle(spans[0])], spec)
    assert not card_shown(frames[middle(spans[2])], spec)
    # the presenter makes room: smaller (portrait), or to the side (landscape)
    skin = np.array(hex_rgb(base.avatar("sarah").skin))
    before, during = frames[middle(spans[0])], frames[middle(spans[1])]
    face = lambda f: np.abs(f.astype(int) - skin).sum(axis=2) < 40  # noqa: E731
    if fmt == "portrait-720":
        assert face(during).sum() < 0.75 * face(before).sum()
    else:
        assert np.nonzero(face(during))[1].mean() < np.nonzero(face(before))[1].mean() - spec.width * 0.15


def test_template_can_turn_cards_off(base, tmp_path):
    frames, fps, audio = render(base, tmp_path, cards=False)
    spans = paragraphs(audio, fps, 3)
    assert not any(card_shown(frames[f], base.formats["portrait-720"]) for f in range(spans[1][0], spans[1][1]))


def test_job_runner_puts_the_research_and_the_card_setting_on_the_request(base):
    script = Script(title="Cards", text=TEXT, estimated_seconds=9)
    request = request_for(base.catalogue, base.media, 1, script, "sarah", "tiktok", None, {}, research=RESEARCH)
    assert request.research == RESEARCH and request.cards
    assert not request_for(base.catalogue, base.media, 1, script, "sarah", "tiktok", None, {"cards": False}, research=RESEARCH).cards
    template = next(iter(base.settings.templates.values()))
    base.settings.templates[template.id] = template.model_copy(update={"cards": False})
    try:
        assert not request_for(base.catalogue, base.media, 1, script, "sarah", "tiktok", template.id, {}, research=RESEARCH).cards
    finally:
        base.settings.templates[template.id] = template
