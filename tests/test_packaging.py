"""The wheel a user installs carries what a deployment needs beside the code."""

import email
import shutil
import subprocess
import sys
import zipfile

from tests.conftest import REPO


def test_the_wheel_has_the_schema_example_configuration_and_metadata(tmp_path):
    # From a copy, so the build's own folders stay out of the checkout; no build isolation: the
    # test extra brings a setuptools new enough, and nothing is downloaded.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "var", "build", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", "inbox"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=240)
    (wheel,) = (tmp_path / "dist").glob("avatar_daemon-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(zf.read(metadata))
        data = next(n for n in names if n.endswith("share/avatar-daemon/config/campaign.schema.json"))
        assert zf.read(data) == (REPO / "config" / "campaign.schema.json").read_bytes()
    shared = {n.split("/data/share/avatar-daemon/", 1)[1] for n in names if "/data/share/avatar-daemon/" in n}
    assert {"config/daemon.yaml", "config/avatars.yaml", "config/templates.yaml", "config/users.yaml",
            "config/campaign.schema.json", "config/slack/manifest-socket-mode.yaml",
            "config/slack/manifest-http-mode.yaml", "systemd/avatar-daemon.service"} <= shared
    assert {f"config/campaigns/{p.name}" for p in (REPO / "config" / "campaigns").glob("*.yaml")} <= shared
    assert "avatar_daemon_plugins/local_renderer/fonts/DejaVuSans-Bold.ttf" in names
    assert any(n.startswith("avatar_daemon/migrations/") for n in names)
    assert not any(n.startswith("plugins/") for n in names)  # the built-ins install under their own name
    assert meta["License-Expression"] == "GPL-3.0-or-later"
    assert {u.split(",")[0] for u in meta.get_all("Project-URL")} >= {"Homepage", "Source", "Issues"}
    assert "Programming Language :: Python :: 3.11" in meta.get_all("Classifier")
    assert any(r.startswith("prometheus-client") for r in meta.get_all("Requires-Dist"))
