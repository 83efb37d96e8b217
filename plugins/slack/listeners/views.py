"""The form: live hints while typing, field errors on submit, and the video once it is valid.

A submission is checked by the core's rules (the same as the HTTP API's) and queued before
the ack, so a value the core refuses comes back as `response_action: errors` under its
block, and a forged one (speed=25, speed=abc, an unknown template) never makes a job.
"""

from __future__ import annotations

import logging

from avatar_daemon import (
    AvatarDaemonError, InvalidRequest, PayloadError, UnknownNameError, estimate_seconds,
)

from .. import blocks, payloads
from .commands import title_of

log = logging.getLogger(__name__)

# The core names a request's fields once for every interface; the form's blocks are named for the form.
BLOCK_OF = {"voice_speed": "speed", "title": "script", "renderer": "avatar", "background": "format"}
BLOCKS = {"avatar", "format", "speed", "captions", "template", "script", "research"}


def block_of(field: str) -> str:
    block = BLOCK_OF.get(field, field)
    return block if block in BLOCKS else "avatar"  # the first block: the error must sit on one that exists


async def on_script_typed(ack, body: dict, client, context) -> None:
    """Character count and spoken length in the hint, as the user types."""
    await ack()
    typed = payloads.read(payloads.Interaction, body, "script hint")
    if typed is None or typed.view is None:
        return
    view = typed.view
    text = view.text("script", "script_input")
    speed = view.picked("speed")
    speed = float(speed) if speed in blocks.SPEEDS else 1.0  # a hint only: the submit applies the rules
    hint = blocks.script_hint(len(text), estimate_seconds(text, speed) if text.strip() else 0)
    raw = body["view"]
    updated = {k: raw[k] for k in ("type", "callback_id", "title", "submit", "close", "private_metadata", "blocks")
               if k in raw}
    for block in view.blocks:
        if block.get("block_id") == "script":
            block["hint"] = blocks.text(hint)
    updated["blocks"] = view.blocks
    await client.views_update(view_id=view.id, hash=view.hash, view=updated)


async def on_submit(ack, body: dict, context) -> None:
    bot = context["bot"]
    sub = payloads.read(payloads.Interaction, body, "view submission")
    if sub is None or sub.view is None:
        await ack()
        return
    view = sub.view
    try:
        meta = view.metadata()
    except PayloadError as exc:
        log.warning("slack: %s", exc)
        await ack(response_action="errors", errors={"script": "This form is damaged: open a new one."})
        return
    team, user, channel = meta.get("team") or sub.team_id, sub.user.id, meta.get("channel")
    script = view.text("script", "script_input").strip()
    research = view.picked("research")
    errors = {}
    if not script and not research:
        errors["script"] = "Write a script, or pick recent research below."
    elif script and research:
        errors["research"] = "Pick either a script or research, not both."
    elif research and not payloads.RECORD_ID.fullmatch(research):
        errors["research"] = "research: not a research job id"
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    who = bot.caller(team, user)
    common = {"who": who, "avatar": view.picked("avatar"), "format_name": view.picked("format") or "tiktok",
              "template": view.picked("template"),
              "settings": {"voice_speed": view.picked("speed"), "captions": view.checked("captions")}}
    try:
        bot.daemon.videos.check(who, common["avatar"], common["format_name"], None, common["template"])
    except InvalidRequest as exc:
        await ack(response_action="errors", errors={block_of(exc.field): str(exc)})
        return
    except PermissionError as exc:
        await ack(response_action="errors", errors={"avatar": str(exc)})
        return
    try:
        if research:
            jobs = await bot.daemon.videos.from_research(int(research), **common)
        else:
            jobs, _ = await bot.daemon.videos.from_script(title_of(script), script, key=f"slack-view:{view.id}",
                                                          **common)
    except InvalidRequest as exc:
        await ack(response_action="errors", errors={block_of(exc.field): str(exc)})
        return
    except (PermissionError, UnknownNameError) as exc:  # the research job: someone else's, or gone
        await ack(response_action="errors", errors={"research": str(exc)})
        return
    except AvatarDaemonError as exc:  # e.g. ResearchError: a script with no words to speak
        await ack(response_action="errors", errors={"research" if research else "script": str(exc)})
        return
    await ack()
    for job in jobs:
        bot.follow(job, channel, team, user)


def register(app) -> None:
    app.view(blocks.MODAL)(on_submit)
    app.action("script_input")(on_script_typed)
