"""What a client needs to build a request: formats with their limits, templates, and how speech is timed.

The studio counts a script's spoken seconds as the user types; it takes the numbers from here,
so its estimate and the server's (spoken.estimate_seconds) cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from ..video_requests import SCRIPT_MAX_CHARS
from ..spoken import PARAGRAPH_PAUSE_SECONDS, WORDS_PER_SECOND
from .common import Answer, Endpoint, daemon_of
from .replies import Reply


class Format(Reply):
    name: str
    label: str
    width: int
    height: int
    aspect_ratio: str
    orientation: Literal["portrait", "landscape", "square"]
    voice_speed: float
    max_seconds: float
    deliverables: list[str]


class Speech(Reply):
    """Spoken length: words / (words_per_second * voice speed) + a pause per blank line, to 0.1 s."""

    words_per_second: float
    paragraph_pause_seconds: float


class FormatList(Reply):
    formats: list[Format]
    default_formats: list[str]
    speech: Speech
    script_max_chars: int


class TemplateBackground(Reply):
    type: str
    value: str
    value2: str


class Template(Reply):
    id: str
    name: str
    format: str
    captions: bool
    has_logo: bool = Field(description="the template puts its brand logo in a corner")
    logo_corner: str
    background: TemplateBackground


class TemplateList(Reply):
    templates: list[Template]
    default: str | None


async def list_formats(request: web.Request) -> web.Response:
    d = daemon_of(request)
    return web.json_response({
        "formats": [{"name": f.name, "label": f.label, "width": f.width, "height": f.height,
                     "aspect_ratio": f.aspect_ratio, "orientation": f.orientation, "voice_speed": f.voice_speed,
                     "max_seconds": f.max_seconds, "deliverables": list(f.deliverables)} for f in d.formats],
        "default_formats": d.settings.default_formats,
        "speech": {"words_per_second": WORDS_PER_SECOND, "paragraph_pause_seconds": PARAGRAPH_PAUSE_SECONDS},
        "script_max_chars": SCRIPT_MAX_CHARS,
    })


async def list_templates(request: web.Request) -> web.Response:
    d = daemon_of(request)
    return web.json_response({"templates": [
        {"id": t.id, "name": t.name, "format": t.format, "captions": t.captions,
         "has_logo": t.brand.logo is not None, "logo_corner": t.brand.logo_corner,
         "background": t.background.model_dump(mode="json", include={"type", "value", "value2"})}
        for t in d.settings.templates.values()], "default": d.settings.default_template})


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("GET", "/formats", list_formats, "Output formats with their limits, and how spoken length is "
                 "estimated", responses={200: Answer("OK", FormatList)}),
        Endpoint("GET", "/templates", list_templates, "Video templates (look, brand logo, captions)",
                 responses={200: Answer("OK", TemplateList)}),
    ]
