"""Scripts longer than a format allows: split into parts (split: true) or refused, the same way everywhere.

Real daemons, real HTTP over loopback, the real inbox and real local renders in a small, short format.
"""

import json

import aiohttp
import av
import numpy as np
import pytest

from avatar_daemon import FormatSpec, ResearchError, Script, estimate_seconds, hookimpl
from avatar_daemon.parts import fitted
from avatar_daemon.testing import drop, make_daemon, make_settings, running, wait_for_final, wait_until
from tests.test_http_api import TOKENS, users_yaml

SHORT = FormatSpec(name="short", label="Short test format (portrait)", width=288, height=512, fps=10, max_seconds=10)
SENTENCES = [
    "Open models now run on a laptop.", "They answer questions about code quickly.",
    "Many teams use them every single day.", "The newest ones read long documents too.",
    "Some of them speak several languages well.", "Training them still costs a great deal.",
    "Running them costs almost nothing at all.", "Expect more of them this coming year.",
    "That is all for today, thanks for watching.",
]
LONG = " ".join(SENTENCES[:5]) + "\n\n" + " ".join(SENTENCES[5:])
REFUSAL = "over the 10 s format short allows: shorten it to about 27 words, or ask for split: true to make it 3 videos"


class ShortFormat:
    @hookimpl
    def register_formats(self, register):
        register(SHORT)


def script(text=LONG, title="Open models"):
    return Script(title=title, text=text, estimated_seconds=estimate_seconds(text))


# ---- the split itself ------------------------------------------------------------------------

def test_a_script_that_fits_is_one_video():
    assert fitted(script(" ".join(SENTENCES[:3])), SHORT, None, True) == [script(" ".join(SENTENCES[:3]))]


def test_a_long_script_splits_between_sentences_into_even_parts():
    parts = fitted(script(), SHORT, None, True)
    assert [p.title for p in parts] == [f"Open models (Part {k} of 3)" for k in (1, 2, 3)]
    assert all(p.estimated_seconds <= SHORT.max_seconds for p in parts)
    assert max(p.estimated_seconds for p in parts) - min(p.estimated_seconds for p in parts) < 4
    assert " ".join(p.text for p in parts).split() == LONG.split()  # nothing lost, nothing added
    for p in parts:  # every part starts and ends on a sentence's edge
        assert p.text.split()[0][0].isupper() and p.text.rstrip().endswith(".")
    assert "\n\n" in "".join(p.text for p in parts)  # the paragraph break (a pause) is kept
    assert {p.part.series for p in parts} == {parts[0].part.series} and [p.part.number for p in parts] == [1, 2, 3]


def test_without_split_the_limit_is_in_the_sentence():
    with pytest.raises(ResearchError, match=r"the script runs about 23 s read aloud \(63 words\), " + REFUSAL):
        fitted(script(), SHORT, None, False)


def test_one_sentence_longer_than_the_format_cannot_be_split():
    endless = "This sentence goes on " + "and on " * 20 + "forever."
    with pytest.raises(ResearchError,
                       match="one sentence of the script runs about 16 s .* only between sentences: break it up"):
        fitted(script(endless + " " + LONG), SHORT, None, True)


def test_a_long_title_keeps_its_part_number():
    parts = fitted(script(title="T" * 200), SHORT, None, True)
    assert all(len(p.title) <= 200 and p.title.endswith(f"(Part {p.part.number} of 3)") for p in parts)


# ---- through the daemon, rendered ------------------------------------------------------------

@pytest.fixture
async def daemon(tmp_path):
    users_yaml(tmp_path)
    settings = make_settings(tmp_path, default_renderer="local", notifiers=["log"], default_formats=["short"],
                             users_file="users.yaml", plugins={"settings": {"local": {"preset": "ultrafast"}}})
    d = make_daemon(tmp_path, plugins=[ShortFormat()], settings=settings)
    async with running(d):
        yield d


def decoded(path):
    with av.open(str(path)) as box:
        seconds = float(box.duration) / av.time_base
        frame = next(box.decode(video=0)).to_ndarray(format="rgb24")
    return seconds, frame


def label(frame):
    """The top-left corner where "Part k of N" sits: its yellow pill and the dark letters on it."""
    return frame[8:40, 8:110].astype(int)


def is_yellow(region):
    r, g, b = region[..., 0], region[..., 1], region[..., 2]
    return np.mean((r > 190) & (g > 160) & (b < 110))


async def rendered_parts(daemon, job_ids):
    for i in job_ids:
        assert await wait_for_final(daemon, i, timeout=240) == "completed", (await daemon.store.job(i)).error
    jobs = [await daemon.store.job(i) for i in job_ids]
    return jobs, [decoded(j.result["video"]) for j in jobs]


def check_parts(jobs, videos, n, text=LONG):
    assert [j.title for j in jobs] == [f"Open models (Part {k} of {n})" for k in range(1, n + 1)]
    metadata = [json.loads(open(j.result["metadata"]).read()) for j in jobs]
    assert [m["part"]["number"] for m in metadata] == list(range(1, n + 1))
    assert len({m["part"]["series"] for m in metadata}) == 1 and all(m["part"]["of"] == n for m in metadata)
    spoken = " ".join(" ".join(w["text"] for w in m["words"]) for m in metadata)
    assert spoken.split() == text.split()
    for seconds, frame in videos:
        assert seconds <= SHORT.max_seconds * 1.05 + 1
        assert is_yellow(label(frame)) > 0.3  # the label is on screen
    first, second = label(videos[0][1]), label(videos[1][1])
    assert np.abs(first - second).max(axis=2).astype(bool).sum() > 20  # "Part 1" and "Part 2" read differently


async def test_http_api_splits_a_long_script_into_rendered_parts(daemon):
    headers = {"Authorization": f"Bearer {TOKENS['bob']}"}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}", headers=headers) as http:
        body = {"script_title": "Open models", "script_content": LONG, "format": "short"}
        async with http.post("/videos", json=body) as resp:
            refused = await resp.json()
            assert resp.status == 422, refused
        assert refused["field"] == "script_content" and REFUSAL in refused["error"]
        async with http.post("/videos", json={**body, "split": True}) as resp:
            made = await resp.json()
            assert resp.status == 201, made
        assert [v["part"]["number"] for v in made["videos"]] == [1, 2, 3]
        jobs, videos = await rendered_parts(daemon, [v["id"] for v in made["videos"]])
        async with http.get(f"/videos/{jobs[1].id}") as resp:
            assert (await resp.json())["part"] == made["videos"][1]["part"]
    check_parts(jobs, videos, 3)


async def test_inbox_envelope_splits_with_split_true_and_refuses_without(daemon):
    inbox = daemon.inbox
    drop(daemon, "refused.json", json.dumps({"source": "text", "request": {"formats": ["short"]}, "research": LONG}))
    error = inbox.failed / "refused.json.error.txt"
    await wait_until(error.exists, timeout=60)
    assert REFUSAL in error.read_text()
    drop(daemon, "split.json", json.dumps({"source": "text", "request": {"formats": ["short"], "split": True},
                                           "research": "# Open models\n\n" + LONG}))

    async def queued():
        jobs = await daemon.store.jobs()
        return [j.id for j in sorted(jobs, key=lambda j: j.id)] if len(jobs) == 3 else None
    jobs, videos = await rendered_parts(daemon, await wait_until(queued, timeout=60))
    check_parts(jobs, videos, 3, "Open models. " + LONG)  # the heading is read as a sentence


SHORT_PLUGIN = '''
from avatar_daemon import FormatSpec, hookimpl


@hookimpl
def register_formats(register):
    register(FormatSpec(name="short", label="Short test format (portrait)", width=288, height=512, fps=10,
                        max_seconds=10))
'''


def test_render_split_on_the_command_line(tmp_path, capsys):
    from avatar_daemon import cli

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "short_format.py").write_text(SHORT_PLUGIN)
    config = tmp_path / "daemon.yaml"
    config.write_text(json.dumps({"inbox": {"path": "inbox"}, "data_dir": "var", "database": "var/db.sqlite3",
                                  "jobs": {"output_dir": "var/videos"}, "http": {"enabled": False},
                                  "notifiers": ["log"], "plugins": {"plugins_dir": "plugins",
                                                                    "settings": {"local": {"preset": "ultrafast"}}}}))
    (tmp_path / "long.txt").write_text(LONG)

    def render(*extra):
        with pytest.raises(SystemExit) as done:
            cli.main(["render", str(tmp_path / "long.txt"), "--format", "short", "--json", "--config", str(config),
                      *extra])
        return done.value.code, capsys.readouterr()

    code, out = render()
    assert code != 0 and REFUSAL in out.err
    code, out = render("--split")
    assert code == 0, out.err
    videos = json.loads(out.out)["videos"]
    assert [v["status"] for v in videos] == ["completed"] * 3
    seconds = [decoded(v["video"])[0] for v in videos]
    assert all(s <= SHORT.max_seconds * 1.05 + 1 for s in seconds) and sum(seconds) > 15


class Longwinded:
    """A script writer that ignores the format's limit (as a model may): its scripts are LONG."""

    name = "longwinded"

    def write(self, research, template, limits):
        return Script(title="Open models", text=LONG, estimated_seconds=estimate_seconds(LONG), writer=self.name)

    @hookimpl
    def register_script_writers(self, register):
        register(self)


@pytest.mark.parametrize("split", [True, False])
async def test_a_campaign_with_split_makes_parts_and_without_it_says_why_not(tmp_path, split):
    from avatar_daemon.testing import RecordingPlugin
    from tests.test_campaigns import Clock, research_job, write_campaign

    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(), ShortFormat(), Longwinded()],
                         clock=Clock("2026-11-24T07:00:00+00:00"))
    write_campaign(tmp_path / "campaigns", sources=[{"source": "research_job"}], formats=["short"],
                   writer="longwinded", split=split, quality={"min_insights": 1})
    async with daemon.started():
        await daemon.campaigns.reload()
        await daemon.pipeline.ingest(research_job("Open models run on laptops", "They read code"), "r.json", ".json")
        run = await daemon.campaigns.run_now("ai")
        jobs = [await daemon.store.job(i) for i in run.job_ids]
    if split:
        assert [j.title for j in jobs] == [f"Open models (Part {k} of 3)" for k in (1, 2, 3)]
        assert [j.request["script"]["part"]["number"] for j in jobs] == [1, 2, 3]
        assert " ".join(j.request["script"]["text"] for j in jobs).split() == LONG.split()
    else:
        assert jobs == [] and any(REFUSAL in c["verdict"] for c in run.considered)
