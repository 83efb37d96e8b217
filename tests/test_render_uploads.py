"""`avatar-daemon render --narration FILE --photo FILE`: your own voice and portrait, in a real local render."""

import subprocess
import sys
from pathlib import Path

import av

from tests.media_server import wav_bytes
from tests.test_systemd_and_cli import REPO, _config


def _render(tmp_path, *extra):
    script = tmp_path / "hello.txt"
    script.write_text("Hello from my own voice.")
    return subprocess.run([sys.executable, "-m", "avatar_daemon", "render", str(script), "--format", "portrait-720",
                           "--out", str(tmp_path / "out"), "--config", str(_config(tmp_path)), *extra],
                          capture_output=True, text=True, timeout=180, cwd=REPO)


def test_render_speaks_the_narration_given_and_refuses_the_wrong_kind(tmp_path):
    (tmp_path / "voice.wav").write_bytes(wav_bytes(seconds=5.0))
    (tmp_path / "me.jpg").write_bytes((REPO / "tests/fixtures/photos/astronaut.jpg").read_bytes())  # a face
    wrong = _render(tmp_path, "--photo", str(tmp_path / "voice.wav"))
    assert wrong.returncode == 1 and "--photo" in wrong.stderr and "is audio; it must be image" in wrong.stderr
    out = _render(tmp_path, "--narration", str(tmp_path / "voice.wav"), "--photo", str(tmp_path / "me.jpg"))
    assert out.returncode == 0, out.stderr
    video = Path(out.stdout.strip().splitlines()[-1])
    with av.open(str(video)) as box:
        seconds = float(box.duration) / av.time_base
    # The speech is the file's 5 s, not a synthetic reading of five words (under 3 s).
    assert 4.8 <= seconds <= 6.5, seconds
