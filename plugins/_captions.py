"""The one caption the social publishers build from a video's text: title, description, then hashtags."""

from __future__ import annotations


def caption(title: str, description: str, hashtags: list[str], limit: int) -> str:
    """Paragraphs of title and description, the hashtags last, cut to ``limit`` characters with an ellipsis
    (TikTok and Instagram both cap a caption at 2200)."""
    tags = " ".join(t if t.startswith("#") else f"#{t}" for t in hashtags if t.strip("#"))
    text = "\n\n".join(part for part in (title.strip(), description.strip(), tags) if part)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
