"""A terminal progress bar fed by job events; plain lines when stderr is not a terminal."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .models import JobEvent


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30):
        self.label = label
        self.stream = stream or sys.stderr  # at call time, so a command run in-process writes where it prints
        self.width = width
        self.tty = self.stream.isatty()
        self._last_line_percent = -10.0

    def update(self, event: JobEvent) -> None:
        percent = event.percent if event.percent is not None else 0.0
        if self.tty:
            filled = int(self.width * percent / 100)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {percent:5.1f}% {event.message[:40]:<40}")
            if event.state.final:
                self.stream.write("\n")
        elif percent - self._last_line_percent >= 10 or event.state.final:
            self._last_line_percent = percent
            self.stream.write(f"{self.label}: {percent:.0f}% {event.state.value} {event.message}\n")
        self.stream.flush()
