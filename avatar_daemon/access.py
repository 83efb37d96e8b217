"""Who may do what: tiers by workspace and user, API tokens by hash, and the row-level rule.

The seed's policy, kept for every interface (HTTP, Slack): a caller sees and changes their
own videos and their workspace's, never another workspace's; an avatar above the caller's
tier is refused with the reason. Videos with no owner (the inbox's, the campaigns') are
visible to admins only.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .models import AvatarProfile

if TYPE_CHECKING:
    from .settings import UsersFile
    from .store import Job

TIERS = ["free", "pro", "enterprise"]


@dataclass(frozen=True)
class Caller:
    name: str
    workspace: str | None
    user: str | None
    tier: str
    admin: bool = False
    campaigns: bool = False

    def may_use(self, avatar: AvatarProfile) -> bool:
        return TIERS.index(avatar.tier) <= TIERS.index(self.tier)

    def refusal(self, avatar: AvatarProfile) -> str:
        return (f"avatar {avatar.id!r} needs the {avatar.tier} tier; {self.name} is on the {self.tier} tier")

    def may_see(self, job: "Job") -> bool:
        if self.admin:
            return True
        if job.workspace_id is None:
            return False
        return job.workspace_id == self.workspace

    def owner_filter(self) -> str | None:
        """The workspace a listing is limited to; None means every row (admins)."""
        return None if self.admin else (self.workspace or "")


def tier_of(users: "UsersFile", workspace: str | None, user: str | None) -> str:
    """A user's own tier, else their workspace's, else the default."""
    ws = users.workspaces.get(workspace or "")
    if ws is None:
        return users.default_tier
    return ws.users.get(user or "", ws.tier)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_caller(users: "UsersFile", token: str) -> Caller | None:
    """The caller a bearer token stands for; only hashes are stored, compared in constant time."""
    return digest_caller(users, token_digest(token))


def digest_caller(users: "UsersFile", digest: str) -> Caller | None:
    """The caller behind a token's hash: a browser session keeps the hash, never the token, so revoking
    the token in users.yaml ends its sessions too."""
    for t in users.api_tokens:
        if hmac.compare_digest(t.sha256.lower(), digest):
            tier = max(t.tier, tier_of(users, t.workspace, t.user), key=TIERS.index)
            return Caller(t.name, t.workspace, t.user, tier, t.admin, t.campaigns or t.admin)
    return None
