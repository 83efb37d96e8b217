"""Research cards in local renders, seen in decoded frames and timed by the decoded audio."""

import av
import numpy as np
import pytest

from avatar_daemon import FormatSpec, Insight, RenderRequest, Research, Script
from avatar_daemon.planning import request_for
from avatar_daemon.testing import make_daemon
from avatar_daemon_plugins.local_renderer.cards import CHART_LINE, card_image, count, with_key_sentences
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


def render(base, tmp_path, fmt="portrait-720", research=RESEARCH, text=TEXT, **kw):
    spec = SMALL if fmt == SMALL.name else base.formats[fmt]
    request = RenderRequest(job_id=4, script=Script(title="Cards", text=text, estimated_seconds=9),
                            avatar=base.avatar("sarah"), format=spec, output_dir=tmp_path / "out",
                            title_card=False, research=research, **kw)
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


def test_card_comes_in_with_its_sentence_not_long_before(base, tmp_path):
    frames, fps, audio = render(base, tmp_path)
    spans = paragraphs(audio, fps, 3)
    spec = base.formats["portrait-720"]
    assert not card_shown(frames[spans[1][0] - int(0.45 * fps)], spec)
    assert card_shown(frames[spans[1][0] + int(0.3 * fps)], spec)
    assert not card_shown(frames[spans[2][0] + int(0.3 * fps)], spec)


# ---- the figures on each source's card, seen in the decoded video ------------------------------

# a small portrait format keeps the many renders below quick: the cards scale with the frame
SMALL = FormatSpec(name="small-portrait", label="Small portrait", width=432, height=768, fps=12)
SENTENCE = "Small open models now beat last year's giants on coding benchmarks."
TITLE = "Small open models now beat last year's giants on coding benchmarks"


def one(source, topic="AI", **insight):
    return Research(source=source, title="Today", topic=topic, insights=[Insight(text=TITLE, **insight)])


# (case, research, the same research with one figure changed)
FIGURES = [
    ("reddit upvotes", one("reddit", score=4210, meta={"subreddit": "r/LocalLLaMA", "comments": 312}),
     one("reddit", score=8870, meta={"subreddit": "r/LocalLLaMA", "comments": 312})),
    ("reddit comments", one("reddit", score=4210, meta={"subreddit": "r/LocalLLaMA", "comments": 312}),
     one("reddit", score=4210, meta={"subreddit": "r/LocalLLaMA", "comments": 12900})),
    ("reddit subreddit", one("reddit", score=4210, meta={"subreddit": "r/LocalLLaMA", "comments": 312}),
     one("reddit", score=4210, meta={"subreddit": "r/MachineLearning", "comments": 312})),
    ("hn points", one("hackernews", score=512, meta={"comments": 40, "site": "arxiv.org"}),
     one("hackernews", score=1940, meta={"comments": 40, "site": "arxiv.org"})),
    ("hn comments", one("hackernews", score=512, meta={"comments": 40, "site": "arxiv.org"}),
     one("hackernews", score=512, meta={"comments": 977, "site": "arxiv.org"})),
    ("hn site", one("hackernews", score=512, meta={"comments": 40, "site": "arxiv.org"}),
     one("hackernews", score=512, meta={"comments": 40, "site": "huggingface.co"})),
    ("github stars", one("github", meta={"repo": "acme/tinycoder", "description": TITLE, "stars": 1200,
                                         "language": "Rust", "topics": ["llm", "coding"]}),
     one("github", meta={"repo": "acme/tinycoder", "description": TITLE, "stars": 48100,
                         "language": "Rust", "topics": ["llm", "coding"]})),
    ("github language", one("github", meta={"repo": "acme/tinycoder", "description": TITLE, "stars": 1200,
                                            "language": "Rust", "topics": ["llm", "coding"]}),
     one("github", meta={"repo": "acme/tinycoder", "description": TITLE, "stars": 1200,
                         "language": "Python", "topics": ["llm", "coding"]})),
    ("github topics", one("github", meta={"repo": "acme/tinycoder", "description": TITLE, "stars": 1200,
                                          "language": "Rust", "topics": ["llm", "coding"]}),
     one("github", meta={"repo": "acme/tinycoder", "description": TITLE, "stars": 1200,
                         "language": "Rust", "topics": ["llm", "benchmarks", "agents"]})),
    ("trends traffic", one("google_trends", meta={"traffic": "20K+", "news": "Open models top the charts"}),
     one("google_trends", meta={"traffic": "500K+", "news": "Open models top the charts"})),
]
_renders: dict[str, tuple] = {}


def card_frame(base, tmp_path, research):
    """The frame in the middle of the one spoken sentence, when its card is fully in (cached per research)."""
    key = research.model_dump_json()
    if key not in _renders:
        frames, fps, audio = render(base, tmp_path / str(len(_renders)), SMALL.name, research=research,
                                    text=SENTENCE)
        (start, end), = paragraphs(audio, fps, 1)
        _renders[key] = frames[(start + end) // 2]
    return _renders[key]


@pytest.mark.parametrize("case,before,after", FIGURES, ids=[c[0] for c in FIGURES])
def test_each_sources_figures_are_on_its_card(base, tmp_path, case, before, after):
    spec = SMALL
    a, b = (card_frame(base, tmp_path, r).astype(int) for r in (before, after))
    assert card_shown(a, spec) and card_shown(b, spec)
    x, y, w = card_stage(spec).card
    h = card_image(before, before.insights[0], w).height
    diff = np.abs(a - b).max(axis=2)
    card = diff[y:y + h, x:x + w]
    outside = diff.copy()
    outside[y:y + h, x:x + w] = 0
    assert (card > 60).sum() > 40, f"{case}: the card does not change with the figure"
    assert (outside > 60).sum() < 0.1 * (card > 60).sum(), f"{case}: the change is not on the card"


def test_trends_chart_line_follows_the_interest_over_time(base, tmp_path):
    series = [round(50 + 40 * np.sin(i / 3) * (1 - i / 60)) for i in range(36)]
    dates = [f"2025-{1 + i // 3:02d}-{1 + (i % 3) * 10:02d}" for i in range(36)]
    research = one("google_trends", topic="open models", score=series[-1],
                   meta={"keyword": "open models", "series": series, "dates": dates})
    frame = card_frame(base, tmp_path, research).astype(int)
    spec = SMALL
    x, y, w = card_stage(spec).card
    cx0, cy0, cx1, cy1 = card_image(research, research.insights[0], w).info["chart"]
    chart = frame[y + cy0 - 4:y + cy1 + 4, x + cx0 + 4:x + cx1 - 4]
    line = np.abs(chart - np.array(CHART_LINE)).sum(axis=2) < 90
    columns = [c for c in range(chart.shape[1]) if line[:, c].any()]
    assert len(columns) > 0.9 * chart.shape[1]
    drawn = [-np.nonzero(line[:, c])[0].mean() for c in columns]  # up the screen is up the chart
    expected = np.interp(np.array(columns) + 4, np.linspace(0, cx1 - cx0, len(series)), series)
    assert np.corrcoef(drawn, expected)[0, 1] > 0.97
    assert np.corrcoef(drawn, expected[::-1])[0, 1] < 0.5  # the data's own order, left to right


def test_a_plain_scripts_key_sentence_is_its_card(base, tmp_path):
    script = ("Here is what people are saying this week.\n\n"
              "**Small open models now beat last year's giants on coding benchmarks.**\n\n"
              "Thanks for watching, see you tomorrow.")
    research = Research(source="text", title="Week", topic="Week", insights=[], script_text=script)
    frames, fps, audio = render(base, tmp_path, research=research)
    spans = paragraphs(audio, fps, 3)
    spec = base.formats["portrait-720"]
    assert [card_shown(frames[(s + e) // 2], spec) for s, e in spans] == [False, True, False]


def test_figures_read_as_on_the_sites():
    assert [count(n) for n in (950, 1000, 4210, 12345, 225273, 1_500_000, 2.5)] == \
        ["950", "1k", "4.2k", "12.3k", "225k", "1.5M", "2.5"]


def test_a_plain_scripts_key_sentences_are_its_emphasised_ones_else_its_first_figure():
    def keys(text):
        research = with_key_sentences(Research(source="text", title="T", topic="T", insights=[], script_text=text))
        return [i.text for i in research.insights]
    assert keys("Intro here. **Rust is in the kernel.** More.\n\n> Quote this line.\n\nBye.") == \
        ["Rust is in the kernel.", "Quote this line."]
    assert keys("Intro here. Forty drivers use it. In 2025 it grew 3 times. Then 4.") == ["In 2025 it grew 3 times."]
    assert keys("Nothing to show here. Really nothing.") == []
    assert with_key_sentences(RESEARCH) is RESEARCH  # research with insights of its own keeps them


@pytest.mark.parametrize("fmt", ["tiktok", "portrait-720"])
def test_in_portrait_the_captions_sit_between_the_card_and_the_presenters_head(base, fmt):
    """While a card is up in portrait, the presenter steps back below it: the tallest card, the
    tallest caption long words make, and every presenter's head (however it moves) never overlap."""
    from avatar_daemon import Background, Brand
    from avatar_daemon_plugins.local_renderer.captions import build_cues
    from avatar_daemon_plugins.local_renderer.presenter import PresenterArtist
    from avatar_daemon_plugins.local_renderer.scene import Scene
    from avatar_daemon_plugins.local_renderer.tts import Word

    spec = base.formats[fmt]
    long = Research(source="reddit", title="t", topic="r/LocalLLaMA", insights=[Insight(
        text="Small open models now beat last year's giants on coding benchmarks and run on a laptop with room to spare",
        score=4210, detail="A 7B model scored 71% on the benchmark, up from 45% a year ago, and it runs on a laptop.")])
    said = "Internationalization frameworks, unquestionably extraordinary, outperformed comparable benchmarks."
    words = [Word(w, i * 0.3, i * 0.3 + 0.25) for i, w in enumerate(said.split())]
    stage = card_stage(spec)
    for avatar in ["sarah", "mike", "emma", "david", "lisa", "james", "sophia", "alexander"]:
        scene = Scene(spec, PresenterArtist(base.avatar(avatar), stage.head_width), None, "T", True, False,
                      Background(), Brand(), seed=1, research=long)
        scene.use_cues(build_cues(words, spec.caption_style))
        card = scene._card(0)
        card_bottom = stage.card[1] + card.oy + card.h
        assert card_bottom > stage.card[1] + 0.6 * stage.card[2], "not the tall card this test needs"
        tallest = max(layer.oy + layer.h for i in range(len(scene.cues)) for layer in scene.caption_layers(i, None))
        assert tallest > 1.8 * scene.layout.caption_size, "not a two-line caption"
        top = scene._caption_y(stage, tallest, (None, 1.0))
        head_top = scene.head_box(card=True)[1]
        assert card_bottom < top and top + tallest < head_top, (avatar, card_bottom, top, top + tallest, head_top)


@pytest.mark.parametrize("fmt", ["tiktok", "youtube", "square"])
def test_a_card_up_in_the_first_seconds_takes_the_titles_place(base, fmt):
    """The title banner is drawn in the first seconds unless a card is up: beside the presenter (landscape,
    square) the card's top ran under the banner, hiding its source line."""
    from avatar_daemon import Background, Brand
    from avatar_daemon_plugins.local_renderer.cards import CardCue
    from avatar_daemon_plugins.local_renderer.presenter import PresenterArtist
    from avatar_daemon_plugins.local_renderer.scene import Scene, layout_for
    from avatar_daemon_plugins.local_renderer.yuv import Frame

    spec = base.formats[fmt]

    def drawn(title: bool, card: bool):
        scene = Scene(spec, PresenterArtist(base.avatar("mike"), layout_for(spec).head_width), None,
                      "Small models beat the giants", False, title, Background(), Brand(), seed=1, research=RESEARCH)
        scene.card_cues = [CardCue(1, 0.0, 10.0)] if card else []
        frame = Frame(spec.width, spec.height)
        scene.draw(frame, 30, 0, 0.0, None, None)
        return frame.y

    assert not np.array_equal(drawn(True, False), drawn(False, False))  # no card: the title shows
    assert np.array_equal(drawn(True, True), drawn(False, True))        # a card up: it alone shows
