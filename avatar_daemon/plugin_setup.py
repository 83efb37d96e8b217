"""What every plugin with settings needs at set-up, written once: its settings checked, one object per daemon."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from pydantic import BaseModel, ValidationError

from .yamlfile import YamlDocument

if TYPE_CHECKING:
    from .hookspecs import Host

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def plugin_settings(daemon: "Host", name: str, model: type[M], data: dict[str, Any] | None = None) -> M:
    """daemon.yaml's ``plugins.settings.<name>`` (or ``data``, the same merged with the environment) as
    ``model``; a ConfigError names every bad field with daemon.yaml's path and line, as the core's do."""
    raw = daemon.plugin_config(name) if data is None else data
    try:
        return model.model_validate(raw)
    except ValidationError:
        path = daemon.settings.config_path
        doc = YamlDocument.load(path) if path else YamlDocument(Path("daemon.yaml"), "")
        doc.validate(model, raw, prefix=("plugins", "settings", name))
        raise  # validate raised ConfigError above; this line is for type checkers


def per_daemon(make: Callable[["Host"], T]) -> Callable[["Host"], T]:
    """``make(daemon)`` once per daemon, so a plugin's hooks (a renderer, its route, its service) share one
    object. Kept on the daemon (``Host.plugin_objects``), not in a module-level map: the object usually
    holds the daemon, and a map outside would keep every test's daemon alive for good."""

    @functools.wraps(make)
    def get(daemon: "Host") -> T:
        if get not in daemon.plugin_objects:
            daemon.plugin_objects[get] = make(daemon)
        return daemon.plugin_objects[get]

    return get
