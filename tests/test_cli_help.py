"""The command line explains itself: help on every option, examples on every command, completion."""

import argparse
import shutil
import subprocess
import sys

import pytest

from avatar_daemon.cli import build_parser
from tests.conftest import REPO


def commands():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return parser, sub.choices


def test_every_option_and_argument_has_help_and_every_command_examples():
    parser, subparsers = commands()
    assert {"run", "render", "check", "doctor", "completion", "batch", "campaigns"} <= set(subparsers)
    missing = []
    for name, p in [("avatar-daemon", parser), *subparsers.items()]:
        for action in p._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
        if p is not parser:
            assert f"examples:\n  avatar-daemon {name}" in p.epilog, name
    assert missing == []
    assert "examples:" in parser.format_help() and "avatar-daemon doctor" in parser.format_help()


@pytest.mark.parametrize("name", ["render", "check", "batch", "campaigns", "doctor"])
def test_json_is_offered_where_the_issue_asks(name):
    _, subparsers = commands()
    assert "--json" in subparsers[name].format_help()


def test_bash_completion_knows_the_commands_and_their_options(tmp_path, capsys):
    from avatar_daemon import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["completion", "bash"])
    script = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "doctor" in script and "--dry-run" in script and "--hours-back" in script
    if shutil.which("bash"):
        (tmp_path / "complete.bash").write_text(script)
        # The script parses, and completes `avatar-daemon do` to `doctor`.
        probe = subprocess.run(["bash", "-c", f"source {tmp_path / 'complete.bash'}; COMP_WORDS=(avatar-daemon do);"
                                "COMP_CWORD=1; COMP_LINE='avatar-daemon do'; COMP_POINT=${#COMP_LINE};"
                                "_shtab_avatar_daemon; printf '%s\\n' \"${COMPREPLY[@]}\""],
                               capture_output=True, text=True)
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.split() == ["doctor"]


def test_help_loads_no_plugin():
    """`--help` is typed often; it must not pay for the renderers' imports."""
    code = ("import sys; from avatar_daemon import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('avatar_daemon_plugins') or m in "
            "('scipy', 'av', 'avatar_daemon.daemon'))\nprint(loaded, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0 and out.stderr.strip() == "[]", out.stderr


def test_readme_documents_every_json_output():
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### `--json` outputs"):]
    table = table[:table.index("\n## ")]
    _, subparsers = commands()
    with_json = [name for name, p in subparsers.items() if any("--json" in a.option_strings for a in p._actions)]
    assert with_json and [name for name in with_json if f"`{name} " not in table and f"`{name}`" not in table] == []
