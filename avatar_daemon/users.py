"""users.yaml while the daemon runs: watched, and reloaded whole or not at all, like a campaign file.

A token made by `avatar-daemon tokens create` (or revoked) counts at once, with no restart;
a file that no longer validates is reported with its path, line and reason, and the last good
version stays in force, so a typo never locks everyone out.
"""

from __future__ import annotations

import logging
from pathlib import Path

from watchfiles import awatch

from .errors import ConfigError
from .settings import DEFAULTS, Settings, UsersFile, _check_user_defaults
from .yamlfile import YamlDocument

log = logging.getLogger(__name__)


def users_path(settings: Settings) -> Path:
    """The users.yaml this installation owns: the packaged example is never written or watched."""
    if settings.users_file.resolve().is_relative_to(DEFAULTS.resolve()):
        base = settings.config_path.parent if settings.config_path else Path.cwd()
        return (base / "users.yaml").resolve()
    return settings.users_file


def load_users(path: Path) -> UsersFile:
    """Raises ConfigError with `path:line: reason` lines."""
    return YamlDocument.load(path).validate(UsersFile)


class UsersWatcher:
    name = "users"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = users_path(settings)

    def reload(self) -> bool:
        """True when the file's users are now in force; False (logged) when it was refused or is gone."""
        if not self.path.is_file():
            return False
        try:
            users = load_users(self.path)
            # Default avatars must name profiles, as at start: else requests would quietly get another.
            _check_user_defaults(self.settings.model_copy(update={"users": users, "users_file": self.path}))
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("users: %s; the last good version stays in force", problem)
            return False
        if users != self.settings.users:
            self.settings.users = users
            self.settings.users_file = self.path
            log.info("users: %s reloaded: %d workspaces, %d API tokens", self.path, len(users.workspaces),
                     len(users.api_tokens))
        return True

    async def run(self, daemon=None) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            log.warning("users: %s does not exist; users.yaml is not watched", folder)
            return
        stopping = daemon.stopping if daemon is not None else None
        async for changes in awatch(folder, stop_event=stopping, debounce=200, recursive=False,
                                    watch_filter=lambda _, p: Path(p).name == self.path.name):
            if changes:
                self.reload()
