"""/avatar-video: a script makes a video, nothing opens the form, a known word is a subcommand.

Every path acks at once (Slack waits 3 s, and a busy store must not make it wait longer),
then answers ephemerally through response_url: the core's refusal naming the limit a
script broke, or that the video is coming.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Awaitable, Callable

import aiohttp

from avatar_daemon import AvatarDaemonError

from .. import blocks
from ..bot import SLACK_ERRORS, why
from ..payloads import RECORD_ID

log = logging.getLogger(__name__)

async def avatar_video(ack, command: dict, client, context, respond) -> None:
    bot = context["bot"]
    text = (command.get("text") or "").strip()
    word, _, rest = text.partition(" ")
    if not text:
        await ack()  # trigger_id lives 3 s: open the form first, then anything slow
        await open_modal(bot, client, command.get("trigger_id"), command.get("channel_id"), command.get("team_id"),
                         command.get("user_id"))
        return
    await ack()
    subcommand = SUBCOMMANDS.get(word.lower())
    if subcommand is not None:
        answer = await subcommand(bot, command, rest.strip())
    else:
        refusal = await make_from_text(bot, command, text)
        answer = {"text": f":x: {refusal}" if refusal else ":clapper: Making your video; progress follows in the channel."}
    await tell(bot, respond, command, **answer)


async def tell(bot, respond, command: dict, **answer) -> None:
    """An ephemeral answer through response_url; chat.postEphemeral when there is none or it fails."""
    if command.get("response_url"):
        try:
            resp = await respond(response_type="ephemeral", replace_original=False, **answer)
            if resp.status_code == 200:
                return
            log.warning("slack: response_url answered HTTP %s", resp.status_code)  # Bolt does not raise on it
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:  # ValueError: not a URL
            log.warning("slack: response_url failed: %s", type(exc).__name__)
    try:
        await bot.client.chat_postEphemeral(channel=command.get("channel_id"), user=command.get("user_id"), **answer)
    except SLACK_ERRORS as exc:
        log.warning("slack: cannot answer %s: %s", command.get("user_id"), why(exc))


async def open_modal(bot, client, trigger_id: str, channel: str | None, team: str | None, user: str | None) -> None:
    d = bot.daemon
    research = [{"id": r.id, "source": r.source, "title": r.title[:60]}
                for r in await d.store.research_page(team or "", 25)]
    templates = [(t.id, t.name) for t in d.settings.templates.values()]
    view = blocks.modal(bot.avatars_for(team, user), research, templates,
                        {"channel": channel, "team": team, "user": user})
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SLACK_ERRORS as exc:  # expired_trigger_id, exchanged_trigger_id...
        log.warning("slack: cannot open the form: %s", why(exc))


def title_of(text: str) -> str:
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return first if len(first) <= 60 else first[:57].rsplit(" ", 1)[0] + "…"


async def make_from_text(bot, command: dict, text: str) -> str | None:
    """Queue the video and claim its progress message; the refusal to show instead, if any."""
    team, user, channel = command.get("team_id"), command.get("user_id"), command.get("channel_id")
    avatar, fmt = bot.daemon.videos.defaults(team, user)
    if avatar is None:
        return "No avatar is open to your tier."
    key = f"slack:{team}:{user}:{command.get('trigger_id')}:{text}"  # a retried command finds its video
    try:
        jobs, _ = await bot.daemon.videos.from_script(
            title_of(text), text, who=bot.caller(team, user), avatar=avatar,
            format_name=fmt, key=key)
    except (AvatarDaemonError, PermissionError) as exc:
        return str(exc)  # the core's words: "script: is 40,000 characters; the limit is 20,000"
    for job in jobs:
        bot.follow(job, channel, team, user)
    return None


async def sub_help(bot, command: dict, rest: str) -> dict[str, Any]:
    return {"text": blocks.HELP}


async def sub_status(bot, command: dict, rest: str) -> dict[str, Any]:
    if not RECORD_ID.fullmatch(rest):
        return {"text": "Which video? `/avatar-video status 42`"}
    job = await bot.daemon.store.job(int(rest))
    who = bot.caller(command.get("team_id"), command.get("user_id"))
    if job is None or not who.may_see(job):
        return {"text": f"No video {rest} in your workspace."}
    pct = f" {job.percent:.0f}%" if job.status.value in blocks.WITH_PERCENT else ""
    error = f": {job.error}" if job.error else ""
    return {"text": f"Video {job.id} *{job.title}*: {job.status.value}{pct}{error}"}


async def sub_list(bot, command: dict, rest: str) -> dict[str, Any]:
    team, user = command.get("team_id"), command.get("user_id")
    jobs = [j for j in await bot.daemon.store.jobs_page(team or "", limit=100) if j.user_id == user][:10]
    if not jobs:
        return {"text": "You have no videos yet: `/avatar-video <script>` makes one."}
    lines = [f"• {j.id} *{j.title}* · {j.format} · {j.status.value}" for j in jobs]
    return {"text": "Your recent videos:\n" + "\n".join(lines)}


async def sub_avatars(bot, command: dict, rest: str) -> dict[str, Any]:
    avatars = bot.avatars_for(command.get("team_id"), command.get("user_id"))
    out = []
    for a in avatars:
        section: dict[str, Any] = {"type": "section", "text": blocks.text(
            f"*{a['name']}* (`{a['id']}`) · {blocks.avatar_label(a).split(' · ', 1)[1]}", "mrkdwn")}
        if a.get("preview_image_url"):
            section["accessory"] = {"type": "image", "image_url": a["preview_image_url"], "alt_text": a["name"]}
        out.append(section)
    return {"text": f"{len(avatars)} avatars for your tier", "blocks": out[:50]}


async def sub_campaigns(bot, command: dict, rest: str) -> dict[str, Any]:
    campaigns = bot.daemon.campaigns
    action, _, name = rest.partition(" ")
    action, name = action.lower(), name.strip()
    if action in ("pause", "resume", "run"):
        if not bot.may_manage_campaigns(command.get("user_id")):
            return {"text": "You may not manage campaigns (ask for your user id in `campaign_users`)."}
        try:
            if action == "run":
                report = await campaigns.run_now(name)
                return {"text": report.message}
            await campaigns.set_paused(name, action == "pause")
        except AvatarDaemonError as exc:
            return {"text": str(exc)}
        return {"text": f"Campaign {name} {action}d."}
    rows = await campaigns.rows()
    if not rows:
        return {"text": "No campaigns: add YAML files to config/campaigns/."}
    lines = [f"• *{r['name']}* · {'paused' if r['paused'] else 'active' if r['active'] else 'inactive'} · "
             f"{r['schedule']} · next {r['next_run_at'] or '-'} · {r['videos']} videos" for r in rows]
    return {"text": "\n".join(lines)}


# The words that are a subcommand rather than the start of a script.
SUBCOMMANDS: dict[str, Callable[[Any, dict, str], Awaitable[dict[str, Any]]]] = {
    "help": sub_help, "status": sub_status, "list": sub_list, "avatars": sub_avatars, "campaigns": sub_campaigns,
}


def register(app, command: str) -> None:
    app.command(command)(avatar_video)
