"""The names a request may use: the avatars and templates of the settings, the objects plugins registered.

Planning a video (its source, formats, avatar, renderer and writer) needs these and nothing
that runs, so planning functions and services take this one object, not the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import UnknownNameError
from .hookspecs import Check, Notifier, NotifyTarget, Publisher, Renderer, ResearchSource, ScriptWriter, Service
from .models import AvatarProfile, FormatSpec
from .registry import Registry
from .settings import Settings


@dataclass
class Catalogue:
    settings: Settings
    sources: Registry[ResearchSource] = field(default_factory=lambda: Registry("source"))
    script_writers: Registry[ScriptWriter] = field(default_factory=lambda: Registry("script writer"))
    renderers: Registry[Renderer] = field(default_factory=lambda: Registry("renderer"))
    formats: Registry[FormatSpec] = field(default_factory=lambda: Registry("format"))
    notifiers: Registry[Notifier] = field(default_factory=lambda: Registry("notifier"))
    services: Registry[Service] = field(default_factory=lambda: Registry("service"))
    notify_targets: Registry[NotifyTarget] = field(default_factory=lambda: Registry("campaign notify key"))
    publishers: Registry[Publisher] = field(default_factory=lambda: Registry("publisher"))
    checks: Registry[Check] = field(default_factory=lambda: Registry("doctor check"))

    def registry(self, hook: str) -> Registry[Any]:
        """The registry a `register_<kind>` hook fills."""
        return getattr(self, hook.removeprefix("register_"))

    def avatar(self, avatar_id: str) -> AvatarProfile:
        try:
            return self.settings.avatars[avatar_id]
        except KeyError:
            known = ", ".join(self.settings.avatars) or "none"
            raise UnknownNameError(f"no avatar profile named {avatar_id!r} (known: {known})") from None

    def script_writer(self, name: str | None = None) -> ScriptWriter:
        """`name` (a request's, campaign's or template's choice), else daemon.yaml's script.writer."""
        return self.script_writers[name or self.settings.plugin_config("script").get("writer", "template")]

    def template_name(self, name: str | None) -> None:
        """UnknownNameError unless `name` is None or a template in templates.yaml."""
        if name is not None and name not in self.settings.templates:
            raise UnknownNameError(f"no template named {name!r} (known: "
                                   f"{', '.join(self.settings.templates) or 'none'})")
