"""Speech speed of each voice on the same text in the same run: Piper, espeak-ng, festival (SLT HTS), flite (slt).

For each: seconds of speech made per CPU second (this process's threads plus the programs it
ran, which other work on the machine disturbs far less than wall time), and the real-time
factor (wall seconds per second of speech; under 1 is faster than real time). Ratios are
against espeak-ng, the fallback the female presenters had before. Piper, espeak-ng and festival
go through tts.stream(), the renderer's own path (a sentence at a time, levelled); flite, which
gives no timings and is not used, is run the same way, one process per sentence, for comparison.
Each figure is the median of --runs runs after one warm-up.

Run: .venv/bin/python benchmarks/voices.py [--runs 5]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar_daemon_plugins.local_renderer import festival, tts  # noqa: E402

TEXT = ("Small open models now beat last year's giants on coding benchmarks, and they run on a laptop. "
        "Developers are shipping them in editors, phones and tiny servers. "
        "Solar panels cost five times less than in 2010, and that changes who builds power plants.")


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def through_stream(voice: str):
    def speak() -> float:
        return sum(len(p.audio) for p in tts.stream([TEXT], voice, 1.0)) / tts.SAMPLE_RATE
    return speak


def flite() -> float:
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, sentence in enumerate(tts.sentences(TEXT)):
            src, out = Path(tmp) / f"{i}.txt", Path(tmp) / f"{i}.wav"
            src.write_text(sentence, encoding="utf-8")
            subprocess.run(["flite", "-voice", "slt", "-f", str(src), "-o", str(out)], check=True,
                           capture_output=True)
            with wave.open(str(out)) as w:
                seconds += w.getnframes() / w.getframerate()
    return seconds


def measure(speak, runs: int) -> tuple[float, float, float]:
    """Median (speech seconds, wall seconds, CPU seconds) over runs, after a warm-up."""
    speak()
    rows = []
    for _ in range(runs):
        wall, used = time.perf_counter(), cpu()
        spoken = speak()
        rows.append((spoken, time.perf_counter() - wall, cpu() - used))
    return tuple(statistics.median(r[i] for r in rows) for i in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    # the female presenters' voice before festival, under a name of its own for this run
    tts.VOICES["espeak-female"] = ("espeak", tts.VOICES["en-us-female"][1])
    engines = {"espeak-ng (en-us+f3)": through_stream("espeak-female"), "piper (joe)": through_stream("piper-joe")}
    if festival.available():
        tts.female_engine.cache_clear()
        assert tts.female_engine() == "festival"
        engines["festival (slt hts)"] = through_stream("en-us-female")
    else:
        print(f"festival: not installed, skipped ({festival.INSTALL})")
    if shutil.which("flite"):
        engines["flite (slt)"] = flite
    else:
        print("flite: not installed, skipped (apt-get install flite)")
    print(f"{len(TEXT.split())} words, {runs} runs each, median")
    print(f"{'voice':<22} {'speech s':>8} {'wall s':>7} {'CPU s':>6} {'speech s/CPU s':>14} {'RTF':>6} {'x espeak':>8}")
    figures = {name: measure(speak, runs) for name, speak in engines.items()}
    base = figures["espeak-ng (en-us+f3)"]
    for name, (spoken, wall, used) in figures.items():
        rate = spoken / used
        print(f"{name:<22} {spoken:>8.2f} {wall:>7.2f} {used:>6.2f} {rate:>14.1f} {wall / spoken:>6.3f} "
              f"{rate / (base[0] / base[2]):>8.2f}")


if __name__ == "__main__":
    main()
