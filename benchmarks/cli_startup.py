"""How long the command line takes to start, against the interpreter and the package measured in the same run.

    .venv/bin/python benchmarks/cli_startup.py [--runs 7] [--before CHECKOUT]

Each figure is the median over fresh processes of wall time and of CPU time (user + system,
which a busy machine disturbs far less). The baselines are `python -c pass` (the
interpreter alone) and `python -c "import avatar_daemon"` (the package every command
imports): a command's cost above the second is what the CLI and the plugins add.
`--before` runs the same commands from another checkout (`git worktree add /tmp/old HEAD~5`),
interleaved with this one's so both see the same load, and prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def importable(checkout: Path, folder: Path) -> str:
    """A folder that imports the checkout's core and its built-in plugins, ahead of any installed copy."""
    folder.mkdir()
    (folder / "avatar_daemon").symlink_to(checkout / "avatar_daemon")
    (folder / "avatar_daemon_plugins").symlink_to(checkout / "plugins")
    return str(folder)


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and exit status of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per figure (the median is printed)")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="another checkout of this repository to compare with, run from its own source")
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "daemon.yaml"
        config.write_text('{"data_dir": "var", "database": "var/db.sqlite3", "inbox": {"path": "inbox"}}')
        cli = [py, "-m", "avatar_daemon"]
        rows = [
            ("python -c pass", [py, "-c", "pass"]),
            ("import avatar_daemon", [py, "-c", "import avatar_daemon"]),
            ("avatar-daemon --version", [*cli, "--version"]),
            ("avatar-daemon --help", [*cli, "--help"]),
            ("avatar-daemon schema campaign", [*cli, "schema", "campaign"]),
            ("avatar-daemon plugins", [*cli, "plugins", "--config", str(config)]),
            ("avatar-daemon check", [*cli, "check", "--config", str(config)]),
        ]
        envs = {"now": {**os.environ, "PYTHONPATH": importable(REPO, Path(tmp) / "now")}}
        if args.before:
            envs["before"] = {**os.environ, "PYTHONPATH": importable(args.before.resolve(), Path(tmp) / "before")}
        samples: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        for _ in range(args.runs):
            for name, argv in rows:
                for which, env in envs.items():  # interleaved: both checkouts see the same load
                    samples.setdefault((which, name), []).append(once(argv, env))

    def figure(which: str, name: str) -> tuple[float, float, int]:
        got = samples[(which, name)]
        return statistics.median(g[0] for g in got), statistics.median(g[1] for g in got), max(g[2] for g in got)

    print(f"median of {args.runs} fresh processes each; CPU = user + system")
    head = f"{'':30} {'wall s':>7} {'CPU s':>6} {'CPU x import':>12}"
    print(head + (f" {'before CPU s':>12} {'now/before':>10}" if args.before else ""))
    package_cpu = figure("now", "import avatar_daemon")[1]
    for name, _ in rows:
        wall, cpu, code = figure("now", name)
        line = f"{name:30} {wall:7.3f} {cpu:6.3f} {cpu / package_cpu:12.2f}"
        if args.before:
            _, before_cpu, before_code = figure("before", name)
            line += f" {before_cpu:12.3f} {cpu / before_cpu:10.2f}" + (f" (before: exit {before_code})"
                                                                       if before_code else "")
        print(line + (f"  (exit {code})" if code else ""))


if __name__ == "__main__":
    main()
