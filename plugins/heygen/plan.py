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
    # (look id, engine) to check against the look's supported_api_engines before anything is sent
    engine_check: tuple[str, str] | None = None

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
AssetId = Callable[[str], str]


def background(bg: Background, asset_url: AssetUrl) -> bodies.Background:
    """HeyGen has colours, images and videos; a gradient becomes its first colour."""
    if bg.type in ("image", "video") and bg.path:
        url = bg.path if bg.path.startswith(("http://", "https://")) else asset_url(bg.path)
        return bodies.Background(type=bg.type, url=url, play_style="loop" if bg.type == "video" else None)
    return bodies.Background(type="color", value=bg.value)


@dataclass
class Subject:
    """Who speaks: a stock or trained look, a photo-avatar look, or a portrait uploaded as an image."""

    kind: Literal["avatar", "photo_look", "image"]
    voice_id: str
    avatar_id: str | None = None
    photo: str | None = None      # the local file a `type: image` video animates
    engine: str = "avatar_iv"
    expressiveness: str | None = None
    motion_prompt: str | None = None

    @property
    def photo_like(self) -> bool:
        return self.kind != "avatar"


def photo_path(request: RenderRequest) -> str | None:
    """The local portrait this job uploads and animates, if it is an image video."""
    if request.talking_photo:
        return str(request.talking_photo)
    avatar = request.avatar
    if avatar.avatar_type == "talking_photo" and not avatar.renderer_ids.get("heygen") and avatar.photo:
        return avatar.photo
    return None


def subject_for(request: RenderRequest, template: Any, notes: list[str]) -> Subject:
    """The profile's look, or the request's or profile's photo; engine and motion from the template, else
    the profile. A photo sent with the request wins over the profile's look, as on the local renderer."""
    avatar = request.avatar
    motion = {n: (getattr(template, n, None) if template else None) or getattr(avatar, n)
              for n in ("engine", "expressiveness", "motion_prompt")}
    motion["engine"] = motion["engine"] or "avatar_iv"
    photo = photo_path(request)
    if photo or avatar.avatar_type == "talking_photo":
        voice_id = avatar.voice_ids.get("heygen")
        if not voice_id:
            raise RenderError(f"avatar profile {avatar.id!r} has no HeyGen voice_ids.heygen in avatars.yaml, so "
                              "HeyGen cannot make its talking photo speak")
        if photo:
            if motion["engine"] == "avatar_v":
                raise RenderError("engine avatar_v cannot animate an uploaded photo (HeyGen's Avatar V takes "
                                  "avatar looks only): use avatar_iv, or a profile with a photo-avatar look")
            return Subject("image", voice_id, photo=photo, **motion)
        return Subject("photo_look", voice_id, avatar_id=avatar.renderer_ids["heygen"], **motion)
    avatar_id, voice_id = ids_for(request)
    dropped = [n for n in ("expressiveness", "motion_prompt") if motion[n]]
    if dropped:
        notes.append(f"{' and '.join(dropped)} left out: HeyGen applies them to talking photos only, and "
                     f"{avatar.id!r} is an avatar")
    return Subject("avatar", voice_id, avatar_id=avatar_id, engine=motion["engine"])


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


def make_plan(request: RenderRequest, cfg: HeyGenSettings, instance: str, asset_url: AssetUrl,
              asset_id: AssetId = lambda path: f"<upload of {path}>", template: Any = None) -> Plan:
    """The requests for one job; RenderError naming the field when a documented HeyGen limit is broken."""
    try:
        return _make_plan(request, cfg, instance, asset_url, asset_id, template)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise RenderError(f"HeyGen cannot take this video: {where}: {err['msg']}") from None


def _make_plan(request: RenderRequest, cfg: HeyGenSettings, instance: str, asset_url: AssetUrl,
               asset_id: AssetId, template: Any) -> Plan:
    from avatar_daemon import estimate_seconds

    notes: list[str] = []
    who = subject_for(request, template, notes)
    avatar_id, voice_id = who.avatar_id, who.voice_id
    fmt = request.format
    text = request.script.text.strip()
    if not text:
        raise RenderError("the script is empty: there is nothing to say")
    chunks = split_script(text, cfg.text_limit)
    square = fmt.orientation == "square"
    studio = cfg.test_mode or (square and cfg.square == "studio") or (len(chunks) > 1 and cfg.long_scripts == "studio")
    if studio and who.photo_like:
        # Studio (v2) refuses new photo avatars ("use Avatar IV or Avatar V"): talking photos are v3's.
        if cfg.test_mode:
            raise RenderError("HeyGen's test mode is the Studio API, which cannot render talking photos: turn "
                              "heygen.test_mode off, or pick an avatar profile")
        studio = False
        notes.append("a talking photo renders through v3 (Studio cannot), so square videos are cropped and long "
                     "scripts split")
    if studio and len(chunks) > 50:
        raise RenderError(f"the script needs {len(chunks)} Studio scenes; HeyGen allows 50")
    title = request.script.title[:200]
    callback_id = idempotency_key(instance, request.job_id, retry=request.retry)
    bg = background(request.background, asset_url)
    burn = request.captions and fmt.caption_style.value != "none"
    estimated = estimate_seconds(text, request.voice_speed)
    link = cfg.templates.get(request.template_id or "")
    if link and who.photo_like:
        notes.append(f"HeyGen template {link.template_id} not used: it has its own presenter, and this video is "
                     "a talking photo")
        link = None
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
        if who.engine != "avatar_iv":
            notes.append(f"engine {who.engine} not used: the Studio API renders with its own engine")
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
    subject: dict[str, Any] = {"type": "image" if who.kind == "image" else "avatar",
                               "engine": bodies.Engine(type=who.engine)}
    if who.kind == "image":
        subject["image"] = bodies.AssetInput(type="asset_id", asset_id=asset_id(who.photo or ""))
    else:
        subject["avatar_id"] = avatar_id
    if who.photo_like:
        subject.update(expressiveness=who.expressiveness, motion_prompt=who.motion_prompt)
    parts = []
    for i, chunk in enumerate(chunks):
        key = idempotency_key(instance, request.job_id, None if len(chunks) == 1 else i, request.retry)
        body = bodies.CreateVideo(
            **subject, title=title if len(chunks) == 1 else f"{title} ({i + 1}/{len(chunks)})",
            resolution=resolution(fmt.width, fmt.height, cfg.resolution), aspect_ratio=aspect, background=bg,
            callback_id=key, caption=caption, script=chunk, voice_id=voice_id,
            voice_settings=bodies.VoiceSettings(speed=request.voice_speed, pitch=cfg.pitch,
                                                locale=cfg.locale)).wire()
        parts.append(Part("POST", "/v3/videos", body, key))
    if len(chunks) > 1:
        notes.append(f"the script is over HeyGen's {cfg.text_limit}-character limit: {len(chunks)} videos, "
                     "split between sentences and joined here")
    check = (avatar_id, who.engine) if who.engine != "avatar_iv" and avatar_id else None
    return Plan(parts, "v3", aspect, square_mode, len(text), estimated, notes, check)
