"""What a viewer sees in local renders, measured from decoded frames and audio only."""

import av
import numpy as np
import pytest

from avatar_daemon import RenderRequest, Script
from avatar_daemon.testing import make_daemon
from plugins.local_renderer.renderer import LocalRenderer
from plugins.local_renderer.scene import layout_for

SPEECH = ("Small open models now beat last year's giants on coding benchmarks, and they run on a laptop. "
          "Developers are shipping them in editors, phones and tiny servers.")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_daemon(tmp_path_factory.mktemp("d"))


def render(base, tmp_path, avatar="mike", fmt="portrait-720", text=SPEECH, **kw):
    request = RenderRequest(job_id=3, script=Script(title="Look", text=text, estimated_seconds=8),
                            avatar=base.avatar(avatar), format=base.formats[fmt], output_dir=tmp_path / "out",
                            title_card=False, captions=False, **kw)
    return LocalRenderer(preset="ultrafast").render_sync(request, lambda p, m: None)


def decode(path):
    """Grey frames, and the audio's RMS over each frame's span."""
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        audio = np.concatenate([r.to_ndarray().reshape(-1) for f in c.decode(audio=0)
                                for r in resampler.resample(f)])
    per = 16000 / fps
    rms = np.array([np.sqrt(np.mean(audio[int(i * per):int((i + 1) * per)] ** 2) + 1e-12)
                    for i in range(len(frames))])
    return frames, rms


def mouth_difference(frames, box, reference, search=10):
    """Per frame: how far the mouth area is from the reference (resting) mouth, at the best shift,
    so the head's sway and nod do not count as a change of shape."""
    x0, y0, x1, y1 = box
    ref = reference[y0:y1, x0:x1].astype(np.int16)
    out = []
    for f in frames:
        best = min(np.abs(f[y0 + dy:y1 + dy, x0 + dx:x1 + dx].astype(np.int16) - ref).mean()
                   for dy in range(-search, search + 1, 1) for dx in range(-search, search + 1, 2))
        out.append(best)
    return np.array(out)


def mouth_box(fmt):
    lay = layout_for(fmt)
    hw = lay.head_width
    cy = lay.neck[1] - int(hw * 0.245)  # the mouth's line: a quarter of a head above the neck
    return lay.neck[0] - int(hw * 0.2), cy - int(hw * 0.09), lay.neck[0] + int(hw * 0.2), cy + int(hw * 0.09)


def test_piper_mouth_is_not_at_rest_during_loud_speech(base, tmp_path):
    """Piper gives the word spaces and the stress and length marks their own durations; those
    used to leave the mouth at rest mid-word in about 40% of loud frames."""
    result = render(base, tmp_path)
    frames, rms = decode(result.video)
    fmt = base.formats["portrait-720"]
    diff = mouth_difference(frames, mouth_box(fmt), frames[0])
    quiet = rms < 0.002
    loud = rms > 0.5 * np.percentile(rms[rms > 0.01], 90)
    assert quiet[:5].all() and loud.sum() > 60
    # at rest = as close to the resting mouth as the quiet frames are
    rest_level = np.percentile(diff[quiet], 95) + 1.0
    open_during_silence = diff[quiet][5:]
    assert np.median(open_during_silence) < rest_level  # the mouth does rest when nothing is said
    at_rest = np.mean(diff[loud] < rest_level)
    assert at_rest < 0.05, f"mouth at rest in {at_rest:.0%} of loud-speech frames"
