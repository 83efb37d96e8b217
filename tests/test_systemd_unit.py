"""The shipped unit file is valid for systemd and keeps its hardening (checked with systemd-analyze)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parent.parent / "systemd" / "avatar-daemon.service"
analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed (Debian: systemd)")


def _local_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's command, which verify insists exists."""
    text = UNIT.read_text()
    command = Path(sys.prefix) / "bin" / "avatar-daemon"
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={command}", text, flags=re.M)
    copy = tmp_path / "avatar-daemon.service"
    copy.write_text(text)
    return copy


@needs_analyze
def test_unit_verifies(tmp_path):
    result = subprocess.run([analyze, "verify", str(_local_copy(tmp_path))], capture_output=True, text=True)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "avatar-daemon.service" in line]
    assert result.returncode == 0 and not complaints, complaints


@needs_analyze
def test_unit_exposure_stays_low(tmp_path):
    result = subprocess.run([analyze, "security", "--offline=yes", str(_local_copy(tmp_path))],
                            capture_output=True, text=True)
    level = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout).group(1))
    assert level <= 1.5, result.stdout[-2000:]
