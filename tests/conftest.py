from pathlib import Path

import pytest

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


@pytest.fixture
def plugin():
    return RecordingPlugin(FakeRenderer())


@pytest.fixture
def daemon(tmp_path, plugin):
    return make_daemon(tmp_path, plugins=[plugin])


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / "research" / name).read_bytes()
