"""The scene: background, presenter, title, logo and captions laid out for a format, drawn per frame.

Everything that does not move is blended into a base frame once; each frame copies
the base and draws over it only what moves: the shoulders at the height of the breath, a hand
while it gestures, the head (moved and turned to a fraction of a pixel) and the caption.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageOps

from avatar_daemon import Background, Brand, CaptionLook, CaptionStyle, FormatSpec, RenderError, Research

from .captions import Cue, font, render_caption
from .cards import CardCue, card_image, plan, slide
from .labels import part_layer
from .photo import TalkingPhoto
from .presenter import BROWS, PresenterArtist
from .tts import Word
from .visemes import SHAPES
from .yuv import Frame, Layer, Puppet, hex_rgb

TITLE_SECONDS = 3.5
# The presenter's idle motion, in hundredths of a head width: the sways' amplitudes, the slow bob,
# the nod at full voice and the breath.
SWAY = (2.2, 1.0)
BOB, NOD, BREATH = 1.4, 1.6, 1.2
BREATH_LEVELS = 12   # heights of the shoulders drawn: steps of a tenth of the breath, under half a pixel
BREATH_PERIOD = 4.2  # seconds: a calm speaker's breathing
# The head's tilt, in degrees: a slow drift, and a lean into each new sentence.
TILT, SENTENCE_TILT = 1.1, 1.4
# A hand gesture: how long it takes, how far apart two can be, and the share of emphatic words that get one.
GESTURE_SECONDS, GESTURE_GAP, GESTURE_SHARE = 1.5, 4.0, 0.6


@dataclass
class Layout:
    head_width: int
    neck: tuple[int, int]        # where the neck meets the body, in frame pixels
    caption_y: int
    caption_width: int
    caption_size: int
    title_y: int


def layout_for(fmt: FormatSpec) -> Layout:
    """Framed like a person on camera: the head in the upper part of the frame, the shoulders
    running off its bottom edge (and, in portrait, its sides)."""
    w, h = fmt.width, fmt.height
    if fmt.orientation == "portrait":
        # the title is a lower third: under the chin, clear of the head however it moves
        return Layout(int(w * 0.4), (w // 2, int(h * 0.42)), int(h * 0.66), int(w * 0.9), int(w * 0.075),
                      int(h * 0.42))
    if fmt.orientation == "square":
        return Layout(int(w * 0.3), (w // 2, int(h * 0.54)), int(h * 0.7), int(w * 0.9), int(w * 0.065),
                      int(h * 0.04))
    return Layout(int(h * 0.32), (w // 2, int(h * 0.58)), int(h * 0.8), int(w * 0.8), int(h * 0.05),
                  int(h * 0.04))


def background_image(bg: Background, size: tuple[int, int]) -> Image.Image:
    w, h = size
    if bg.type == "color":
        return Image.new("RGB", size, hex_rgb(bg.value))
    if bg.type == "gradient":
        top, bottom = np.array(hex_rgb(bg.value), np.float32), np.array(hex_rgb(bg.value2), np.float32)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        rows = top * (1 - t) + bottom * t
        return Image.fromarray(np.broadcast_to(rows, (h, w, 3)).astype(np.uint8))
    if bg.type == "image":
        path = _existing(bg.path, "background image")
        try:
            with Image.open(path) as img:
                return ImageOps.fit(img.convert("RGB"), size)
        except (OSError, ValueError) as exc:
            raise RenderError(f"background image {path} cannot be read: {exc}") from None
    raise RenderError(f"background type {bg.type!r} is drawn per frame, not as an image")


def _patch(img: Image.Image) -> tuple[int, int, Image.Image] | None:
    """A patch the size of its picture as (x, y, the part that is not transparent), on even pixels."""
    box = img.getchannel("A").getbbox()
    if box is None:
        return None
    x0, y0 = box[0] // 2 * 2, box[1] // 2 * 2
    return x0, y0, img.crop((x0, y0, (box[2] + 1) // 2 * 2, (box[3] + 1) // 2 * 2))


def _existing(path: str | None, what: str) -> Path:
    if not path:
        raise RenderError(f"the {what} has no path")
    p = Path(path).expanduser()
    if not p.is_file():
        raise RenderError(f"the {what} {p} does not exist")
    return p


class VideoBackground:
    """A looping background clip, decoded and scaled to yuv420p frame by frame."""

    def __init__(self, path: str | None, fmt: FormatSpec):
        self.path = _existing(path, "background video")
        self.size = (fmt.width, fmt.height)
        self._open()
        if next(self._iter, None) is None:
            raise RenderError(f"background video {self.path} has no frames")
        self._open()

    def _open(self) -> None:
        try:
            self.container = av.open(str(self.path))
            stream = self.container.streams.video[0]
            stream.thread_type = "AUTO"
        except (av.FFmpegError, IndexError) as exc:
            raise RenderError(f"background video {self.path} cannot be decoded: {exc}") from None
        self._iter = self._frames()

    def _frames(self):
        for frame in self.container.decode(video=0):
            yield frame.reformat(width=self.size[0], height=self.size[1], format="yuv420p").to_ndarray()

    def next_into(self, frame: Frame) -> None:
        buf = next(self._iter, None)
        if buf is None:  # loop
            self.container.close()
            self._open()
            buf = next(self._iter)
        frame.load_packed(buf)

    def close(self) -> None:
        self.container.close()


def title_banner(title: str, width: int, size: int, brand: Brand) -> Image.Image:
    fnt = font(size, brand.font)
    words, lines, line = title.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if line and fnt.getlength(trial) > width * 0.82:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    lines = lines[:3]
    pad = size // 2
    h = len(lines) * int(size * 1.25) + pad * 2
    img = Image.new("RGBA", (width, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    box_w = max(fnt.getlength(ln) for ln in lines) + pad * 2
    x0 = (width - box_w) / 2
    d.rounded_rectangle([x0, 0, x0 + box_w, h], radius=pad, fill=(0, 0, 0, 170))
    d.rectangle([x0 + pad, h - pad // 2, x0 + box_w - pad, h - pad // 3], fill=hex_rgb(brand.primary) + (255,))
    for i, ln in enumerate(lines):
        d.text(((width - fnt.getlength(ln)) / 2, pad + i * int(size * 1.25)), ln, font=fnt,
               fill=hex_rgb(brand.text) + (255,))
    return img


def logo_layer(brand: Brand, fmt: FormatSpec) -> tuple[Layer, tuple[int, int]] | None:
    if not brand.logo:
        return None
    path = _existing(brand.logo, "brand logo")
    try:
        with Image.open(path) as img:
            logo = img.convert("RGBA")
    except OSError as exc:
        raise RenderError(f"brand logo {path} cannot be read: {exc}") from None
    side = int(min(fmt.width, fmt.height) * 0.14)
    logo.thumbnail((side, side))
    m = int(min(fmt.width, fmt.height) * 0.04)
    x = m if "left" in brand.logo_corner else fmt.width - logo.width - m
    y = m if "top" in brand.logo_corner else fmt.height - logo.height - m
    return Layer(logo), (x, y)


@dataclass
class PhotoLayers:
    """A talking photo as one sprite, with patches laid over it per mouth shape and eyelid state."""

    talking: TalkingPhoto
    photo: Puppet
    size: tuple[int, int]


@dataclass
class Stage:
    """Where the presenter stands and where a research card goes while it is up."""

    head_width: int
    neck: tuple[int, int]
    caption_y: int
    card: tuple[int, int, int] | None = None   # x, y, width of a card
    card_from: tuple[int, int] = (0, 0)        # where a card slides in from, relative to its place


def card_stage(fmt: FormatSpec) -> Stage:
    """Portrait: the card takes the top, the presenter steps back to a smaller frame below it.
    Landscape and square: presenter and card side by side."""
    w, h = fmt.width, fmt.height
    if fmt.orientation == "portrait":
        return Stage(int(w * 0.3), (w // 2, int(h * 0.86)), int(h * 0.47), (int(w * 0.05), int(h * 0.08), int(w * 0.9)),
                     (0, -int(h * 0.5)))
    if fmt.orientation == "square":
        return Stage(int(w * 0.24), (int(w * 0.26), int(h * 0.6)), int(h * 0.74),
                     (int(w * 0.5), int(h * 0.12), int(w * 0.46)), (int(w * 0.55), 0))
    return Stage(int(h * 0.3), (int(w * 0.26), int(h * 0.58)), int(h * 0.8),
                 (int(w * 0.5), int(h * 0.12), int(w * 0.44)), (int(w * 0.5), 0))


class Rig:
    """The presenter drawn for one stage: the still part (background, body, logo) composed once
    into a base frame, the moving sprites kept apart."""

    def __init__(self, stage: Stage, fmt: FormatSpec, artist: PresenterArtist | None, background_frame: Frame | None,
                 extra: list[tuple[Layer, tuple[int, int]]]):
        self.stage = stage
        self.static: list[tuple[Layer, tuple[int, int]]] = []
        if artist is not None:
            unit = stage.head_width / 100
            sprites = artist.sprites(fmt.height - stage.neck[1], unit * BREATH, BREATH_LEVELS)
            self.head = Puppet(sprites.head, {**sprites.eyes, **sprites.mouths})
            self.neck_offset, self.pivot = sprites.neck_offset, sprites.pivot
            self.body_x = stage.neck[0] - sprites.body.width // 2
            self.breaths = [Layer(b) for b in sprites.breaths]
            self.breath_y = stage.neck[1] - sprites.breath_pad
            hand = sprites.hand  # a left hand: on the viewer's right; mirrored, the right one
            self.hands = {1: Puppet(hand), -1: Puppet(hand.transpose(Image.Transpose.FLIP_LEFT_RIGHT))}
            self.hand_size = hand.size
            self.static.append((Layer(sprites.body), (self.body_x, stage.neck[1])))
        self.static += extra
        self.base = background_frame.copy() if background_frame is not None else None
        if self.base is not None:
            for layer, (x, y) in self.static:
                layer.blend(self.base, x, y)
            self.static = []


def _smooth(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def emphasis(words: list[Word], phonemes: list[tuple[str, float, float]]) -> list[bool]:
    """Which words a speaker leans on: figures, exclamations, and words whose stressed vowel
    (after the voice's primary stress mark) is held clearly longer than this speech's usual one.
    Without stress marks (a narration), long words stand in."""
    held: list[float | None] = []
    k = 0
    marks = [i for i, (p, _, _) in enumerate(phonemes) if p == "ˈ"]
    for w in words:
        length = None
        while k < len(marks) and phonemes[marks[k]][1] < w.start - 0.01:
            k += 1
        j = k
        while j < len(marks) and phonemes[marks[j]][1] <= w.end:
            nxt = marks[j] + 1
            if nxt < len(phonemes):
                length = max(length or 0.0, phonemes[nxt][2] - phonemes[nxt][1])
            j += 1
        held.append(length)
    # "usual" is the sentence's own: speech arrives a sentence at a time, and a word's emphasis
    # must not change when later sentences come in
    starts = [i for i, s in enumerate(sentence_starts(words)) if s] + [len(words)]
    out = []
    for a, b in zip(starts, starts[1:]):
        known = [h for h in held[a:b] if h is not None]
        usual = float(np.median(known)) if known else None
        for w, h in zip(words[a:b], held[a:b]):
            core = w.text.strip(".,;:!?\"'()")
            stressed = (h is not None and h >= usual * 1.45) if usual is not None else len(core) >= 9
            out.append(any(c.isdigit() for c in core) or w.text.endswith("!") or stressed)
    return out


def sentence_starts(words: list[Word]) -> list[bool]:
    return [i == 0 or words[i - 1].text.rstrip("\"')").endswith((".", "!", "?")) for i in range(len(words))]


class Scene:
    def __init__(self, fmt: FormatSpec, artist: PresenterArtist | None, photo: Path | None, title: str,
                 captions: bool, title_card: bool, background: Background, brand: Brand,
                 seed: int, research: Research | None = None, cards: bool = True,
                 look: CaptionLook | None = None, mouth=None, label: str | None = None):
        self.fmt = fmt
        self.layout = layout_for(fmt)
        self.captions = captions and fmt.caption_style != CaptionStyle.none
        self.cues: list[Cue] = []
        self.brand = brand
        self.look = look or CaptionLook()
        self.rng = random.Random(seed)
        self.seed = seed
        lay = self.layout
        self.video_bg = VideoBackground(background.path, fmt) if background.type == "video" else None
        backdrop = None if self.video_bg else Frame.from_image(background_image(background, (fmt.width, fmt.height)))
        self.photo = self._photo_layers(photo, mouth) if photo is not None else None
        logo = logo_layer(brand, fmt)
        extra = [logo] if logo else []
        if label:  # "Part 2 of 3": up all the time, so drawn into the base frame once
            extra.append(part_layer(label, fmt, brand))
        drawn = artist if self.photo is None else None
        self.rig = Rig(Stage(lay.head_width, lay.neck, lay.caption_y), fmt, drawn, backdrop, extra)
        self.research = research if cards and research is not None and research.insights else None
        self.card_rig = None
        if self.research is not None:
            stage = card_stage(fmt)
            small = PresenterArtist(artist.a, stage.head_width) if drawn is not None else None
            self.card_rig = Rig(stage, fmt, small, backdrop, extra) if drawn is not None else Rig(
                Stage(lay.head_width, lay.neck, stage.caption_y, stage.card, stage.card_from), fmt, None, backdrop, extra)
        self.card_cues: list[CardCue] = []
        self._cards: dict[int, Layer] = {}
        self.title = Layer(title_banner(title, fmt.width, int(lay.caption_size * 0.8), brand)) if title_card else None
        self.title_y = lay.title_y
        if self.photo is not None and fmt.orientation == "portrait":
            self.title_y = int(fmt.height * 0.035)  # a photo runs on below the chin: the title goes over its top
        self._captions: dict[tuple[int, int | None], Layer] = {}
        self.eye_state = self._blink_schedule()
        self.gaze = self._gaze_schedule()
        self.brows: dict[int, float] = {}
        self.lean: dict[int, float] = {}     # frame -> degrees of tilt into a new sentence
        self.gestures: list[tuple[int, int]] = []  # (first frame, side) of each hand gesture
        self.drift = [self.rng.uniform(0, 2 * math.pi) for _ in range(4)]  # phases of the slow motions

    def use_cues(self, cues: list[Cue]) -> None:
        """Captions are timed by the speech, which is made while the scene is being drawn."""
        self.cues = cues if self.captions else []

    def use_words(self, words: list[Word], phonemes: list[tuple[str, float, float]] = ()) -> None:
        """Brows lift at the start of each sentence and on emphatic words, easing up and down over a
        few frames; the head leans into each sentence; now and then a hand rises on an emphatic word."""
        fps = self.fmt.fps
        brows: dict[int, float] = {}
        lean: dict[int, float] = {}
        gestures: list[tuple[int, int]] = []
        rng = random.Random(self.seed)  # the same draws for the same words, however many batches
        last_gesture = -GESTURE_GAP
        for i, (w, starts, stressed) in enumerate(zip(words, sentence_starts(words), emphasis(words, list(phonemes)))):
            side, chance, hand = rng.choice((-1, 1)), rng.random(), rng.choice((-1, 1))  # drawn for every word
            if starts:
                a = int(w.start * fps)
                n = int(1.6 * fps)
                for f in range(a - 4, a + n):
                    k = (f - a + 4) / n
                    lean[f] = side * SENTENCE_TILT * math.sin(math.pi * min(1.0, max(0.0, k)))
            if stressed and i > 0 and w.start - last_gesture >= GESTURE_GAP and chance < GESTURE_SHARE:
                gestures.append((int((w.start - 0.3) * fps), hand))
                last_gesture = w.start
            if not (starts or stressed):
                continue
            a, b = int(w.start * fps), int(max(w.end, w.start + 0.4) * fps)
            for f in range(a - 2, b + 3):
                ramp = min(1.0, (f - a + 3) / 3, (b + 3 - f) / 3)
                brows[f] = max(brows.get(f, 0.0), ramp)
        self.brows, self.lean, self.gestures = brows, lean, gestures
        if self.research is not None:
            self.card_cues = plan(self.research, words)

    def _card(self, insight: int) -> Layer:
        layer = self._cards.get(insight)
        if layer is None:
            stage = self.card_rig.stage
            img = card_image(self.research, self.research.insights[insight], stage.card[2], self.brand.font)
            layer = self._cards[insight] = Layer(img)
        return layer

    def _gaze_schedule(self) -> dict[int, int]:
        """Mostly at the camera; now and then a glance aside for a moment, as people do while thinking."""
        fps = self.fmt.fps
        frames, t = {}, self.rng.uniform(2.0, 4.0)
        while t < 3600:
            length = self.rng.uniform(0.4, 1.1)
            side = self.rng.choice((-1, 1))
            frames.update({f: side for f in range(int(t * fps), int((t + length) * fps))})
            t += length + self.rng.uniform(2.5, 6.0)
        return frames

    def _photo_layers(self, photo: Path, mouth) -> "PhotoLayers":
        """Talking photo: the portrait sways and nods with the voice, its lips and eyelids move."""
        path = _existing(str(photo), "talking photo")
        side = int(min(self.fmt.width, self.fmt.height) * 0.72) // 2 * 2
        talking = TalkingPhoto(path, (side, int(side * 1.2) // 2 * 2), mouth)
        mask = Image.new("L", talking.image.size, 0)
        ImageDraw.Draw(mask).rounded_rectangle([0, 0, *talking.image.size], radius=side // 12, fill=255)
        img = talking.image.convert("RGBA")
        img.putalpha(mask)
        patches = {**{("mouth", s): _patch(p) for s, p in talking.mouths.items()},
                   **{("eyes", s): _patch(p) for s, p in talking.eyes.items()}}
        return PhotoLayers(talking, Puppet(img, {k: v for k, v in patches.items() if v}, replace=False), img.size)

    def _blink_schedule(self) -> dict[int, str]:
        """Frames with half or closed eyes: a blink every 2-6 s, sometimes a double blink."""
        fps = self.fmt.fps
        frames, t = {}, self.rng.uniform(0.8, 2.5)
        while t < 3600:
            f = int(t * fps)
            frames.update({f: "half", f + 1: "closed", f + 2: "closed", f + 3: "half"})
            if self.rng.random() < 0.12:
                frames.update({f + 6: "half", f + 7: "closed", f + 8: "half"})
            t += self.rng.uniform(2.0, 6.0)
        return frames

    def poses_for_a_still(self, index: int) -> bool:
        """Whether frame `index` makes a thumbnail: eyes open and on the camera. A still taken at a
        fixed moment caught some presenters mid-blink, looking half asleep on every list it was shown in."""
        return self.eye_state.get(index, "open") == "open" and not self.gaze.get(index, 0)

    def caption_layers(self, cue_index: int, active: int | None) -> list[Layer]:
        """The phrase, then (karaoke) the spoken word drawn over it in the highlight colour."""
        keys = [(cue_index, None)]
        if active is not None and self.fmt.caption_style == CaptionStyle.karaoke:
            keys.append((cue_index, active))
        return [self._caption(key) for key in keys]

    def _caption(self, key: tuple[int, int | None]) -> Layer:
        layer = self._captions.get(key)
        if layer is None:
            if len(self._captions) > 64:
                self._captions.clear()
            lay, look = self.layout, self.look
            text, active = look.colour or self.brand.text, look.active_colour or self.brand.primary
            boxed = key[1] is not None and look.active == "box"
            colour = text if key[1] is None or boxed else active
            img = render_caption(self.cues[key[0]], self.fmt.caption_style, lay.caption_width,
                                 int(lay.caption_size * look.size), hex_rgb(colour), self.brand.font, only=key[1],
                                 upper=look.upper, box=hex_rgb(active) if boxed else None,
                                 scale=1.2 if key[1] is not None and look.active == "scale" else 1.0)
            layer = self._captions[key] = Layer(img)
        return layer

    def pose(self, index: int, level: float, unit: float) -> tuple[float, float, float, float]:
        """The presenter at frame `index`: the head's offset (x, y, pixels) and tilt (radians), and how
        far into a breath (0..1). Two slow sways, a bob, a nod that follows the voice, the breath;
        the tilt drifts slowly and leans into each sentence."""
        t = index / self.fmt.fps
        p = self.drift
        breath = 0.5 - 0.5 * math.cos(t * 2 * math.pi / BREATH_PERIOD)
        dx = unit * (SWAY[0] * math.sin(t * 2 * math.pi / 5.3 + p[0]) + SWAY[1] * math.sin(t * 2 * math.pi / 2.1 + p[1]))
        dy = unit * (BOB * math.sin(t * 2 * math.pi / 3.7 + p[2]) + NOD * level - BREATH * breath)
        tilt = TILT * (0.65 * math.sin(t * 2 * math.pi / 6.7 + p[3]) + 0.35 * math.sin(t * 2 * math.pi / 3.1 + p[0]))
        return dx, dy, math.radians(tilt + self.lean.get(index, 0.0)), breath

    def hand_pose(self, index: int) -> tuple[int, float, float] | None:
        """A gesture under way at frame `index`: its side, how far raised (0..1) and its swing (radians)."""
        fps = self.fmt.fps
        for start, side in self.gestures:
            k = (index - start) / (GESTURE_SECONDS * fps)
            if 0 <= k < 1:
                raised = _smooth(k / 0.25) * (1 - _smooth((k - 0.7) / 0.3))
                # turned in towards the chest: turned out, about an elbow below the frame, the fingers
                # of a portrait presenter's hand reached the frame's edge
                swing = -side * math.radians(7 * raised + 3 * math.sin(k * 2 * math.pi * 2))
                return side, raised, swing
        return None

    def draw(self, frame: Frame, index: int, mouth: int, level: float, cue: int | None, word: int | None) -> None:
        """Draw frame `index` into `frame`, with mouth shape index `mouth` and voice level 0..1."""
        fmt = self.fmt
        t = index / fmt.fps
        card = next(((c, k) for c in self.card_cues if (k := slide(t, c)) is not None), None)
        rig = self.card_rig if card is not None else self.rig
        stage = rig.stage
        if self.video_bg:
            self.video_bg.next_into(frame)
            for layer, (x, y) in rig.static:
                layer.blend(frame, x, y)
        else:
            rig.base.restore(frame)
        unit = stage.head_width / 100
        dx, dy, tilt, breath = self.pose(index, level, unit)
        eyes = self.eye_state.get(index, "open")
        if self.photo is not None:
            p = self.photo
            w, h = p.size
            # a photo keeps to whole pixels and stays upright: a photograph turned or resampled
            # would soften and no longer be the picture its owner gave
            x, y = round(stage.neck[0] - w / 2 + dx), round(stage.neck[1] - h * 0.62 + dy)
            p.photo.draw(frame, x, y, 0.0, (w / 2, h * 0.9), (("mouth", SHAPES[mouth]), ("eyes", eyes)))
        else:
            lift = round(breath * (BREATH_LEVELS - 1))  # at 0 the base already shows the shoulders
            if lift:
                rig.breaths[lift].blend(frame, rig.body_x, rig.breath_y)
            if (gesture := self.hand_pose(index)) is not None:
                side, raised, swing = gesture
                hw, (w, h) = stage.head_width, rig.hand_size
                rise = min(0.9 * h, 0.6 * (fmt.height - stage.neck[1])) * raised  # up to the chest
                x = stage.neck[0] + side * 0.55 * hw - w / 2
                rig.hands[side].draw(frame, x, fmt.height - rise, swing, (w / 2, h + 0.3 * h))  # about the elbow
            brows = min(BROWS, key=lambda b: abs(b - self.brows.get(index, 0.0)))
            ox, oy = rig.neck_offset
            rig.head.draw(frame, stage.neck[0] + ox + dx, stage.neck[1] + oy + dy, tilt, rig.pivot,
                          ((eyes, self.gaze.get(index, 0), brows), SHAPES[mouth]))
        if card is not None:
            c, k = card
            cx, cy, _ = stage.card
            fx, fy = stage.card_from
            self._card(c.insight).blend(frame, int(cx + fx * (1 - k)), int(cy + fy * (1 - k)))
        if self.title is not None and t < TITLE_SECONDS and card is None:
            # a card up in the first seconds takes the title's place: in portrait it stands where the
            # title would be, and beside the presenter its top ran under the title's banner
            self.title.blend(frame, 0, self.title_y)
        if cue is not None:
            layers = self.caption_layers(cue, word)
            y = self._caption_y(stage, layers[0].oy + layers[0].h, card)
            for layer in layers:
                layer.blend(frame, (fmt.width - self.layout.caption_width) // 2, y)

    def head_box(self, card: bool = False) -> tuple[int, int, int, int]:
        """The head (hair to chin; a photo's eyes to chin) on the main stage, or on the stage it
        steps back to while a card is up, grown by how far it moves and turns."""
        rig = self.card_rig if card and self.card_rig is not None else self.rig
        lay = rig.stage
        unit = lay.head_width / 100
        turn = math.radians(TILT + SENTENCE_TILT)
        if self.photo is not None:
            p = self.photo
            w, h = p.size
            left, top = lay.neck[0] - w / 2, lay.neck[1] - h * 0.62
            boxes = [p.talking.mouth_box(), *p.talking.eye_boxes()]
            x0, y0 = min(b[0] for b in boxes) + left, min(b[1] for b in boxes) + top
            x1, y1 = max(b[2] for b in boxes) + left, max(b[3] for b in boxes) + top
            pivot, turn = (lay.neck[0], top + h * 0.9), 0.0
        else:
            bx0, by0, bx1, _ = rig.head.box
            x0 = lay.neck[0] + rig.neck_offset[0] + bx0
            y0 = lay.neck[1] + rig.neck_offset[1] + by0
            x1, y1 = x0 + bx1 - bx0, lay.neck[1] - lay.head_width * 0.1  # the chin sits a little above the neck
            pivot = lay.neck
        # the box's corners turned each way as far as the head tilts, then moved as far as it sways
        px, py = pivot
        turned = [(px + math.cos(a) * (x - px) - math.sin(a) * (y - py), py + math.sin(a) * (x - px) + math.cos(a) * (y - py))
                  for a in (-turn, 0.0, turn) for x in (x0, x1) for y in (y0, y1)]
        x0, x1 = min(x for x, _ in turned), max(x for x, _ in turned)
        y0, y1 = min(y for _, y in turned), max(y for _, y in turned)
        reach_x, up, down = unit * sum(SWAY), unit * (BOB + BREATH), unit * (BOB + NOD)
        return int(x0 - reach_x), int(y0 - up), math.ceil(x1 + reach_x), math.ceil(y1 + down)

    def title_box(self) -> tuple[int, int, int, int] | None:
        if self.title is None:
            return None
        t = self.title
        return t.ox, self.title_y + t.oy, t.ox + t.w, self.title_y + t.oy + t.h

    def _caption_y(self, stage: Stage, height: int, card) -> int:
        """The caption's top: the look's position, or the stage's own place for captions."""
        h, position = self.fmt.height, self.look.position
        if position == "top":
            return int(h * 0.06)
        if position == "middle":
            return (h - height) // 2
        if position == "bottom":
            return int(h * 0.94) - height
        if position == "above_card" and card is not None:
            return max(0, stage.card[1] - height - h // 100)
        return stage.caption_y

    def close(self) -> None:
        if self.video_bg:
            self.video_bg.close()
