"""The built-in output formats: short-form portrait, landscape and square, with 720p variants."""

from avatar_daemon import CaptionStyle, FormatSpec, hookimpl

PORTRAIT = dict(width=1080, height=1920, caption_style=CaptionStyle.karaoke, max_seconds=60)
FORMATS = [
    FormatSpec(name="tiktok", label="TikTok (portrait 9:16)", **PORTRAIT),
    FormatSpec(name="reels", label="Instagram Reels (portrait 9:16)", **{**PORTRAIT, "max_seconds": 90}),
    FormatSpec(name="shorts", label="YouTube Shorts (portrait 9:16)", **PORTRAIT),
    FormatSpec(name="portrait-720", label="Portrait 720p (9:16)", **{**PORTRAIT, "width": 720, "height": 1280}),
    FormatSpec(name="youtube", label="YouTube (landscape 16:9)", width=1920, height=1080,
               caption_style=CaptionStyle.subtitles, max_seconds=180),
    FormatSpec(name="landscape-720", label="Landscape 720p (16:9)", width=1280, height=720,
               caption_style=CaptionStyle.subtitles, max_seconds=180),
    FormatSpec(name="square", label="Square social (1:1)", width=1080, height=1080,
               caption_style=CaptionStyle.karaoke, max_seconds=60),
]


@hookimpl
def register_formats(register):
    for f in FORMATS:
        register(f)
