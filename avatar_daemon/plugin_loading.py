"""Finding and loading plugins: entry points, a plugins_dir of loose modules, allow/deny lists."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

import pluggy

from . import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "avatar_daemon"
DISTRIBUTION = "avatar-daemon"


@dataclass
class PluginInfo:
    name: str
    origin: str  # builtin | installed | plugins_dir | registered
    version: str | None = None
    error: str | None = None
    registers: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class LoadSpec:
    """What to load. Tests use `installed=False` to stay hermetic."""

    builtin: bool = True
    installed: bool = True
    plugins_dir: Path | None = None
    only: list[str] | None = None
    disabled: list[str] = field(default_factory=list)


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("avatar_daemon")
    pm.add_hookspecs(hookspecs)
    if os.environ.get("AVATAR_DAEMON_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: log.debug("pluggy: %s", msg.rstrip()))
        pm.enable_tracing()
    return pm


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def _load_file(path: Path) -> ModuleType:
    modname = f"avatar_daemon_local.{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module  # before exec, so dataclasses and pickling can find it
    spec.loader.exec_module(module)
    return module


def _register(pm: pluggy.PluginManager, name: str, load: Callable[[], object], origin: str,
              version: str | None) -> PluginInfo:
    try:
        module = load()
        pm.register(module, name=name)
        try:
            pm.check_pending()  # a misspelt hook name fails loudly, naming the plugin
        except pluggy.PluginValidationError:
            pm.unregister(name=name)
            raise
    except Exception as exc:  # a broken plugin must not take the daemon down
        error = f"{type(exc).__name__}: {exc}"
        log.error("plugin %r failed to load: %s", name, error)
        log.debug("%s", traceback.format_exc())
        return PluginInfo(name, origin, version, error=error)
    return PluginInfo(name, origin, version)


def load_plugins(pm: pluggy.PluginManager, spec: LoadSpec) -> list[PluginInfo]:
    only = spec.only
    env_only = os.environ.get("AVATAR_DAEMON_LOAD_PLUGINS")
    if env_only is not None:
        only = [n.strip() for n in env_only.split(",") if n.strip()]
    for name in spec.disabled:
        pm.set_blocked(name)
    infos: list[PluginInfo] = []
    seen: set[str] = set()
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        ours = ep.dist is not None and _canonical(ep.dist.name) == DISTRIBUTION
        if (ours and not spec.builtin) or (not ours and not spec.installed):
            continue
        if ep.name in seen or (only is not None and ep.name not in only) or pm.is_blocked(ep.name):
            continue
        seen.add(ep.name)
        version = ep.dist.version if ep.dist else None
        infos.append(_register(pm, ep.name, ep.load, "builtin" if ours else "installed", version))
    if spec.plugins_dir and spec.plugins_dir.is_dir():
        for path in sorted(spec.plugins_dir.glob("*.py")):
            if path.name.startswith("_") or pm.is_blocked(path.stem):
                continue
            if only is not None and path.stem not in only:
                continue
            infos.append(_register(pm, path.stem, lambda p=path: _load_file(p), "plugins_dir", None))
    return infos
