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
