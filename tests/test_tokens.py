"""`avatar-daemon tokens`: a token printed once, only its hash in users.yaml, and a running daemon
that honours a new token, and refuses a revoked one, without a restart."""

import json
import logging

import aiohttp
import pytest
import yaml

from avatar_daemon.cli import main
from avatar_daemon.testing import RecordingPlugin, make_daemon, make_settings, running, wait_until

USERS = """\
# Our workspaces. This comment must survive every edit.
default_tier: free
workspaces:
  W1:
    tier: pro   # the team's plan
api_tokens: []
"""


def cli(capsys, tmp_path, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["--config", str(tmp_path / "daemon.yaml"), "tokens", *args])
    out, err = capsys.readouterr()
    return done.value.code, out, err


async def status_with(http, token):
    async with http.get("/videos", headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status


async def test_a_token_is_created_listed_and_revoked_while_the_daemon_runs(tmp_path, capsys):
    (tmp_path / "users.yaml").write_text(USERS)
    settings = make_settings(tmp_path, users_file="users.yaml")
    async with running(make_daemon(tmp_path, plugins=[RecordingPlugin()], settings=settings)) as daemon, \
            aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        code, out, err = cli(capsys, tmp_path, "create", "--workspace", "W1", "--user", "U7", "--tier", "pro",
                             "--campaigns")
        token = out.strip()
        assert code == 0 and token.startswith("avd_") and len(token) > 40
        assert "only time it is shown" in err and token not in err
        text = (tmp_path / "users.yaml").read_text()
        assert token not in text and "This comment must survive" in text and "# the team's plan" in text
        [entry] = yaml.safe_load(text)["api_tokens"]
        assert entry["name"] == "U7@W1" and entry["campaigns"] is True and len(entry["sha256"]) == 64
        await wait_until(lambda: _is(status_with(http, token), 200), timeout=10)

        code, out, _ = cli(capsys, tmp_path, "list", "--json")
        assert code == 0 and [(r["name"], r["tier"], r["campaigns"]) for r in json.loads(out)] == \
            [("U7@W1", "pro", True)]
        assert token not in out and entry["sha256"] not in out

        code, _, err = cli(capsys, tmp_path, "create", "--workspace", "W1", "--user", "U7")
        assert code == 1 and "a token named 'U7@W1' exists" in err

        # A broken edit is refused by the daemon, and the last good file stays in force.
        heard = Heard()
        logging.getLogger("avatar_daemon.users").addHandler(heard)
        try:
            (tmp_path / "users.yaml").write_text(text.replace("tier: pro   #", "tier: platinum   #"))
            await wait_until(lambda: "last good version stays in force" in heard.text, timeout=10)
            assert "users.yaml:5: workspaces.W1.tier" in heard.text
            unknown_default = text.replace("tier: pro   #", "defaults: {avatar: nobody}\n    tier: pro   #")
            (tmp_path / "users.yaml").write_text(unknown_default)
            await wait_until(lambda: "no avatar profile named 'nobody'" in heard.text, timeout=10)
        finally:
            logging.getLogger("avatar_daemon.users").removeHandler(heard)
        assert daemon.settings.users.workspaces["W1"].defaults.avatar is None
        assert await status_with(http, token) == 200
        (tmp_path / "users.yaml").write_text(text)

        code, _, err = cli(capsys, tmp_path, "revoke", "U7@W1")
        assert code == 0 and "revoked" in err
        await wait_until(lambda: _is(status_with(http, token), 401), timeout=10)
        code, _, err = cli(capsys, tmp_path, "revoke", "U7@W1")
        assert code == 1 and "no token named 'U7@W1'" in err


class Heard(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.text = ""

    def emit(self, record):
        self.text += record.getMessage() + "\n"


async def _is(status_coro, expected):
    return await status_coro == expected


def test_create_needs_a_workspace_and_user_and_never_writes_the_packaged_example(tmp_path, capsys):
    (tmp_path / "daemon.yaml").write_text("http: {port: 0}\n")
    code, _, err = cli(capsys, tmp_path, "create", "--user", "U1")
    assert code == 1 and "needs --workspace" in err
    code, out, _ = cli(capsys, tmp_path, "create", "--workspace", "W", "--user", "U", "--admin")
    assert code == 0
    written = yaml.safe_load((tmp_path / "users.yaml").read_text())  # beside daemon.yaml, not in the package
    assert [t["admin"] for t in written["api_tokens"]] == [True]
    assert (tmp_path / "users.yaml").stat().st_mode & 0o777 == 0o600  # a new file is the owner's only
