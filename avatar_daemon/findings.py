"""What `avatar-daemon doctor` prints: one finding per thing tried, with what to do about it.

The core tries what every install needs (folders, port, database); each plugin registers a
`Check` for what only it needs (a voice, an API key), so the doctor never learns a plugin's
settings or packages by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Finding:
    check: str
    status: str          # "ok", "fail", or "skip" (not configured, nothing to check)
    detail: str          # what was found, or what to do about it

    def line(self) -> str:
        return f"{self.status:<4}  {self.check:<16} {self.detail}"

    @classmethod
    def ok(cls, check: str, detail: str) -> "Finding":
        return cls(check, "ok", detail)

    @classmethod
    def fail(cls, check: str, detail: str) -> "Finding":
        return cls(check, "fail", detail)

    @classmethod
    def skip(cls, check: str, detail: str) -> "Finding":
        return cls(check, "skip", detail)

