"""/openapi.json against the running daemon: schemathesis sends what the document allows and what it
forbids, and every answer must be one the document lists: no 5xx, no undocumented status, content
type or body.

The daemon runs on loopback in a thread of its own (schemathesis calls are blocking), with the
fake renderer and no plugin that could reach the internet. Examples are bounded and derandomized,
so a run takes the same requests every time and stays well under two minutes.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, negative_data_rejection, response_schema_conformance, status_code_conformance,
)

from avatar_daemon.daemon import Daemon
from avatar_daemon.plugin_loading import LoadSpec
from avatar_daemon.testing import RecordingPlugin, make_settings, running
from tests.test_http_api import TOKENS, users_yaml

EXAMPLES = 15  # per operation and mode: some 600 requests over 21 operations, about a minute on 2 cores
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Nothing here may fetch research live, post to a webhook or talk to Slack or HeyGen.
OFFLINE_PLUGINS = ["formats", "template_writer", "research_job"]


class DaemonThread:
    """A daemon running in its own thread and event loop, for blocking clients."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="daemon", daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            async with running(self.daemon):
                self.ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaced by __enter__ / __exit__
            self.failed = exc
            self.ready.set()

    def __enter__(self) -> str:
        self._thread.start()
        self.ready.wait(60)
        if self.failed or not self.ready.is_set():
            raise RuntimeError(f"the daemon did not start: {self.failed!r}")
        return f"http://127.0.0.1:{self.daemon.http_port}"

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive() and self.failed is None, self.failed


@pytest.fixture
def base_url(tmp_path):
    users_yaml(tmp_path)
    # A generated media URL that names a real-looking host is looked up, and refused, quickly.
    config = make_settings(tmp_path, users_file="users.yaml", media={"timeout_seconds": 5})
    daemon = Daemon(config, LoadSpec(installed=False, only=OFFLINE_PLUGINS), extra_plugins=(RecordingPlugin(),))
    with DaemonThread(daemon) as url:
        yield url


def test_every_answer_is_documented(base_url):
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    auth = {"Authorization": f"Bearer {TOKENS['root']}"}  # an admin who may manage campaigns: most code runs
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                checks = CHECKS + ([negative_data_rejection] if mode.is_negative else [])

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                def probe(case):
                    case.call_and_validate(base_url=base_url, session=session, headers=auth, checks=checks)

                try:
                    probe()
                except Unsatisfiable:
                    assert mode.is_negative, operation.label  # nothing to get wrong in a call without parameters
                except Exception as exc:  # every operation's failure in one report, not only the first
                    failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    assert not failures, "\n\n".join(failures)
