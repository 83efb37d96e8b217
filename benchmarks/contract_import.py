"""What `import avatar_daemon` costs a plugin, against the same import with aiohttp as it used to pull in.

Each figure is the median of fresh interpreters (`python -X importtime -c ...`, which
reports microseconds per module), so the disk cache is warm for both and only the modules
imported differ. The baseline, measured in the same run, is `import avatar_daemon, aiohttp`:
what the contract cost while `fetch` imported aiohttp at the top.
Run: .venv/bin/python benchmarks/contract_import.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys


def cost(code: str) -> tuple[float, set[str]]:
    """(seconds of imports, module names) for one fresh interpreter running `code`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          check=True)
    total, modules = 0, set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        modules.add(name.strip())
        if len(name) - len(name.lstrip()) == 1:  # a top-level import: its cumulative time counts once
            total += int(cumulative)
    return total / 1e6, modules


def main(runs: int) -> None:
    contract = [cost("import avatar_daemon") for _ in range(runs)]
    baseline = [cost("import avatar_daemon, aiohttp") for _ in range(runs)]
    ours, before = statistics.median(c for c, _ in contract), statistics.median(c for c, _ in baseline)
    modules = contract[0][1]
    print(f"import avatar_daemon          {ours * 1000:7.1f} ms  ({len(modules)} modules)")
    print(f"  + aiohttp (the old contract) {before * 1000:7.1f} ms  ({len(baseline[0][1])} modules)")
    print(f"ratio                          {ours / before:7.2f}  (lower is better)")
    heavy = sorted(m for m in modules if m.split(".")[0] in ("aiohttp", "av", "numpy", "slack_bolt"))
    print("heavy modules imported:", ", ".join(heavy) or "none")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
