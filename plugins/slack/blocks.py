"""Block Kit: the modal, the progress message and the ephemeral answers, as plain dicts."""

from __future__ import annotations

import json
from typing import Any

MODAL = "avatar_video_modal"
FORMATS = [("tiktok", "TikTok / Reels (portrait)"), ("youtube", "YouTube (landscape)"), ("square", "Square")]
SPEEDS = ["0.8", "0.9", "1.0", "1.1", "1.2"]
SCRIPT_MAX = 3000
STATE_LABEL = {"queued": "Queued", "submitting": "Submitting", "rendering": "Rendering", "completed": "Done",
               "failed": "Failed", "timeout": "Timed out", "cancelled": "Cancelled"}
STATE_EMOJI = {"queued": ":hourglass_flowing_sand:", "submitting": ":outbox_tray:", "rendering": ":movie_camera:",
               "completed": ":white_check_mark:", "failed": ":x:", "timeout": ":alarm_clock:",
               "cancelled": ":no_entry_sign:"}


def text(t: str, kind: str = "plain_text") -> dict[str, Any]:
    return {"type": kind, "text": t} if kind == "mrkdwn" else {"type": kind, "text": t, "emoji": True}


def option(value: str, label: str) -> dict[str, Any]:
    return {"text": text(label[:75]), "value": value}


def script_hint(chars: int, seconds: float) -> str:
    return f"{chars:,} / {SCRIPT_MAX:,} characters · about {seconds:.0f} s spoken"


def avatar_label(avatar: dict) -> str:
    """Name, style, tier, and a badge for a talking photo (a portrait that speaks, not a presenter)."""
    badge = " · 📷 talking photo" if avatar.get("avatar_type") == "talking_photo" else ""
    return f"{avatar['name']} · {avatar['style']} · {avatar['tier']}{badge}"


def modal(avatars: list[dict], research: list[dict], templates: list[tuple[str, str]], metadata: dict[str, Any],
          hint: str | None = None) -> dict[str, Any]:
    """The seed's request form; `avatars` are only those the user's tier allows."""
    blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": "avatar", "label": text("Avatar"), "element": {
            "type": "static_select", "action_id": "value",
            "options": [option(a["id"], avatar_label(a)) for a in avatars][:100],
            **({"initial_option": option(avatars[0]["id"], avatar_label(avatars[0]))} if avatars else {})}},
    ]
    previews = [{"type": "image", "image_url": a["preview_image_url"], "alt_text": a["name"]}
                for a in avatars if a.get("preview_image_url")][:9]
    if previews:
        blocks.append({"type": "context", "block_id": "previews",
                       "elements": previews + [text("Your avatars", "mrkdwn")]})
    blocks += [
        {"type": "input", "block_id": "format", "label": text("Format"), "element": {
            "type": "radio_buttons", "action_id": "value", "options": [option(v, label) for v, label in FORMATS],
            "initial_option": option(*FORMATS[0])}},
        {"type": "input", "block_id": "speed", "label": text("Voice speed"), "element": {
            "type": "static_select", "action_id": "value", "options": [option(s, f"{s}x") for s in SPEEDS],
            "initial_option": option("1.0", "1.0x")}},
        {"type": "input", "block_id": "captions", "optional": True, "label": text("Captions"), "element": {
            "type": "checkboxes", "action_id": "value", "options": [option("on", "Burn in captions")],
            "initial_options": [option("on", "Burn in captions")]}},
    ]
    if templates:
        blocks.append({"type": "input", "block_id": "template", "optional": True, "label": text("Template"),
                       "element": {"type": "static_select", "action_id": "value",
                                   "options": [option(t, label) for t, label in templates][:100]}})
    blocks.append({"type": "input", "block_id": "script", "optional": True, "dispatch_action": True,
                   "label": text("Script"), "hint": text(hint or script_hint(0, 0)),
                   "element": {"type": "plain_text_input", "action_id": "script_input", "multiline": True,
                               "max_length": SCRIPT_MAX,
                               "dispatch_action_config": {"trigger_actions_on": ["on_character_entered"]},
                               "placeholder": text("What should the avatar say?")}})
    if research:
        blocks.append({"type": "input", "block_id": "research", "optional": True,
                       "label": text("…or turn recent research into a video"),
                       "element": {"type": "static_select", "action_id": "value", "options": [
                           option(str(r["id"]), f"#{r['id']} {r['source']}: {r['title']}") for r in research][:100]}})
    return {"type": "modal", "callback_id": MODAL, "title": text("New avatar video"), "submit": text("Make video"),
            "close": text("Cancel"), "private_metadata": json.dumps(metadata), "blocks": blocks}


def progress(job: dict[str, Any], state: str, percent: float | None, message: str) -> list[dict[str, Any]]:
    pct = f" {percent:.0f}%" if percent is not None and state == "rendering" else ""
    bar = ""
    if percent is not None and state == "rendering":
        filled = int(percent // 10)
        bar = "  `" + "█" * filled + "░" * (10 - filled) + "`"
    detail = f" · {message}" if message and message not in ("queued", "done") else ""
    return [
        {"type": "section", "text": text(f"*{job['title']}*", "mrkdwn")},
        {"type": "context", "elements": [text(
            f"{STATE_EMOJI.get(state, '')} {STATE_LABEL.get(state, state)}{pct}{bar}{detail}", "mrkdwn")]},
        {"type": "context", "elements": [text(
            f"video {job['id']} · {job['format']} · {job['avatar_id']} · {job['renderer']}", "mrkdwn")]},
    ]


def finished_actions(job: dict[str, Any], avatars: list[dict], download_url: str | None,
                     platforms: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """`platforms`: platform -> account names (Host.publishing.platforms()), offered as "Publish to…"."""
    elements: list[dict[str, Any]] = []
    if download_url:
        elements.append({"type": "button", "action_id": "download", "text": text("Download"), "url": download_url})
    targets = [(p, a) for p, accounts in (platforms or {}).items() for a in accounts]
    if targets:
        elements.append({"type": "static_select", "action_id": "publish_to", "placeholder": text("Publish to…"),
                         "options": [option(f"{job['id']}:{p}:{a}", f"{p} · {a}") for p, a in targets][:100]})
    elements.append({"type": "static_select", "action_id": "another_format", "placeholder": text("Another format"),
                     "options": [option(f"{job['id']}:{v}", label) for v, label in FORMATS if v != job["format"]]})
    others = [a for a in avatars if a["id"] != job["avatar_id"]]
    if others:
        elements.append({"type": "static_select", "action_id": "another_avatar", "placeholder": text("Another avatar"),
                         "options": [option(f"{job['id']}:{a['id']}", a["name"]) for a in others][:100]})
    return {"type": "actions", "block_id": "after", "elements": elements}


POST_LABEL = {"pending": "queued", "uploading": "uploading", "processing": "processing", "published": "published",
              "failed": "failed"}
POST_EMOJI = {"pending": ":hourglass_flowing_sand:", "uploading": ":outbox_tray:", "processing": ":gear:",
              "published": ":white_check_mark:", "failed": ":x:"}


def post_line(pub: dict[str, Any]) -> str:
    """One publication as the progress message shows it: where, its state, and the post once it is up."""
    state = pub.get("state", "")
    pct = f" {pub['percent']:.0f}%" if state == "uploading" and pub.get("percent") else ""
    tail = f" · <{pub['url']}|the post>" if pub.get("url") else ""
    if state == "failed" and pub.get("error"):
        tail = f" · {pub['error'][:200]}"
    return f"{POST_EMOJI.get(state, '')} {pub['platform']} ({pub['account']}): {POST_LABEL.get(state, state)}{pct}{tail}"


def posts(publications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The progress message's lines of publications (none: no block)."""
    if not publications:
        return []
    return [{"type": "context", "block_id": "posts", "elements": [
        text("\n".join(post_line(p) for p in publications[:20]), "mrkdwn")]}]


def failed_actions(job: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "block_id": "after", "elements": [
        {"type": "button", "action_id": "retry", "text": text("Retry"), "style": "primary", "value": str(job["id"])}]}


HELP = """*/avatar-video* makes short talking-avatar videos.
• `/avatar-video <script>`: a video of that text with your default avatar and format
• `/avatar-video`: a form to pick avatar, format, speed, captions and script (or recent research)
• `/avatar-video status <id>`: where a video is
• `/avatar-video list`: your recent videos
• `/avatar-video avatars`: the avatars you can use
• `/avatar-video campaigns [pause|resume|run NAME]`: scheduled campaigns
• `/avatar-video help`: this"""
