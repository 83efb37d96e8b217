"""Slack's HTTP requests: verified on the raw bytes, parsed by us, then handed to Bolt as a dict.

Bolt's body parser takes any form body that merely *contains* the text "payload" for an
interactive payload, so `/avatar-video Explain the payload of a rocket`, or any command from
a channel named #payload-team, became an empty request and a 404. Slack signs the raw bytes,
so the signature is checked on them here; then the form is parsed once, by its fields (a
`payload` field is an interactive payload, anything else a slash command), and Bolt gets the
result already parsed. Everything Slack could not have sent is refused with a status and a
sentence before any listener runs: 401 unsigned, 400 not Slack's shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from avatar_daemon import PayloadError, load_json

log = logging.getLogger(__name__)

TIMESTAMP_MAX_DIGITS = 12   # seconds since 1970 for the next 30,000 years; longer is not a time stamp


class Refused(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


class _View(BaseModel):
    """A view as Slack sends it: Bolt reads `view["type"]` of every view submission unchecked."""

    model_config = ConfigDict(extra="allow")

    type: str
    callback_id: str | None = None


class _Shape(BaseModel):
    """The top-level fields Slack's requests carry as objects or lists, with the types Slack sends.

    Bolt reads these (for its context and its listener matching) without checking their
    types: a signed body with `authorizations=x` or `"actions": []` would make it raise.
    """

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    command: str | None = None
    team: str | dict[str, Any] | None = None
    user: str | dict[str, Any] | None = None
    channel: str | dict[str, Any] | None = None
    enterprise: str | dict[str, Any] | None = None
    authorizations: list[dict[str, Any]] | None = None
    actions: list[dict[str, Any]] | None = Field(None, min_length=1)
    response_urls: list[dict[str, Any]] | None = None
    view: _View | None = None
    event: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    previous_message: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    item: dict[str, Any] | None = None
    assistant_thread: dict[str, Any] | None = None
    function_data: dict[str, Any] | None = None


def parse(text: str, content_type: str) -> dict[str, Any]:
    """A Slack request body as Bolt expects it, or PayloadError naming what is wrong.

    Forms (slash commands, interactivity) are parsed by their fields; JSON (the Events API's
    url_verification) only when it says it is JSON. Every JSON value goes through load_json.
    """
    if content_type == "application/json":
        body = load_json(text, "Slack request")
        what = "Slack request"
    else:
        form = dict(parse_qsl(text, keep_blank_values=True))
        if "payload" not in form:
            body, what = form, "Slack request"
        else:
            body, what = load_json(form["payload"], "Slack payload"), "Slack payload"
    if not isinstance(body, dict):
        raise PayloadError(f"{what}: not a JSON object")
    try:
        _Shape.model_validate(body)
    except ValidationError as exc:
        raise PayloadError(f"{what}: {_shape_error(exc)}") from None
    return body


_KINDS = {"string_type": "a string", "dict_type": "an object", "list_type": "a list"}


def _shape_error(exc: ValidationError) -> str:
    """"team: should be a string or an object", not pydantic's one line per member of the union."""
    errors = exc.errors()
    loc = errors[0]["loc"]
    where = str(loc[0]) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
    kinds = [_KINDS[e["type"]] for e in errors if e["loc"][:1] == loc[:1] and e["type"] in _KINDS]
    return f"{where}: should be {' or '.join(dict.fromkeys(kinds))}" if kinds else f"{where}: {errors[0]['msg']}"


class _Clock:
    """SignatureVerifier's clock, read from the daemon's one injected clock."""

    def __init__(self, clock: Callable[[], datetime]):
        self.clock = clock

    def now(self) -> float:
        return self.clock().timestamp()


class Inbound:
    def __init__(self, app: AsyncApp, signing_secret: str, clock: Callable[[], datetime]):
        self.app = app
        self.verifier = SignatureVerifier(signing_secret, clock=_Clock(clock))

    def read(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The verified, parsed body; Refused (401 or 400) for anything Slack did not send."""
        timestamp = headers.get("X-Slack-Request-Timestamp") or ""
        signature = headers.get("X-Slack-Signature") or ""
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= TIMESTAMP_MAX_DIGITS
                and signature.isascii()):
            raise Refused(401, "Slack request: X-Slack-Request-Timestamp and X-Slack-Signature are missing "
                               "or malformed")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused(400, f"Slack request: the body is not UTF-8 text (byte {exc.start})") from None
        if not self.verifier.is_valid(text, timestamp, signature):
            raise Refused(401, "Slack request: the signature does not match, or the timestamp is more than "
                               "five minutes from now")
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            return parse(text, content_type)
        except PayloadError as exc:
            raise Refused(400, str(exc)) from None

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = self.read(await request.read(), request.headers)
        except Refused as exc:
            log.warning("slack: refused a request to %s: %s", request.path, exc.message)
            return web.json_response({"error": exc.message}, status=exc.status)
        # A dict body is Bolt's "already parsed" path, which it calls socket_mode; the only
        # difference it makes is skipping Bolt's signature check, done above on the raw bytes.
        bolt = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers),
                                mode="socket_mode")
        return await to_aiohttp_response(await self.app.async_dispatch(bolt))
