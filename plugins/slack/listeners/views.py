"""The form: live hints while typing, field errors on submit, and the video once it is valid."""

from __future__ import annotations

import json

from avatar_daemon import AvatarDaemonError, estimate_seconds

from .. import blocks


def _picked(values: dict, block: str) -> str | None:
    element = values.get(block, {}).get("value", {})
    return (element.get("selected_option") or {}).get("value")


async def on_script_typed(ack, body: dict, client, context) -> None:
    """Character count and spoken length in the hint, as the user types."""
    await ack()
    view = body["view"]
    text = view["state"]["values"].get("script", {}).get("script_input", {}).get("value") or ""
    speed = float(_picked(view["state"]["values"], "speed") or 1.0)
    hint = blocks.script_hint(len(text), estimate_seconds(text, speed) if text.strip() else 0)
    updated = {k: view[k] for k in ("type", "callback_id", "title", "submit", "close", "private_metadata", "blocks")}
    for block in updated["blocks"]:
        if block.get("block_id") == "script":
            block["hint"] = blocks.text(hint)
    await client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)


async def on_submit(ack, body: dict, view: dict, context) -> None:
    bot = context["bot"]
    meta = json.loads(view.get("private_metadata") or "{}")
    team, user = meta.get("team") or body["user"].get("team_id"), body["user"]["id"]
    values = view["state"]["values"]
    script = (values.get("script", {}).get("script_input", {}).get("value") or "").strip()
    research = _picked(values, "research")
    avatar = _picked(values, "avatar")
    errors = {}
    if not script and not research:
        errors["script"] = "Write a script, or pick recent research below."
    elif script and research:
        errors["research"] = "Pick either a script or research, not both."
    elif script and len(script) < 10:
        errors["script"] = "The script needs at least a sentence (10 characters)."
    elif len(script) > blocks.SCRIPT_MAX:
        errors["script"] = f"The script is over {blocks.SCRIPT_MAX:,} characters."
    allowed = {a["id"] for a in bot.avatars_for(team, user)}
    if avatar not in allowed:
        errors["avatar"] = "That avatar is not open to your tier."
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    settings = {"voice_speed": float(_picked(values, "speed") or 1.0),
                "captions": bool(values.get("captions", {}).get("value", {}).get("selected_options"))}
    common = {"who": bot.caller(team, user), "avatar": avatar, "format_name": _picked(values, "format") or "tiktok",
              "template": _picked(values, "template"), "settings": settings}
    channel = meta.get("channel")
    try:
        if research:
            jobs = await bot.daemon.videos.from_research(int(research), **common)
        else:
            from .commands import title_of
            jobs, _ = await bot.daemon.videos.from_script(title_of(script), script, key=f"slack-view:{view['id']}",
                                                          **common)
    except (AvatarDaemonError, PermissionError) as exc:
        await bot.client.chat_postEphemeral(channel=channel, user=user, text=f":x: {exc}")
        return
    for job in jobs:
        await bot.track(job, channel, team, user)


def register(app) -> None:
    app.view(blocks.MODAL)(on_submit)
    app.action("script_input")(on_script_typed)
