"""Hostile drops through a real daemon's inbox: where each one ends, what its sidecar says, and that
the daemon is still healthy afterwards. Fixed files live in tests/fixtures/hostile/; the rest
(links, folders, pipes, long names, odd clocks) are made here, since git cannot hold them.
"""

import asyncio
import contextlib
import errno
import os
import shutil
import subprocess
import time

import aiohttp
import pytest

from avatar_daemon import words_for_seconds
from avatar_daemon.testing import drop, make_daemon, running, wait_for_final, wait_until
from tests.conftest import FIXTURES, fixture_bytes

HOSTILE = FIXTURES / "hostile"
MB = 1024 * 1024


def _entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _dropped(folder):
    return [n for n in _entries(folder) if not n.endswith((".error.txt", ".duplicate.txt"))]


def _sidecar(folder, name):
    """The sidecar next to `name`: the one whose first words are the name (long names get shortened sidecars)."""
    for p in folder.iterdir():
        if p.name.endswith(".error.txt") and p.read_text().startswith(name):
            return p.read_text()
    raise AssertionError(f"no sidecar for {name} in {folder}: {_entries(folder)}")


def _place(daemon, staging, name, data, mtime=None):
    """Write outside the inbox and rename in (names too long for a `.part` twin, an mtime set beforehand)."""
    tmp = staging / "x"
    tmp.write_bytes(data)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    return tmp.rename(daemon.inbox.root / name)


async def test_hostile_corpus_ends_where_it_should_and_the_daemon_stays_healthy(tmp_path, plugin):
    daemon = make_daemon(tmp_path, plugins=[plugin])
    inbox = daemon.inbox
    staging = tmp_path / "staging"
    staging.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.json").write_bytes(fixture_bytes("hn_algolia.json"))
    good = fixture_bytes("github_search.json")
    fmt = daemon.formats[daemon.settings.default_formats[0]]
    long_name = "l" * 245 + ".json"                      # its NAME.error.txt would be 260 bytes
    wide_name = "é" * 124 + ".json"                     # 253 bytes in UTF-8, from 129 characters
    full_name = "f" * 250 + ".json"                      # 255 bytes: a second one needs a shorter free name

    failed = {  # name -> words its sidecar must hold
        "billion_laughs.xml": "XML refused: it declares an entity ('lol')",
        "external_entity.xml": "XML refused: it declares an entity ('secret' pointing at 'file:///etc/passwd')",
        "bare_string.json": "a bare JSON string is neither research nor a script",
        "bare_number.json": "a bare JSON number is neither research nor a script",
        "table.csv": "cannot read a .csv file, which is neither JSON nor XML: research is JSON (.json)",
        "unterminated.json": "not valid JSON: Unterminated string starting at line 1 column 32 (it looks cut short)",
        "huge_number.json": "not valid JSON: a number has more than 4300 digits",
        "deep.json": "deep.json: nested too deeply (more than 64 levels)",
        "deep.xml": "deep.xml: nested too deeply (more than 64 levels)",
        "five_mb_string.json": "a bare JSON string is neither research nor a script",
        "over_cap.json": "the file is 20,971,521 bytes, over the inbox limit of 20,971,520 bytes",
        "long_script.txt": f"over the {fmt.max_seconds:g} s format {fmt.name} allows: shorten it to about "
                           f"{words_for_seconds(fmt.max_seconds, fmt.voice_speed):,} words, or ask for split: true",
        "huge_script.md": "the script is 20,001 characters; the limit is 20,000",
        "passwd.json": "passwd.json is a symbolic link (to '/etc/passwd'): the inbox never follows a link",
        "linked_folder": "linked_folder is a symbolic link",
        "reports": "reports is a folder (it holds 2 entries): the inbox takes files only",
        "pipe.json": "pipe.json is not a regular file but a named pipe",
        long_name: "not valid JSON",
        wide_name: "not valid JSON",
    }
    done = ["lone_surrogate.json", "hard_link.json", "from_the_future.json", full_name]

    async with running(daemon):
        for name in ("billion_laughs.xml", "external_entity.xml", "bare_string.json", "bare_number.json",
                     "table.csv", "unterminated.json", "huge_number.json", "lone_surrogate.json"):
            drop(daemon, name, (HOSTILE / name).read_bytes())
        drop(daemon, "deep.json", "[" * 100_000 + "]" * 100_000)
        drop(daemon, "deep.xml", "<a>" * 100_000 + "</a>" * 100_000)
        drop(daemon, "five_mb_string.json", '"' + "hello " * (5 * MB // 6) + '"')
        drop(daemon, "over_cap.json", b" " * (20 * MB - 1) + b"[]")
        drop(daemon, "long_script.txt", "Every word here is spoken aloud. " * 200)
        drop(daemon, "huge_script.md", "# Title\n\n" + "a" * (20_001 - 9))
        os.symlink("/etc/passwd", inbox.root / "passwd.json")
        os.symlink(elsewhere, inbox.root / "linked_folder")
        folder = staging / "reports"
        folder.mkdir()
        (folder / "a.json").write_bytes(good)
        (folder / "b.json").write_bytes(good)
        folder.rename(inbox.root / "reports")
        os.mkfifo(inbox.root / "pipe.json")
        _place(daemon, staging, long_name, b"{not json")
        _place(daemon, staging, wide_name, b"{not json")
        os.link(elsewhere / "secret.json", inbox.root / "hard_link.json")
        _place(daemon, staging, "from_the_future.json", fixture_bytes("serpapi.json"), mtime=time.time() + 3600)
        _place(daemon, staging, full_name, fixture_bytes("praw_records.json"))

        await wait_until(lambda: len(_dropped(inbox.failed)) == len(failed) and len(_dropped(inbox.done)) == len(done),
                         timeout=60)
        _place(daemon, staging, full_name, fixture_bytes("praw_records.json"))  # again: a re-drop
        await wait_until(lambda: any(n.endswith(".duplicate.txt") for n in _entries(inbox.done)))

        drop(daemon, "good.json", good)  # and the daemon still works
        await wait_until(lambda: "good.json" in _entries(inbox.done))
        research = await daemon.store.research_page(None, limit=100)
        job = next(j for j in await daemon.store.jobs() if j.research_job_id == research[0].id)
        assert await wait_for_final(daemon, job.id) == "completed"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{daemon.http_port}/healthz") as resp:
                assert resp.status == 200

    assert _entries(inbox.processing) == []
    assert [n for n in _entries(inbox.root) if n not in ("processing", "done", "failed")] == []
    assert sorted(_dropped(inbox.failed)) == sorted(failed)
    for name, words in failed.items():
        sidecar = _sidecar(inbox.failed, name)
        assert sidecar.startswith(name) and words in sidecar, (name, sidecar)
    # Nothing lost, nothing followed: links stay links, the folder keeps its files, the pipe is a pipe.
    assert os.readlink(inbox.failed / "passwd.json") == "/etc/passwd"
    assert os.path.islink(inbox.failed / "linked_folder")
    assert sorted(os.listdir(inbox.failed / "reports")) == ["a.json", "b.json"]
    assert (inbox.failed / "table.csv").read_bytes() == (HOSTILE / "table.csv").read_bytes()
    assert (inbox.failed / long_name).read_bytes() == b"{not json"
    assert all(len(os.fsencode(n)) <= 255 for n in _entries(inbox.failed) + _entries(inbox.done))

    (again,) = [n for n in _dropped(inbox.done) if n.startswith("f" * 200) and n != full_name]
    assert sorted(_dropped(inbox.done)) == sorted(done + ["good.json", again])
    (duplicate,) = [n for n in _entries(inbox.done) if n.endswith(".duplicate.txt")]
    assert (inbox.done / duplicate).read_text().startswith(f"{again}: no new video")
    sources = {r.filename: r for r in research}
    assert set(sources) == {"lone_surrogate.json", "hard_link.json", "from_the_future.json", full_name, "good.json"}
    assert "A title cut mid-emoji \ufffd" in [i.text for i in sources["lone_surrogate.json"].research.insights]
    assert inbox.stats.failed == len(failed) and inbox.stats.duplicates == 1


async def test_one_byte_over_the_cap_prints_two_different_sizes(tmp_path, plugin):
    daemon = make_daemon(tmp_path, plugins=[plugin], inbox={"max_file_bytes": 1024})
    async with running(daemon):
        drop(daemon, "big.json", b"[" + b" " * 1023 + b"]")
        await wait_until(lambda: "big.json.error.txt" in _entries(daemon.inbox.failed))
    assert "the file is 1,025 bytes, over the inbox limit of 1,024 bytes" in _sidecar(daemon.inbox.failed, "big.json")


async def test_a_file_still_being_written_says_how_to_write_big_files(tmp_path, plugin):
    """A writer that does not rename into place, pausing longer than the settle time: the file is claimed
    half-written. The appended part keeps the JSON unfinished, so it fails whenever it is read."""
    daemon = make_daemon(tmp_path, plugins=[plugin], inbox={"settle_seconds": 0.3})
    path = daemon.inbox.root / "slow.json"
    async with running(daemon):
        first, more = b'{"hits": [{"title": "one", "points": 5}, ', b'{"title": "two", '
        with open(path, "wb") as f:
            f.write(first)
            f.flush()
            await wait_until(lambda: (daemon.inbox.processing / "slow.json").exists(), interval=0.005)
            f.write(more)  # the writer goes on, into the file the inbox has taken
            f.flush()
        await wait_until(lambda: "slow.json.error.txt" in _entries(daemon.inbox.failed))
    sidecar = _sidecar(daemon.inbox.failed, "slow.json")
    assert "not valid JSON" in sidecar
    assert (f"slow.json changed after the inbox took it ({len(first)} bytes then, {len(first + more)} bytes now): "
            "it was still being written") in sidecar
    assert "write them under a temporary name (NAME.part or NAME.tmp) and rename them into the inbox" in sidecar
    assert (daemon.inbox.failed / "slow.json").read_bytes() == first + more  # nothing lost


# ---- files the inbox cannot claim or move ------------------------------------------------------


@contextlib.contextmanager
def immovable(path, monkeypatch):
    """A real reason a rename fails even for root: the immutable attribute (chattr +i).

    Where chattr is missing or the filesystem refuses it, rename is made to fail for this one
    path at the OS boundary instead, the way an immutable file fails it (EPERM).
    """
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    real, locked = os.rename, os.fspath(path)

    def rename(src, dst, *args, **kwargs):
        if locked in (os.fspath(src), os.path.dirname(os.fspath(dst))):
            raise PermissionError(errno.EPERM, "Operation not permitted", os.fspath(src))
        return real(src, dst, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, "rename", rename)
        yield


async def _all_rendered(daemon):
    """Jobs ended before the daemon stops, so a render cut short at shutdown is not mistaken for inbox trouble."""
    for job in await daemon.store.jobs():
        assert await wait_for_final(daemon, job.id) == "completed"


@pytest.fixture
async def loop_errors():
    """Exceptions asyncio would report as 'Task exception was never retrieved' and the like."""
    loop = asyncio.get_running_loop()
    seen = []
    loop.set_exception_handler(lambda _, context: seen.append(context))
    yield seen
    loop.set_exception_handler(None)


async def test_a_file_that_cannot_be_claimed_is_named_once_and_taken_when_it_can(
        tmp_path, plugin, monkeypatch, caplog, loop_errors):
    daemon = make_daemon(tmp_path, plugins=[plugin])
    daemon.inbox.retry_first, daemon.inbox.retry_cap = 0.05, 0.2
    daemon.inbox.prepare()
    stuck = daemon.inbox.root / "stuck.json"
    stuck.write_bytes(fixture_bytes("hn_algolia.json"))
    with contextlib.ExitStack() as lock:
        lock.enter_context(immovable(stuck, monkeypatch))
        async with running(daemon):
            await wait_until(lambda: daemon.inbox.trouble.get("stuck.json")
                             and daemon.inbox.trouble["stuck.json"].tries >= 4)
            assert _entries(daemon.inbox.done) == [] and stuck.exists()
            lock.close()  # chattr -i: the next try takes it, no restart needed
            await wait_until(lambda: "stuck.json" in _entries(daemon.inbox.done))
            assert daemon.inbox.trouble == {}
            await _all_rendered(daemon)
    (notice,) = plugin.notifier.notices
    assert notice.kind == "inbox.stuck" and notice.data["file"] == "stuck.json"
    assert notice.message.startswith("stuck.json cannot be taken from the inbox: PermissionError: ")
    assert len([r for r in caplog.records if "stuck.json cannot be taken" in r.getMessage()]) == 1
    assert loop_errors == []


async def test_a_done_folder_that_refuses_files_is_waited_out(tmp_path, plugin, monkeypatch, loop_errors):
    daemon = make_daemon(tmp_path, plugins=[plugin])
    daemon.inbox.retry_first, daemon.inbox.retry_cap = 0.05, 0.1
    daemon.inbox.prepare()
    async with running(daemon):
        with immovable(daemon.inbox.done, monkeypatch):
            drop(daemon, "hn.json", fixture_bytes("hn_algolia.json"))
            await wait_until(lambda: daemon.inbox.trouble.get("hn.json") and daemon.inbox.trouble["hn.json"].tries >= 2)
            assert _entries(daemon.inbox.processing) == ["hn.json"]
        await wait_until(lambda: "hn.json" in _entries(daemon.inbox.done))
        await _all_rendered(daemon)
    assert [n.message.split(":")[0] for n in plugin.notifier.notices] == ["hn.json cannot be moved to done/"]
    assert loop_errors == []
