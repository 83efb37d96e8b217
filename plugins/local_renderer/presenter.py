"""Procedural 2D presenters: one look per avatar profile.

The head is drawn once whole, and again per eye state (blink, gaze, brows) and per mouth shape,
those only over the small area that changes; a frame lays the two patches on the head and
turns and moves the whole to a fraction of a pixel. The shoulders come at a few heights of a
breath, and a hand for gestures. Everything is drawn at twice the output size and scaled
down, which gives clean edges without an anti-aliasing renderer.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from avatar_daemon import AvatarProfile

from .visemes import SHAPES
from .yuv import hex_rgb

SS = 2  # supersampling
EYES = ("open", "half", "closed")
GAZES = (-1, 0, 1)       # looking left, at the camera, right
BROWS = (0.0, 0.5, 1.0)  # eyebrows at rest, half raised, raised
FACE_H = 1.25            # face height in face widths

# Face outlines: width factor, jaw squareness (superellipse exponent of the lower half), chin taper.
FACES = {
    "oval": (1.0, 2.0, 0.10),
    "round": (1.06, 2.2, 0.02),
    "long": (0.92, 2.1, 0.12),
    "square": (1.02, 3.2, 0.08),
    "heart": (1.02, 1.8, 0.30),
}
# Which faces suit whom: a profile's id picks one, so the same presenter always looks the same.
_FACES_BY_GENDER = {"female": ("oval", "heart", "long", "round"), "male": ("square", "oval", "long", "round")}
JACKETS = ("executive", "keynote", "anchor", "professional", "analyst")


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(v * f))) for v in c)  # type: ignore[return-value]


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _older(age_range: str) -> bool:
    try:
        return int(age_range.split("-")[0]) >= 45
    except ValueError:
        return False


def face_shape(avatar: AvatarProfile) -> str:
    choices = _FACES_BY_GENDER[avatar.gender]
    return choices[zlib.crc32(avatar.id.encode()) % len(choices)]


Patch = tuple[int, int, Image.Image]  # x, y (even) in the head's pixels, and the picture there


@dataclass
class Sprites:
    """RGBA images: the body, its top at each height of a breath, the whole head, patches, a hand."""

    body: Image.Image
    breaths: list[Image.Image]            # the body's top rows, from at rest to a full breath in
    breath_pad: int                       # rows above the neck in each of those, room to rise into
    head: Image.Image
    eyes: dict[tuple[str, int, float], Patch]   # (eyes, gaze, brows) -> patch
    mouths: dict[str, Patch]                    # shape -> patch
    neck_offset: tuple[int, int]  # head canvas top-left relative to the body's neck point
    pivot: tuple[float, float]    # where the head turns, in its own pixels: the top of the neck
    hand: Image.Image             # a raised right hand (viewer's left) on its forearm, wrist at the top


class PresenterArtist:
    def __init__(self, avatar: AvatarProfile, head_width: int):
        self.a = avatar
        self.hw = head_width * SS
        self.skin = hex_rgb(avatar.skin)
        self.hair = hex_rgb(avatar.hair)
        self.outfit = hex_rgb(avatar.outfit)
        self.accent = hex_rgb(avatar.accent)
        self.face = FACES[face_shape(avatar)]

    # ---- geometry --------------------------------------------------------------

    def head_canvas(self) -> tuple[int, int]:
        return int(self.hw * 1.8), int(self.hw * 2.2)

    def _centre(self) -> tuple[float, float]:
        cw, ch = self.head_canvas()
        return cw / 2, ch * 0.46

    def outline(self, cx: float, cy: float, grow: float = 1.0, steps: int = 96) -> list[tuple[float, float]]:
        """The face's edge: an ellipse on top, a jaw of the profile's squareness and taper below."""
        width, jaw, taper = self.face
        a, b = self.hw / 2 * width * grow, self.hw * FACE_H / 2 * grow
        pts = []
        for i in range(steps):
            t = 2 * math.pi * i / steps
            c, s = math.cos(t), math.sin(t)
            if s > 0:  # lower half (y grows downwards)
                n = jaw
                x = a * math.copysign(abs(c) ** (2 / n), c) * (1 - taper * s ** 2)
                y = b * s ** (2 / n)
            else:
                x, y = a * c, b * s
            pts.append((cx + x, cy + y))
        return pts

    def _half_width_at(self, dy: float) -> float:
        """Face half width at `dy` below the centre (SS pixels), from the outline."""
        pts = self.outline(0, 0, steps=240)
        near = min(pts, key=lambda p: abs(p[1] - dy) + (0 if p[0] > 0 else 1e9))
        return near[0]

    def eye_box(self) -> tuple[int, int, int, int]:
        cx, cy = self._centre()
        hw = self.hw
        return _even((cx - hw * 0.4, cy - hw * 0.36, cx + hw * 0.4, cy + hw * 0.06))

    def mouth_box(self) -> tuple[int, int, int, int]:
        cx, cy = self._centre()
        hw, my = self.hw, cy + self.hw * 0.3
        return _even((cx - hw * 0.26, my - hw * 0.1, cx + hw * 0.26, my + hw * 0.16))

    # ---- head ------------------------------------------------------------------

    def head(self, eyes: str = "open", mouth: str = "X", gaze: int = 0, brows: float = 0.0,
             box: tuple[int, int, int, int] | None = None) -> Image.Image:
        """The head on its canvas, or only the part of it inside `box` (drawing less is quicker)."""
        cw, ch = self.head_canvas()
        cx, cy = self._centre()
        if box is not None:
            cw, ch, cx, cy = box[2] - box[0], box[3] - box[1], cx - box[0], cy - box[1]
        img = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        hw = self.hw
        self._hair_back(d, cx, cy, hw)
        half = self._half_width_at(hw * 0.02)
        for side in (-1, 1):  # ears
            ex = cx + side * (half - hw * 0.015)
            d.ellipse([ex - hw * 0.075, cy - hw * 0.1, ex + hw * 0.075, cy + hw * 0.15], fill=_shade(self.skin, 0.9))
            d.arc([ex - hw * 0.04, cy - hw * 0.06, ex + hw * 0.04, cy + hw * 0.1], 90 - side * 60, 270 - side * 60,
                  fill=_shade(self.skin, 0.72), width=max(2, int(hw * 0.012)))
        d.polygon(self.outline(cx, cy), fill=self.skin)
        if self.a.beard:
            self._beard(d, cx, cy, hw)
        self._eyes(d, cx, cy, hw, eyes, gaze, brows)
        # nose: a bridge line and a soft tip
        d.line([(cx + hw * 0.015, cy - hw * 0.02), (cx - hw * 0.03, cy + hw * 0.15), (cx + hw * 0.03, cy + hw * 0.17)],
               fill=_shade(self.skin, 0.72), width=max(2, int(hw * 0.016)), joint="curve")
        d.ellipse([cx - hw * 0.06, cy + hw * 0.13, cx + hw * 0.06, cy + hw * 0.19], fill=_shade(self.skin, 0.9))
        for side in (-1, 1) if not self.a.beard else ():  # cheeks
            x = cx + side * hw * 0.27
            d.ellipse([x - hw * 0.07, cy + hw * 0.1, x + hw * 0.07, cy + hw * 0.17],
                      fill=_mix(self.skin, (235, 120, 120), 0.15))
        self._mouth(d, cx, cy + hw * 0.3, hw, mouth)
        if _older(self.a.age_range):
            for k in range(2):
                y = cy - hw * 0.42 + k * hw * 0.05
                d.arc([cx - hw * 0.18, y, cx + hw * 0.18, y + hw * 0.06], 200, 340,
                      fill=_shade(self.skin, 0.82), width=max(1, int(hw * 0.008)))
        self._hair_front(d, cx, cy, hw)
        if self.a.glasses:
            self._glasses(d, cx, cy, hw)
        return img

    def _skull(self, cx, cy, hw, grow, below=None):
        """The top of the head, a little larger than the face, down to `below` the centre: where hair
        lies. Points run from the left temple over the crown to the right one."""
        limit = cy + (hw * 0.05 if below is None else below)
        pts = [p for p in self.outline(cx, cy - hw * 0.03, grow, 120) if p[1] <= limit]
        return sorted(pts, key=lambda p: math.atan2(p[1] - cy, p[0] - cx) % (2 * math.pi))

    def _strands(self, d, pts, colour, width):
        for a, b in zip(pts, pts[1:]):
            d.line([a, b], fill=colour, width=width)

    def _hair_back(self, d, cx, cy, hw):
        style, hair = self.a.hair_style, self.hair
        fh = hw * FACE_H
        if style == "long":
            # falls past the shoulders in a gentle wave, with a wavy hem; behind the neck, so the neck
            # and the collar show between the two falls (a neck narrower than the gap would show sky)
            top = cy - fh * 0.56
            fall = [(hw * (0.5 + 0.19 * v ** 0.8 + 0.025 * math.sin(v * 7)), top + hw * 0.15 + v * (fh * 1.41 - hw * 0.15))
                    for v in [k / 12 for k in range(13)]]
            hem = [(hw * x, fh * 0.85 + math.sin(x * 9) * hw * 0.04) for x in [0.7 - 0.5 * k / 8 for k in range(9)]]
            inner = [(hw * 0.16, fh * 0.62), (hw * 0.16, fh * 0.45)]
            right = [(cx + x, y if k < len(fall) else cy + y) for k, (x, y) in enumerate(fall + hem + inner)]
            right[len(fall) - 1] = (right[len(fall) - 1][0], cy + fh * 0.85)
            d.polygon([(2 * cx - x, y) for x, y in right[::-1]] + right, fill=_shade(hair, 0.85))
            d.ellipse([cx - hw * 0.58, top - hw * 0.05, cx + hw * 0.58, top + hw * 0.9], fill=hair)
        elif style == "bob":
            top = cy - fh * 0.57
            d.ellipse([cx - hw * 0.62, top - hw * 0.04, cx + hw * 0.62, cy + fh * 0.2], fill=hair)
            # the sides fall from the crown's widest point, swell a little and curl under at the jaw:
            # one rounded shape, not panels with corners
            side = [(hw * (0.61 + 0.05 * math.sin(math.pi * v)), cy - hw * 0.2 + v * (fh * 0.3 + hw * 0.2))
                    for v in [k / 10 for k in range(11)]]
            curl = [(hw * (0.56 - 0.14 * (1 - math.cos(math.pi * k / 8)) / 2), cy + fh * 0.3 + hw * 0.07 * math.sin(math.pi * k / 8))
                    for k in range(1, 9)]
            left = [(cx - x, y) for x, y in side + curl]
            d.polygon(left + [(2 * cx - x, y) for x, y in left[::-1]], fill=_shade(hair, 0.9))
        elif style == "bun":
            d.ellipse([cx - hw * 0.19, cy - fh * 0.78, cx + hw * 0.19, cy - fh * 0.46], fill=hair)
            d.arc([cx - hw * 0.13, cy - fh * 0.73, cx + hw * 0.13, cy - fh * 0.52], 200, 340,
                  fill=_shade(hair, 1.5), width=max(2, int(hw * 0.012)))
        if style in ("long", "bob"):
            d.polygon(self._skull(cx, cy, hw, 1.1), fill=hair)
        elif style != "receding":
            d.polygon(self._skull(cx, cy, hw, 1.08, below=-hw * 0.12), fill=hair)

    def _hair_front(self, d, cx, cy, hw):
        style, hair = self.a.hair_style, self.hair
        fh = hw * FACE_H
        top = cy - fh / 2
        light, dark = _shade(hair, 1.35) if sum(hair) < 200 else _shade(hair, 1.12), _shade(hair, 0.72)
        lw = max(2, int(hw * 0.012))
        if style == "receding":
            # grey sides and back, a bare crown with a little shine
            for side in (-1, 1):
                x = cx + side * hw * 0.5
                d.polygon([(x, cy - fh * 0.05), (x + side * hw * 0.06, cy - fh * 0.28), (x - side * hw * 0.05, cy - fh * 0.33),
                           (x - side * hw * 0.1, cy - fh * 0.12), (x - side * hw * 0.04, cy + fh * 0.05)], fill=hair)
            d.arc([cx - hw * 0.28, top + hw * 0.02, cx + hw * 0.05, top + hw * 0.22], 200, 260,
                  fill=_mix(self.skin, (255, 255, 255), 0.35), width=max(2, int(hw * 0.02)))
            return
        if style == "long":
            # a centre-left parting; the hair sweeps down both sides of the face
            part = (cx - hw * 0.1, top - hw * 0.04)
            d.polygon([part, (cx - hw * 0.52, top + fh * 0.1), (cx - hw * 0.54, cy + fh * 0.45),
                       (cx - hw * 0.44, cy + fh * 0.1), (cx - hw * 0.36, top + fh * 0.3), (cx - hw * 0.12, top + fh * 0.12)],
                      fill=hair)
            d.polygon([part, (cx + hw * 0.5, top + fh * 0.06), (cx + hw * 0.56, cy + fh * 0.45),
                       (cx + hw * 0.45, cy + fh * 0.08), (cx + hw * 0.3, top + fh * 0.2), (cx + hw * 0.05, top + fh * 0.09)],
                      fill=hair)
            for k in range(3):
                self._strands(d, [(part[0] + hw * 0.05 * k, part[1] + hw * 0.05),
                                  (cx + hw * (0.25 + 0.06 * k), top + fh * 0.1), (cx + hw * (0.48 + 0.02 * k), cy)],
                              light, lw)
        elif style == "bob":
            # a straight fringe cut just above the brows, a little uneven
            edge = [(cx + x * hw, top + fh * 0.22 + (hw * 0.02 if k % 2 else 0)) for k, x in
                    enumerate([0.5 - k / 10 for k in range(11)])]
            d.polygon(self._skull(cx, cy, hw, 1.08, below=-fh * 0.28) + edge, fill=hair)
            for k in range(3):
                x = cx - hw * 0.25 + k * hw * 0.22
                self._strands(d, [(x, top + hw * 0.02), (x + hw * 0.03, top + fh * 0.2)], dark, lw)
        elif style == "bun":
            # pulled back: a smooth crown, a high rounded hairline, a few lines towards the bun
            hairline = [(cx + hw * x, top + fh * (0.1 + 0.2 * x ** 2)) for x in [0.47 - 0.94 * k / 12 for k in range(13)]]
            d.polygon(self._skull(cx, cy, hw, 1.06, below=-hw * 0.14) + hairline, fill=hair)
            for k in (-1, 0, 1):
                self._strands(d, [(cx + k * hw * 0.25, top + fh * 0.1), (cx + k * hw * 0.08, top - hw * 0.04)], light, lw)
        elif style == "swept":
            # a quiff swept up and to one side
            # the sides close-cut down to the temples, the hairline rising towards the temples
            hairline = [(cx + hw * x, top + fh * (0.2 + 0.1 * x ** 2)) for x in [0.47 - 0.94 * k / 12 for k in range(13)]]
            d.polygon(self._skull(cx, cy, hw, 1.07, below=-hw * 0.1) + hairline, fill=hair)
            # the quiff's outline: up from the left temple in a rounded wave, highest right of centre,
            # over and down to the right; its lower edge a soft, uneven fringe line
            crest = [(cx - hw * 0.54, top + fh * 0.2)] + [
                (cx + hw * (-0.5 + 1.04 * u), top - hw * (0.2 * math.sin(math.pi * u) ** 0.7 * (0.7 + 0.45 * u)))
                for u in [k / 24 for k in range(1, 24)]]
            crest.append((cx + hw * 0.56, top + fh * 0.12))
            fringe = [(cx + hw * 0.38, top + fh * 0.07), (cx + hw * 0.2, top + fh * 0.1), (cx + hw * 0.02, top + fh * 0.09),
                      (cx - hw * 0.14, top + fh * 0.15), (cx - hw * 0.34, top + fh * 0.16)]
            d.polygon(crest + fringe, fill=hair)
            for k in range(4):
                self._strands(d, [(cx - hw * (0.35 - 0.12 * k), top + fh * 0.12), (cx + hw * (0.0 + 0.1 * k), top - hw * 0.1),
                                  (cx + hw * (0.3 + 0.05 * k), top - hw * 0.08)], dark, lw)
        else:  # short: close-cut, a soft hairline with a side parting
            skull = self._skull(cx, cy, hw, 1.07, below=-hw * 0.1)
            hairline = [(cx + hw * x, top + fh * (0.16 + 0.12 * x ** 2) - (hw * 0.03 if -0.3 < x < -0.15 else 0))
                        for x in [0.47 - 0.94 * k / 12 for k in range(13)]]
            d.polygon(skull + hairline, fill=hair)
            for side in (-1, 1):  # sideburns
                x = cx + side * hw * 0.47
                d.polygon([(x, cy - hw * 0.14), (x + side * hw * 0.04, cy - hw * 0.14), (x + side * hw * 0.03, cy + hw * 0.02),
                           (x - side * hw * 0.01, cy + hw * 0.02)], fill=hair)
            self._strands(d, [(cx - hw * 0.22, top + fh * 0.13), (cx - hw * 0.18, top - hw * 0.01)], light, lw)

    def _beard(self, d, cx, cy, hw):
        """A full beard along the jaw, with a moustache; the lips stay clear."""
        pts = [p for p in self.outline(cx, cy, 1.02, 160) if p[1] >= cy + hw * 0.02]
        pts.sort(key=lambda p: math.atan2(p[1] - cy, p[0] - cx))  # right cheek, chin, left cheek
        inner = [(cx + hw * x, cy + hw * y) for x, y in
                 ((-0.46, 0.02), (-0.36, 0.2), (-0.2, 0.25), (0, 0.23), (0.2, 0.25), (0.36, 0.2), (0.46, 0.02))]
        d.polygon(pts + inner, fill=_shade(self.hair, 0.95))
        d.ellipse([cx - hw * 0.17, cy + hw * 0.24, cx + hw * 0.17, cy + hw * 0.42], fill=_shade(self.skin, 0.93))
        d.chord([cx - hw * 0.2, cy + hw * 0.18, cx + hw * 0.2, cy + hw * 0.32], 180, 360, fill=self.hair)

    def _eyes(self, d, cx, cy, hw, state, gaze, brows):
        brow_colour = _shade(self.hair, 0.85) if self.a.hair_style != "receding" else (110, 110, 110)
        female = self.a.gender == "female"
        for side in (-1, 1):
            ex, ey = cx + side * hw * 0.19, cy - hw * 0.06
            lift = hw * 0.045 * brows
            by = ey - hw * 0.12 - lift
            inner, outer = ex - side * hw * 0.09, ex + side * hw * 0.1
            peak = ex + side * hw * 0.01
            d.line([(inner, by + hw * 0.004), (peak, by - hw * (0.018 if female else 0.008)), (outer, by + hw * 0.02)],
                   fill=brow_colour, width=max(2, int(hw * (0.022 if female else 0.032))), joint="curve")
            w, h = hw * 0.085, hw * 0.05
            if state == "closed":
                d.arc([ex - w, ey - h, ex + w, ey + h], 20, 160, fill=_shade(self.skin, 0.55),
                      width=max(2, int(hw * 0.014)))
                continue
            d.ellipse([ex - w, ey - h, ex + w, ey + h], fill=(250, 250, 250))
            r = hw * 0.04
            px = ex + gaze * hw * 0.03
            d.ellipse([px - r, ey - r, px + r, ey + r], fill=(70, 45, 30))
            d.ellipse([px - r * 0.5, ey - r * 0.5, px + r * 0.5, ey + r * 0.5], fill=(15, 10, 10))
            d.ellipse([px + r * 0.15, ey - r * 0.6, px + r * 0.5, ey - r * 0.25], fill=(255, 255, 255))
            # the eye's corners are skin again: clip the iris to the eye's shape
            d.chord([ex - w * 1.3, ey - h * 2.2, ex + w * 1.3, ey - h * 0.92], 0, 180, fill=self.skin)
            d.chord([ex - w * 1.3, ey + h * 0.92, ex + w * 1.3, ey + h * 2.2], 180, 360, fill=self.skin)
            if state == "half":
                d.rectangle([ex - w - 2, ey - h - 2, ex + w + 2, ey], fill=self.skin)
                d.line([(ex - w, ey), (ex + w, ey)], fill=_shade(self.skin, 0.55), width=max(2, int(hw * 0.014)))
            else:
                d.arc([ex - w, ey - h, ex + w, ey + h], 200, 340, fill=(40, 30, 30),
                      width=max(2, int(hw * (0.018 if female else 0.012))))

    def _mouth(self, d, cx, my, hw, shape):
        lip = _mix(_shade(self.skin, 0.8), (190, 80, 85), 0.35 if self.a.gender == "male" else 0.6)
        dark, teeth, tongue = (70, 20, 25), (248, 248, 245), (215, 100, 110)
        w = hw * 0.17
        lw = max(2, int(hw * 0.022))
        if shape == "X":
            d.arc([cx - w, my - hw * 0.06, cx + w, my + hw * 0.03], 25, 155, fill=lip, width=lw)
            return
        if shape == "A":
            d.line([(cx - w, my), (cx + w, my)], fill=lip, width=int(lw * 1.8))
            return
        sizes = {"B": (0.9, 0.045), "C": (0.85, 0.1), "D": (1.0, 0.16), "E": (0.72, 0.12), "F": (0.45, 0.09),
                 "G": (0.8, 0.06), "H": (0.85, 0.11)}
        sx, sy = sizes[shape]
        box = [cx - w * sx, my - hw * sy * 0.45, cx + w * sx, my + hw * sy * 0.55]
        d.ellipse(box, fill=dark, outline=lip, width=lw if shape != "F" else int(lw * 1.6))
        top, bottom = box[1], box[3]
        if shape in ("B", "C", "D", "G"):
            d.chord([box[0] + lw, top + lw * 0.5, box[2] - lw, top + (bottom - top) * (0.9 if shape in "BG" else 0.5)],
                    180, 360, fill=teeth)
        if shape == "G":
            d.line([(box[0], bottom - lw), (box[2], bottom - lw)], fill=lip, width=int(lw * 1.5))
        if shape in ("D", "C"):
            d.chord([box[0] + lw * 2, top + (bottom - top) * 0.55, box[2] - lw * 2, bottom - lw * 0.5], 0, 180,
                    fill=tongue)
        if shape == "H":
            d.ellipse([cx - w * 0.4, top + lw, cx + w * 0.4, top + (bottom - top) * 0.6], fill=tongue)

    def _glasses(self, d, cx, cy, hw):
        frame = (30, 30, 35) if self.a.gender == "female" else (70, 55, 40)
        width = max(2, int(hw * 0.018))
        for side in (-1, 1):
            ex, ey = cx + side * hw * 0.19, cy - hw * 0.06
            if self.a.gender == "female":  # cat-eye: wider at the top
                d.rounded_rectangle([ex - hw * 0.13, ey - hw * 0.09, ex + hw * 0.13, ey + hw * 0.08],
                                    radius=int(hw * 0.05), outline=frame, width=width)
            else:  # round
                d.ellipse([ex - hw * 0.12, ey - hw * 0.1, ex + hw * 0.12, ey + hw * 0.1], outline=frame, width=width)
            d.line([(ex + side * hw * 0.12, ey - hw * 0.03), (ex + side * hw * 0.3, ey - hw * 0.05)], fill=frame,
                   width=width)
        d.arc([cx - hw * 0.07, cy - hw * 0.12, cx + hw * 0.07, cy - hw * 0.02], 200, 340, fill=frame, width=width)

    # ---- body ------------------------------------------------------------------

    def body(self, height: int) -> Image.Image:
        """Neck, shoulders and outfit, from the neck down `height` output pixels."""
        hw = self.hw
        w, h = int(hw * 3.0), height * SS
        img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        cx = w / 2
        neck_w = hw * (0.2 if self.a.gender == "female" else 0.24)
        skin = _shade(self.skin, 0.9)
        d.rectangle([cx - neck_w, 0, cx + neck_w, hw * 0.5], fill=skin)
        d.chord([cx - neck_w, -hw * 0.1, cx + neck_w, hw * 0.18], 0, 180, fill=_shade(self.skin, 0.78))  # chin shadow
        # shoulders slope from the neck into the arms, wider for men
        sw = hw * (1.3 if self.a.gender == "female" else 1.45)
        top = hw * 0.34
        # The line starts at the neck's side just above the neckline, so the outfit closes round the
        # neck: a neckline wider than the neck would otherwise stick out over the background.
        def line_y(x: float) -> float:
            u = max(0.0, (abs(x) - neck_w) / (sw - neck_w))
            return top - hw * 0.03 + hw * 0.5 * u ** 2.4 + hw * 0.06 * u ** 0.5

        def opening(rx: float, depth: float, fill) -> None:
            """Skin (or trim) from the shoulder line down to a curve `depth` below it, `rx` either side."""
            # left to right, a pixel inside the outfit beside the neck so no sliver shows above it
            upper = [(cx + x, line_y(x) + (SS if abs(x) > neck_w else 0)) for x in [rx * (k / 8 - 1) for k in range(17)]]
            y0 = upper[-1][1]
            lower = [(cx + rx * math.cos(math.pi * k / 24), y0 + depth * math.sin(math.pi * k / 24)) for k in range(25)]
            d.polygon(upper + lower, fill=fill)

        slope = [(x, line_y(x)) for x in [neck_w + (sw - neck_w) * k / 16 for k in range(17)]]
        right = [(cx + x, y) for x, y in slope] + [(cx + sw * 1.03, top + hw * 0.75), (cx + sw * 1.05, h)]
        left = [(2 * cx - x, y) for x, y in right[::-1]]
        d.polygon(left + right, fill=self.outfit)
        for side in (-1, 1):  # arm crease
            d.line([(cx + side * sw * 0.85, top + hw * 0.8), (cx + side * sw * 0.9, h)],
                   fill=_shade(self.outfit, 0.82), width=max(2, int(hw * 0.015)))
        if self.a.style in JACKETS:
            # shirt, collar points and jacket lapels
            d.polygon([(cx - hw * 0.3, top), (cx + hw * 0.3, top), (cx, hw * 1.05)], fill=self.accent)
            d.polygon([(cx - neck_w, line_y(0) - SS), (cx + neck_w, line_y(0) - SS), (cx, hw * 0.62)], fill=skin)
            for side in (-1, 1):
                d.polygon([(cx + side * neck_w, top - hw * 0.04), (cx + side * hw * 0.02, hw * 0.62),
                           (cx + side * hw * 0.14, top + hw * 0.3), (cx + side * neck_w * 1.25, top + hw * 0.02)],
                          fill=_shade(self.accent, 0.9), outline=_shade(self.accent, 0.7))
                d.polygon([(cx + side * hw * 0.3, top), (cx + side * hw * 0.04, hw * 1.15),
                           (cx + side * hw * 0.2, hw * 0.78), (cx + side * hw * 0.58, top + hw * 0.14)],
                          fill=_shade(self.outfit, 0.75))
            if self.a.gender == "male":  # tie
                d.polygon([(cx - hw * 0.04, hw * 0.6), (cx + hw * 0.04, hw * 0.6), (cx + hw * 0.07, hw * 1.1),
                           (cx, hw * 1.2), (cx - hw * 0.07, hw * 1.1)], fill=_shade(self.accent, 0.55))
            for k in range(2):  # buttons
                y = hw * (1.3 + k * 0.3)
                d.ellipse([cx - hw * 0.025, y, cx + hw * 0.025, y + hw * 0.05], fill=_shade(self.outfit, 0.6))
        elif self.a.gender == "female":
            # a scoop neckline with a thin trim, running up to the shoulders
            opening(hw * 0.36, hw * 0.41, self.accent)
            opening(hw * 0.325, hw * 0.37, skin)
        else:
            # a crew neck with a ribbed band close round the neck
            opening(neck_w + hw * 0.08, hw * 0.25, self.accent)
            opening(neck_w + hw * 0.02, hw * 0.19, skin)
        return img

    def hand(self) -> Image.Image:
        """An open hand raised on its forearm, palm to the camera, the sleeve running off the bottom."""
        hw = self.hw * 1.45  # a hand from wrist to fingertips is about two thirds of a face's height
        w, h = int(hw * 0.9) // (2 * SS) * (2 * SS), int(hw * 1.6) // (2 * SS) * (2 * SS)
        img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        cx, wrist = w * 0.55, hw * 0.62
        skin, crease = self.skin, _shade(self.skin, 0.8)
        # the sleeve is the outfit's colour, a shade off it so the arm shows in front of the body; the
        # shirt's cuff comes out of it, so the cuff is drawn first and the sleeve's end laps over it
        sleeve = _shade(self.outfit, 1.35 if sum(self.outfit) < 150 else 0.88) if sum(self.outfit) else (40, 40, 40)
        d.rectangle([cx - hw * 0.13, wrist - hw * 0.02, cx + hw * 0.13, wrist + hw * 0.14],
                    fill=self.accent if self.a.style in JACKETS else skin)
        d.polygon([(cx - hw * 0.2, h), (cx + hw * 0.2, h), (cx + hw * 0.16, wrist + hw * 0.1),
                   (cx - hw * 0.16, wrist + hw * 0.1)], fill=sleeve)
        d.line([(cx - hw * 0.16, wrist + hw * 0.1), (cx + hw * 0.16, wrist + hw * 0.1)], fill=_shade(sleeve, 0.8),
               width=max(2, int(hw * 0.012)))  # the sleeve's hem
        d.line([(cx - hw * 0.02, wrist + hw * 0.2), (cx - hw * 0.05, h)], fill=_shade(sleeve, 0.85),
               width=max(2, int(hw * 0.012)))
        fw = hw * 0.03  # half a finger's width
        for k, length in enumerate((0.2, 0.25, 0.23, 0.17)):  # index to little finger, fanned a little
            fx = cx - hw * 0.095 + k * hw * 0.063
            tilt = (k - 1.5) * hw * 0.018
            d.line([(fx, wrist - hw * 0.2), (fx + tilt, wrist - hw * (0.2 + length))], fill=skin, width=int(fw * 2))
            d.ellipse([fx + tilt - fw, wrist - hw * (0.2 + length) - fw, fx + tilt + fw, wrist - hw * (0.2 + length) + fw],
                      fill=skin)
        d.rounded_rectangle([cx - hw * 0.13, wrist - hw * 0.26, cx + hw * 0.13, wrist + hw * 0.02],
                            radius=int(hw * 0.07), fill=skin)
        for k in range(3):  # the gaps between the fingers
            fx = cx - hw * 0.064 + k * hw * 0.063
            d.line([(fx, wrist - hw * 0.2), (fx + (k - 1) * hw * 0.02, wrist - hw * 0.33)], fill=crease,
                   width=max(1, int(hw * 0.008)))
        thumb = [(cx - hw * 0.12, wrist - hw * 0.02), (cx - hw * 0.2, wrist - hw * 0.12), (cx - hw * 0.25, wrist - hw * 0.22)]
        d.line(thumb, fill=skin, width=int(fw * 2.3), joint="curve")
        d.ellipse([thumb[-1][0] - fw * 1.15, thumb[-1][1] - fw * 1.15, thumb[-1][0] + fw * 1.15, thumb[-1][1] + fw * 1.15],
                  fill=skin)
        d.arc([cx - hw * 0.1, wrist - hw * 0.16, cx + hw * 0.06, wrist - hw * 0.02], 100, 200, fill=crease,
              width=max(1, int(hw * 0.008)))
        return img.reduce(SS)

    def sprites(self, body_height: int, breath: float = 0.0, levels: int = 12) -> Sprites:
        """`breath`: how many output pixels the shoulders rise at a full breath in, drawn at `levels` heights."""
        def patch(box: tuple[int, int, int, int], **kw) -> Patch:
            return box[0] // SS, box[1] // SS, self.head(box=box, **kw).reduce(SS)

        eye_box, mouth_box = self.eye_box(), self.mouth_box()
        eyes = {(e, g, b): patch(eye_box, eyes=e, gaze=g, brows=b) for e in EYES for g in GAZES for b in BROWS}
        mouths = {m: patch(mouth_box, mouth=m) for m in SHAPES}
        cw, ch = self.head_canvas()
        body = self.body(body_height).reduce(SS)
        # the shoulders' top rows breathe; below them the outfit is one colour, so no seam shows
        split = int(self.hw * 0.62 / SS)
        shoulders = body.crop((0, 0, body.width, split))
        alpha = np.asarray(shoulders.getchannel("A"), np.float32)
        fade = max(1, split // 5)  # the strip's lower edge fades into the still body: no hard seam
        alpha[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)[:, None]
        shoulders.putalpha(Image.fromarray(alpha.astype(np.uint8)))
        pad = math.ceil(breath) + 2
        breaths = [_stretched(shoulders, pad, breath * k / max(1, levels - 1)) for k in range(levels)]
        # The chin sits on the neck: head canvas offset relative to the neck's top centre.
        chin_y = (self._centre()[1] + self.hw * FACE_H / 2) / SS
        neck_offset = (-(cw // SS) // 2, int(-chin_y + self.hw * 0.1 / SS))
        return Sprites(body, breaths, pad, self.head().reduce(SS), eyes, mouths, neck_offset,
                       (-neck_offset[0], -neck_offset[1]), self.hand())


def _stretched(strip: Image.Image, pad: int, lift: float) -> Image.Image:
    """The strip with `pad` empty rows on top, stretched upwards from its bottom row by `lift`
    pixels (a fraction is fine: resampled, premultiplied, so edges do not darken)."""
    w, h = strip.size
    canvas = Image.new("RGBa", (w, h + pad), (0, 0, 0, 0))
    canvas.paste(strip.convert("RGBa"), (0, pad))
    k = (h + lift) / h
    m = np.array([[1, 0, 0], [0, 1 / k, (h + pad) * (1 - 1 / k)]], np.float32)
    out = cv2.warpAffine(np.asarray(canvas), m, (w, h + pad), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    return Image.frombytes("RGBa", (w, h + pad), out.tobytes()).convert("RGBA")


def _even(box) -> tuple[int, int, int, int]:
    """A box on even SS pixels, so its patch lands on the same output pixels as the whole head."""
    return tuple(int(v) // (2 * SS) * (2 * SS) for v in box)  # type: ignore[return-value]
