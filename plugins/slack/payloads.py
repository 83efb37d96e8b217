"""The parts of Slack's interactive payloads the listeners read, as pydantic models.

Bolt hands listeners plain dicts; a forged or unexpected one must be a logged refusal,
not a KeyError half-way through a listener (before the ack that is a 500).
"""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from avatar_daemon import PayloadError, load_json

log = logging.getLogger(__name__)

RECORD_ID = re.compile(r"[0-9]{1,18}")   # a row id: digits that fit SQLite's integer
M = TypeVar("M", bound=BaseModel)


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class Ref(_Loose):
    id: str


class User(_Loose):
    id: str
    team_id: str | None = None


class Option(_Loose):
    value: str


class Element(_Loose):
    value: str | None = None
    selected_option: Option | None = None
    selected_options: list[Option] = Field(default_factory=list)


class State(_Loose):
    values: dict[str, dict[str, Element]] = Field(default_factory=dict)


class View(_Loose):
    id: str
    hash: str | None = None
    private_metadata: str = ""
    state: State = Field(default_factory=State)
    blocks: list[dict[str, Any]] = Field(default_factory=list)

    def text(self, block: str, action: str = "value") -> str:
        return (self.state.values.get(block, {}).get(action) or Element()).value or ""

    def picked(self, block: str) -> str | None:
        option = (self.state.values.get(block, {}).get("value") or Element()).selected_option
        return option.value if option else None

    def checked(self, block: str) -> bool:
        return bool((self.state.values.get(block, {}).get("value") or Element()).selected_options)

    def metadata(self) -> dict[str, Any]:
        """Our own context, round-tripped through Slack; PayloadError if it is not the object we put there."""
        meta = load_json(self.private_metadata or "{}", "Slack private_metadata")
        if not isinstance(meta, dict) or not all(isinstance(v, (str, type(None))) for v in meta.values()):
            raise PayloadError("Slack private_metadata: not the form's context")
        return meta


class Action(_Loose):
    action_id: str
    value: str | None = None
    selected_option: Option | None = None


class Interaction(_Loose):
    """A block_actions or view_submission payload."""

    user: User
    team: Ref | None = None
    channel: Ref | None = None
    view: View | None = None
    actions: list[Action] = Field(default_factory=list)

    @property
    def team_id(self) -> str | None:
        return self.user.team_id or (self.team.id if self.team else None)

    @property
    def channel_id(self) -> str | None:
        return self.channel.id if self.channel else None


def read(model: type[M], data: Any, what: str) -> M | None:
    """`data` as `model`, or None after a warning that names the field and the reason."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        log.warning("slack: ignored a %s: %s: %s", what, ".".join(map(str, err["loc"])) or "body", err["msg"])
        return None
