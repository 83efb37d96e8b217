"""The built-in local renderer: offline speech, a lip-synced 2D presenter, captions and an MP4.

Settings (daemon.yaml `plugins.settings.local`): `max_concurrency` (renders at once),
`preset` (x264 preset), `crf` (quality) and `threads` (encoder threads, 0 = auto).

Talking photos: a request's photo, or a profile with `avatar_type: talking_photo` and `photo:` (a
file in the assets folder), speaks with moving lips, jaw and eyelids; the face is found in the
photo by MediaPipe's face mesh, the optional `photos` extra (face_mesh.py), and a profile's
`mouth: {x, y, width}` places the mouth where it is not found or the extra is not installed. The
renderer checks a photo when its request arrives (ChecksPhotos), so a refusal comes before a job.
"""

from avatar_daemon import hookimpl

from .renderer import LocalRenderer


@hookimpl
def register_renderers(register, daemon):
    cfg = daemon.plugin_config("local")
    register(LocalRenderer(max_concurrency=int(cfg.get("max_concurrency", 1)), preset=cfg.get("preset", "veryfast"),
                           crf=int(cfg.get("crf", 23)), threads=int(cfg.get("threads", 0))))


@hookimpl
def register_checks(register):
    from .checks import LocalRendererChecks

    register(LocalRendererChecks())
