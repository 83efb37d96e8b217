"""Platform accounts from daemon.yaml's `publishing.accounts`, and their secrets from outside the file.

A refresh token is a long-lived password: it never sits in daemon.yaml (which is often kept
in git) and never reaches a log. It comes from the environment, `AVATAR_DAEMON_<ACCOUNT>_<KEY>`
(`acme-shorts` + `refresh_token` → `AVATAR_DAEMON_ACME_SHORTS_REFRESH_TOKEN`), or from a
systemd credential file `$CREDENTIALS_DIRECTORY/<account>.<key>` (LoadCredential=).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError, UnknownNameError
from .settings import PublishingSettings


def env_name(account: str, key: str) -> str:
    return "AVATAR_DAEMON_" + re.sub(r"[^A-Z0-9]", "_", f"{account}_{key}".upper())


@dataclass(repr=False)
class Account:
    """The `Account` a publisher is handed (hookspecs.Account)."""

    name: str
    platform: str
    settings: dict[str, Any] = field(default_factory=dict)
    default: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    def secret(self, key: str) -> str:
        var = env_name(self.name, key)
        if self.environ.get(var):
            return self.environ[var]
        creds = self.environ.get("CREDENTIALS_DIRECTORY")
        if creds:
            path = Path(creds) / f"{self.name}.{key}"
            if path.is_file():
                return path.read_text().strip()
        where = f"${var}" + (f" or {Path(creds) / f'{self.name}.{key}'}" if creds else
                             f" or a systemd credential {self.name}.{key}")
        raise ConfigError([f"account {self.name} ({self.platform}): no {key}: set {where}"])

    def __repr__(self) -> str:  # never the secrets, whatever prints it
        return f"Account({self.name!r}, platform={self.platform!r})"


class Accounts:
    """The configured accounts by name; the one place a platform's default account is chosen."""

    def __init__(self, settings: PublishingSettings, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        self._by_name = {
            name: Account(name, a.platform, dict(a.model_extra or {}), a.default, env)
            for name, a in settings.accounts.items()
        }

    def __iter__(self):
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Account:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name)) or "none configured in daemon.yaml publishing.accounts"
            raise UnknownNameError(f"no account named {name!r} (known: {known})") from None

    def of(self, platform: str) -> list[Account]:
        return [a for a in self._by_name.values() if a.platform == platform]

    def default_of(self, platform: str) -> Account:
        """The platform's only account, else the one marked `default: true`; a sentence when neither."""
        mine = self.of(platform)
        if not mine:
            raise UnknownNameError(f"no {platform} account is configured (add one under publishing.accounts in "
                                   "daemon.yaml)")
        if len(mine) == 1:
            return mine[0]
        marked = [a for a in mine if a.default]
        if len(marked) == 1:
            return marked[0]
        raise UnknownNameError(f"{platform} has {len(mine)} accounts ({', '.join(a.name for a in mine)}): name one, "
                               "or mark one `default: true`")
