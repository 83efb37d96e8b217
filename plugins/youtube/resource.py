"""The `video` resource sent when a session starts: snippet and status from the video and its options.

YouTube refuses a title over 100 characters, a description over 5000 bytes and either with
`<` or `>` (invalidTitle, invalidDescription); better to post a shortened text than to fail
an unattended post, so they are cut here at a word and the angle brackets replaced.
"""

from __future__ import annotations

from typing import Any

from avatar_daemon import PublishError, PublishOptions, PublishVideo

TITLE_CHARS = 100
DESCRIPTION_BYTES = 5000
TAGS_CHARS = 500
_ANGLES = str.maketrans({"<": "‹", ">": "›"})


def video_resource(video: PublishVideo, options: PublishOptions, *, synthetic: bool,
                   category: str | None) -> dict[str, Any]:
    title = _cut(" ".join(video.title.translate(_ANGLES).split()), TITLE_CHARS)
    if not title:
        raise PublishError(f"video {video.job_id} has no title, and YouTube requires one")
    hashtags = list(dict.fromkeys("#" + t.strip().lstrip("#") for t in video.hashtags if t.strip().lstrip("#")))
    # The hashtags close the description (YouTube shows the first three above the title); a long
    # description is shortened to keep them.
    tail = " ".join(hashtags)
    room = DESCRIPTION_BYTES - (len(tail.encode()) + 2 if tail else 0)
    description = _cut(video.description.translate(_ANGLES).strip(), max(0, room), in_bytes=True)
    description = _cut("\n\n".join(part for part in (description, tail) if part), DESCRIPTION_BYTES, in_bytes=True)
    snippet: dict[str, Any] = {"title": title, "description": description}
    tags = _tags([t[1:] for t in hashtags])
    if tags:
        snippet["tags"] = tags
    category = options.category or category
    if category:
        snippet["categoryId"] = str(category)
    status: dict[str, Any] = {
        "privacyStatus": options.privacy,
        # Always sent: left unset, YouTube Studio holds the video until someone answers by hand.
        "selfDeclaredMadeForKids": options.made_for_kids,
        "containsSyntheticMedia": bool(options.extra.get("contains_synthetic_media", synthetic)),
    }
    return {"snippet": snippet, "status": status}


def _cut(text: str, limit: int, *, in_bytes: bool = False) -> str:
    """`text` within `limit` characters (or UTF-8 bytes), cut at a word with an ellipsis when it is longer."""
    size = (lambda s: len(s.encode())) if in_bytes else len
    if size(text) <= limit:
        return text
    room = limit - size("…")
    if room <= 0:
        return ""
    cut = text.encode()[:room].decode(errors="ignore") if in_bytes else text[:room]
    if " " in cut.strip() and not text[len(cut):len(cut) + 1].isspace():
        cut = cut.rsplit(None, 1)[0]  # the last word was cut through: leave it out
    return cut.rstrip(" ,.;:-\n") + "…"


def _tags(tags: list[str]) -> list[str]:
    """As many tags as fit YouTube's 500 characters (counted with the commas between them)."""
    kept: list[str] = []
    used = 0
    for tag in tags:
        cost = len(tag) + (1 if kept else 0)
        if used + cost > TAGS_CHARS:
            break
        kept.append(tag)
        used += cost
    return kept
