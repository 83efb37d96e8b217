"""Every example a command's --help prints parses as written.

The examples are what a new user copies first; one that argparse refuses (a NAME after
the options, say) is a broken promise in the help itself.
"""

import argparse
import shlex

import pytest

from avatar_daemon.cli import build_parser


def examples() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for command in sub.choices.values():
        for line in (command.epilog or "").splitlines():
            line = line.strip()
            if line.startswith("avatar-daemon "):
                found.append(line)
    return found


def test_the_help_gives_examples_to_check():
    assert len(examples()) > 30


@pytest.mark.parametrize("example", examples())
def test_each_help_example_parses(example):
    words = shlex.split(example, posix=True)
    for stop in ("|", ">"):  # the shell's part of the line, not ours
        if stop in words:
            words = words[:words.index(stop)]
    args = build_parser().parse_args(words[1:])
    assert callable(args.func)


def test_a_name_after_the_options_is_the_name():
    args = build_parser().parse_args(["tokens", "create", "--workspace", "acme", "--user", "ops", "--admin",
                                      "--campaigns", "ops-bot"])
    assert (args.action, args.name, args.admin, args.campaigns) == ("create", "ops-bot", True, True)
    args = build_parser().parse_args(["videos", "retry", "--json", "42"])
    assert (args.action, args.id, args.json) == ("retry", 42, True)


def test_an_extra_word_is_still_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tokens", "revoke", "ana", "bob"])
    assert "unrecognized arguments: bob" in capsys.readouterr().err


def test_campaigns_lists_no_next_run_for_one_that_will_not_run(tmp_path, capsys):
    import json

    from avatar_daemon import cli

    (tmp_path / "campaigns").mkdir()
    for name, active in (("live", "true"), ("dormant", "false")):
        (tmp_path / "campaigns" / f"{name}.yaml").write_text(
            f"name: {name}\nactive: {active}\nsources: [{{source: reddit}}]\nschedule: {{every: daily, at: '09:00'}}\n")
    (tmp_path / "daemon.yaml").write_text(json.dumps({"data_dir": "var", "database": "var/db.sqlite3",
                                                      "notifiers": ["log"], "campaigns_dir": "campaigns"}))

    def listing(*extra: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["campaigns", *extra, "--config", str(tmp_path / "daemon.yaml")])
        assert exit_.value.code == 0
        return capsys.readouterr().out

    lines = {line.split()[0]: line.split() for line in listing().splitlines()}
    assert lines["live"][lines["live"].index("next") + 1].startswith("20")  # a date
    assert lines["dormant"][lines["dormant"].index("next") + 1] == "-"
    listing("pause", "live")
    lines = {line.split()[0]: line.split() for line in listing().splitlines()}
    assert lines["live"][1] == "paused" and lines["live"][lines["live"].index("next") + 1] == "-"
