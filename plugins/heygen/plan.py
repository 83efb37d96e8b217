"""From our RenderRequest to the HeyGen request(s) that make it: no network, so a dry run is exact."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from pydantic import ValidationError

from avatar_daemon import Background, RenderError, RenderRequest

from . import bodies
from .settings import HeyGenSettings

SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


@dataclass
class Part:
    """One create call; `key` is its Idempotency-Key, so repeating it can never make a second video."""

    method: str
    path: str
    body: dict[str, Any]
    key: str


@dataclass
class Plan:
    parts: list[Part]
    api: Literal["v3", "studio", "template"]
    source_aspect: str                      # what HeyGen renders
    square: Literal["crop", "pad"] | None   # what we do to it locally, if anything
    text_chars: int
    estimated_seconds: float
    notes: list[str] = field(default_factory=list)

    def as_requests(self, base_url: str) -> list[dict[str, Any]]:
        return [{"method": p.method, "url": base_url.rstrip("/") + p.path, "body": p.body,
                 "headers": {"Idempotency-Key": p.key} if p.path.startswith("/v3/") else {}} for p in self.parts]


def split_script(text: str, limit: int) -> list[str]:
    """Chunks of at most `limit` characters, cut between sentences (or words in a giant sentence), never inside."""
    if len(text) <= limit:
        return [text]
    sentences: list[str] = []
    for paragraph in [p.strip() for p in text.split("\n\n") if p.strip()]:
        sentences.extend(s.strip() for s in SENTENCE_END.split(paragraph) if s.strip())
    pieces: list[str] = []
    for sentence in sentences:
        while len(sentence) > limit:  # one sentence longer than the limit: cut at the last space that fits
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        pieces.append(sentence)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 1 + len(piece) <= limit:
            chunks[-1] += " " + piece
        else:
            chunks.append(piece)
    return chunks


def resolution(width: int, height: int, cap: str) -> str:
    short = min(width, height)
    wanted = "4k" if short >= 2160 else "1080p" if short >= 1080 else "720p"
    order = ["720p", "1080p", "4k"]
    return order[min(order.index(wanted), order.index(cap))]


def idempotency_key(instance: str, job_id: int, part: int | None = None, retry: int = 0) -> str:
    """Our job id, scoped by the database it lives in (a fresh database reuses ids 1, 2, 3... within 24 h),
    and by the try: a restart within one try repeats the key (and HeyGen answers with the video it made),
    while a person's retry gets a new one (the old key would be answered with the old, failed video)."""
    key = f"avatar-daemon.{instance or 'x'}.job-{job_id}" + (f".retry-{retry}" if retry else "")
    return key if part is None else f"{key}.part-{part}"


AssetUrl = Callable[[str], str]


def background(bg: Background, asset_url: AssetUrl) -> bodies.Background:
    """HeyGen has colours, images and videos; a gradient becomes its first colour."""
    if bg.type in ("image", "video") and bg.path:
        url = bg.path if bg.path.startswith(("http://", "https://")) else asset_url(bg.path)
        return bodies.Background(type=bg.type, url=url, play_style="loop" if bg.type == "video" else None)
    return bodies.Background(type="color", value=bg.value)


def ids_for(request: RenderRequest) -> tuple[str, str]:
    avatar = request.avatar
    avatar_id = avatar.renderer_ids.get("heygen")
    voice_id = avatar.voice_ids.get("heygen")
    if not avatar_id or not voice_id:
        missing = " and ".join(n for n, v in (("renderer_ids.heygen", avatar_id), ("voice_ids.heygen", voice_id))
                               if not v)
        raise RenderError(f"avatar profile {avatar.id!r} has no HeyGen {missing} in avatars.yaml, "
                          "so HeyGen cannot render it (see `avatar-daemon avatars --sync`)")
    return avatar_id, voice_id


def make_plan(request: RenderRequest, cfg: HeyGenSettings, instance: str, asset_url: AssetUrl) -> Plan:
    """The requests for one job; RenderError naming the field when a documented HeyGen limit is broken."""
    try:
        return _make_plan(request, cfg, instance, asset_url)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise RenderError(f"HeyGen cannot take this video: {where}: {err['msg']}") from None


def _make_plan(request: RenderRequest, cfg: HeyGenSettings, instance: str, asset_url: AssetUrl) -> Plan:
    from avatar_daemon import estimate_seconds

    avatar_id, voice_id = ids_for(request)
    fmt = request.format
    text = request.script.text.strip()
    if not text:
        raise RenderError("the script is empty: there is nothing to say")
    chunks = split_script(text, cfg.text_limit)
    square = fmt.orientation == "square"
    studio = cfg.test_mode or (square and cfg.square == "studio") or (len(chunks) > 1 and cfg.long_scripts == "studio")
    if studio and len(chunks) > 50:
        raise RenderError(f"the script needs {len(chunks)} Studio scenes; HeyGen allows 50")
    title = request.script.title[:200]
    callback_id = idempotency_key(instance, request.job_id, retry=request.retry)
    bg = background(request.background, asset_url)
    burn = request.captions and fmt.caption_style.value != "none"
    estimated = estimate_seconds(text, request.voice_speed)
    notes: list[str] = []
    link = cfg.templates.get(request.template_id or "")
    if link:
        values = {"script": text, "title": title}
        body = bodies.TemplateGenerate(
            title=title, callback_id=callback_id, caption=burn, test=cfg.test_mode,
            dimension=bodies.Dimension(width=fmt.width, height=fmt.height),
            variables={name: bodies.TemplateText(name=name, properties={"content": values.get(src, src)})
                       for name, src in link.variables.items()}).wire()
        notes.append(f"made with HeyGen template {link.template_id} for our template {request.template_id!r}")
        return Plan([Part("POST", f"/v2/template/{link.template_id}/generate", body, callback_id)], "template",
                    f"{fmt.width}x{fmt.height}", None, len(text), estimated, notes)
    if studio:
        scene_bg = bg.model_copy(update={"fit": "cover"}) if bg.type in ("image", "video") else bg
        body = bodies.StudioGenerate(
            title=title, callback_id=callback_id, caption=burn,
            dimension=bodies.Dimension(width=fmt.width, height=fmt.height), test=cfg.test_mode or None,
            video_inputs=[bodies.StudioScene(
                character=bodies.StudioCharacter(avatar_id=avatar_id),
                voice=bodies.StudioVoice(voice_id=voice_id, input_text=chunk, speed=request.voice_speed,
                                         pitch=cfg.pitch),
                background=scene_bg) for chunk in chunks]).wire()
        if cfg.test_mode:
            notes.append("Studio test mode: watermarked, not charged")
        return Plan([Part("POST", "/v2/video/generate", body, callback_id)], "studio",
                    f"{fmt.width}x{fmt.height}", None, len(text), estimated, notes)
    aspect = "9:16" if fmt.height > fmt.width else "16:9"
    square_mode: Literal["crop", "pad"] | None = None
    if square:
        square_mode = "pad" if cfg.square == "pad" else "crop"
        notes.append(f"square: HeyGen renders 16:9 and we {square_mode} it to {fmt.width}x{fmt.height}")
    # a square crop would cut burned-in captions; the SRT carries them instead
    caption = bodies.Caption(style=cfg.caption_style if burn and not square else None)
    parts = []
    for i, chunk in enumerate(chunks):
        key = idempotency_key(instance, request.job_id, None if len(chunks) == 1 else i, request.retry)
        body = bodies.CreateVideo(
            avatar_id=avatar_id, title=title if len(chunks) == 1 else f"{title} ({i + 1}/{len(chunks)})",
            resolution=resolution(fmt.width, fmt.height, cfg.resolution), aspect_ratio=aspect, background=bg,
            callback_id=key, caption=caption, script=chunk, voice_id=voice_id,
            voice_settings=bodies.VoiceSettings(speed=request.voice_speed, pitch=cfg.pitch,
                                                locale=cfg.locale)).wire()
        parts.append(Part("POST", "/v3/videos", body, key))
    if len(chunks) > 1:
        notes.append(f"the script is over HeyGen's {cfg.text_limit}-character limit: {len(chunks)} videos, "
                     "split between sentences and joined here")
    return Plan(parts, "v3", aspect, square_mode, len(text), estimated, notes)
