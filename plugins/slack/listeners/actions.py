"""Buttons under a finished or failed video: another format, another avatar, publish to…, retry."""

from __future__ import annotations

import re

from avatar_daemon import AvatarDaemonError

from .. import payloads

CHOICE = re.compile(r"([0-9]{1,18}):(.{1,200})")   # "<video id>:<format or avatar>", as finished_actions writes it
POST_CHOICE = re.compile(r"([0-9]{1,18}):([^:]{1,64}):(.{1,100})")  # "<video id>:<platform>:<account>"


async def _again(bot, body: dict, job_id: int, **change) -> None:
    clicked = payloads.read(payloads.Interaction, body, "button")
    if clicked is None:
        return
    user, team, channel = clicked.user.id, clicked.team_id, clicked.channel_id
    job = await bot.daemon.store.job(job_id)
    who = bot.caller(team, user)
    if job is None or not who.may_see(job) or job.research_job_id is None:
        await bot.client.chat_postEphemeral(channel=channel, user=user, text=f"No video {job_id} in your workspace.")
        return
    settings = {k: v for k, v in job.request.items() if k in ("voice_speed", "captions", "background", "brand_logo")}
    try:
        jobs = await bot.daemon.videos.from_research(
            job.research_job_id, who=who, avatar=change.get("avatar", job.avatar_id),
            format_name=change.get("format", job.format), renderer=job.renderer, template=job.template_id,
            settings=settings, title=job.title)
    except (AvatarDaemonError, PermissionError) as exc:
        await bot.client.chat_postEphemeral(channel=channel, user=user, text=f":x: {exc}")
        return
    for new in jobs:
        await bot.track(new, channel, team, user)


async def _choice(bot, body: dict, action: dict, field: str) -> tuple[int, str] | None:
    """(video id, name) from a menu under a finished video; a refusal naming the field otherwise.

    The name itself (a format, an avatar) is checked by the core's rules in from_research.
    """
    picked = payloads.read(payloads.Action, action, field)
    match = CHOICE.fullmatch(picked.selected_option.value) if picked and picked.selected_option else None
    if match:
        return int(match[1]), match[2]
    clicked = payloads.read(payloads.Interaction, body, "menu")
    if clicked is not None:
        await bot.client.chat_postEphemeral(channel=clicked.channel_id, user=clicked.user.id,
                                            text=f":x: {field}: not a choice this menu offers")
    return None


async def another_format(ack, body: dict, action: dict, context) -> None:
    await ack()
    bot = context["bot"]
    choice = await _choice(bot, body, action, "format")
    if choice:
        await _again(bot, body, choice[0], format=choice[1])


async def another_avatar(ack, body: dict, action: dict, context) -> None:
    await ack()
    bot = context["bot"]
    choice = await _choice(bot, body, action, "avatar")
    if choice:
        await _again(bot, body, choice[0], avatar=choice[1])  # the core refuses one above the user's tier


async def publish_to(ack, body: dict, action: dict, context) -> None:
    """Post the video to the account picked: the daemon's one way in, so a second pick finds the first post."""
    await ack()
    bot = context["bot"]
    clicked = payloads.read(payloads.Interaction, body, "menu")
    if clicked is None:
        return
    user, team, channel = clicked.user.id, clicked.team_id, clicked.channel_id
    picked = payloads.read(payloads.Action, action, "publish")
    match = POST_CHOICE.fullmatch(picked.selected_option.value) if picked and picked.selected_option else None
    if match is None:
        await bot.client.chat_postEphemeral(channel=channel, user=user,
                                            text=":x: publish: not a choice this menu offers")
        return
    job_id, platform, account = int(match[1]), match[2], match[3]
    job = await bot.daemon.store.job(job_id)
    if job is None or not bot.caller(team, user).may_see(job):
        await bot.client.chat_postEphemeral(channel=channel, user=user, text=f"No video {job_id} in your workspace.")
        return
    try:
        (row,) = await bot.daemon.publishing.request(job_id, [platform], accounts=[account], by=f"slack:{user}")
    except AvatarDaemonError as exc:
        await bot.client.chat_postEphemeral(channel=channel, user=user, text=f":x: {exc}")
        return
    await bot.show_post(row)  # the progress message lists it from now on, if this node shows that video
    await bot.client.chat_postEphemeral(channel=channel, user=user, text=_answer(row))


def _answer(row: dict) -> str:
    where = f"{row['platform']} ({row['account']})"
    if row["state"] == "published":
        return f":white_check_mark: Video {row['job_id']} is on {where} already: {row['url']}"
    if row["state"] in ("uploading", "processing"):
        return f":outbox_tray: Video {row['job_id']} is on its way to {where} ({row['state']})."
    return (f":hourglass_flowing_sand: Video {row['job_id']} is queued for {where}; the post's link comes "
            "in the thread once it is up.")


async def retry(ack, body: dict, action: dict, context) -> None:
    """The same video again, not a copy: the daemon's one retry path, for users of the video's workspace."""
    await ack()
    bot = context["bot"]
    user = body["user"]["id"]
    team = body["user"].get("team_id") or (body.get("team") or {}).get("id")
    channel = (body.get("channel") or {}).get("id")
    job_id = int(action["value"])
    msg = bot.messages.get(job_id)
    if msg is not None:
        msg.done = False  # its message ended with the failure: it follows the new try, edited in place
    try:
        job = await bot.daemon.jobs.retry(job_id, bot.caller(team, user))
    except PermissionError:
        await bot.client.chat_postEphemeral(channel=channel, user=user, text=f"No video {job_id} in your workspace.")
        return
    except AvatarDaemonError as exc:
        await bot.client.chat_postEphemeral(channel=channel, user=user, text=f":x: {exc}")
        return
    if msg is None:  # after a restart: its message is found again from the store, or posted anew
        await bot.track(job, channel, team, user)


async def download(ack) -> None:
    await ack()  # a link button: Slack opens the URL; it still tells us


def register(app) -> None:
    app.action("another_format")(another_format)
    app.action("another_avatar")(another_avatar)
    app.action("publish_to")(publish_to)
    app.action("retry")(retry)
    app.action("download")(download)
