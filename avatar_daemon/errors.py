"""Errors that reach users: each message is one sentence naming the thing and the reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class AvatarDaemonError(Exception):
    """Base class, so callers can tell our refusals from bugs."""


class ResearchError(AvatarDaemonError):
    """A dropped or fetched payload holds nothing we can turn into a video."""


class ConfigError(AvatarDaemonError):
    """A configuration file is invalid; `problems` holds `path:line: reason` lines."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class PluginError(AvatarDaemonError):
    """A plugin broke the contract (a duplicate name, a missing attribute)."""


class RenderError(AvatarDaemonError):
    """A render could not be made; the message says why in words a user can act on."""


class UnknownNameError(AvatarDaemonError):
    """A request named an avatar, format, renderer or source that does not exist."""


class PayloadError(AvatarDaemonError):
    """Bytes from outside (a dropped file, an HTTP body, a webhook) that are not the JSON or XML they claim to be."""


class PublishError(AvatarDaemonError):
    """A platform refused a post, or its credentials do not work; the message carries the platform's reason."""


class QuotaWait(AvatarDaemonError):
    """A platform limit is reached: the publication waits until `until` (aware UTC), it does not fail.

    Raised by a Publisher for YouTube's daily upload quota, TikTok's per-minute init limit or
    Instagram's rolling 24-hour publishing limit; `reason` names the limit for people watching.
    """

    def __init__(self, until, reason: str):
        self.until = until
        self.reason = reason
        super().__init__(f"{reason}; waiting until {until.isoformat(timespec='seconds')}")


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """(where, reason) of a model's first refusal: `where` is the dotted field path, "" for the whole value.

    One problem, not pydantic's list of all of them with URLs: the sentence a person reads
    names the first thing to fix.
    """
    err = exc.errors()[0]
    return ".".join(str(p) for p in err["loc"]), err["msg"]


class InvalidRequest(AvatarDaemonError):
    """A request for a video broke one of the rules every interface shares; `field` names what to fix."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")
