"""Procedural 2D presenters: one look per avatar profile, drawn once per mouth and eye state.

Everything is drawn at twice the output size and scaled down, which gives clean edges
without an anti-aliasing renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from avatar_daemon import AvatarProfile

from .visemes import SHAPES
from .yuv import hex_rgb

SS = 2  # supersampling
EYES = ("open", "half", "closed")


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(v * f))) for v in c)  # type: ignore[return-value]


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _older(age_range: str) -> bool:
    try:
        return int(age_range.split("-")[0]) >= 45
    except ValueError:
        return False


@dataclass
class Sprites:
    """RGBA images: the static body, and the head per (eyes, mouth) state, with their anchors."""

    body: Image.Image
    heads: dict[tuple[str, str], Image.Image]
    neck_offset: tuple[int, int]  # head canvas top-left relative to the body's neck point


class PresenterArtist:
    def __init__(self, avatar: AvatarProfile, head_width: int):
        self.a = avatar
        self.hw = head_width * SS
        self.skin = hex_rgb(avatar.skin)
        self.hair = hex_rgb(avatar.hair)
        self.outfit = hex_rgb(avatar.outfit)
        self.accent = hex_rgb(avatar.accent)

    # ---- head ------------------------------------------------------------------

    def head_canvas(self) -> tuple[int, int]:
        return int(self.hw * 1.6), int(self.hw * 1.9)

    def head(self, eyes: str, mouth: str) -> Image.Image:
        cw, ch = self.head_canvas()
        img = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        hw, cx, cy = self.hw, cw / 2, ch * 0.48
        face_h = hw * 1.25
        self._hair_back(d, cx, cy, hw, face_h)
        for side in (-1, 1):  # ears
            ex = cx + side * hw * 0.5
            d.ellipse([ex - hw * 0.08, cy - hw * 0.1, ex + hw * 0.08, cy + hw * 0.14], fill=_shade(self.skin, 0.92))
        d.ellipse([cx - hw / 2, cy - face_h / 2, cx + hw / 2, cy + face_h / 2], fill=self.skin)
        if self.a.beard:
            d.chord([cx - hw * 0.47, cy - face_h * 0.05, cx + hw * 0.47, cy + face_h / 2 + hw * 0.02], 0, 180,
                    fill=_shade(self.hair, 1.0))
            d.ellipse([cx - hw * 0.2, cy + hw * 0.14, cx + hw * 0.2, cy + hw * 0.42], fill=self.skin)
        self._eyes(d, cx, cy, hw, eyes)
        # nose
        d.line([(cx, cy + hw * 0.0), (cx - hw * 0.035, cy + hw * 0.14), (cx + hw * 0.02, cy + hw * 0.16)],
               fill=_shade(self.skin, 0.72), width=max(2, int(hw * 0.018)), joint="curve")
        for side in (-1, 1):  # cheeks
            x = cx + side * hw * 0.27
            d.ellipse([x - hw * 0.07, cy + hw * 0.1, x + hw * 0.07, cy + hw * 0.17],
                      fill=_mix(self.skin, (235, 120, 120), 0.18))
        self._mouth(d, cx, cy + hw * 0.3, hw, mouth)
        if _older(self.a.age_range):
            for k in range(2):
                y = cy - face_h * 0.3 + k * hw * 0.05
                d.arc([cx - hw * 0.18, y, cx + hw * 0.18, y + hw * 0.06], 200, 340,
                      fill=_shade(self.skin, 0.8), width=max(1, int(hw * 0.008)))
        self._hair_front(d, cx, cy, hw, face_h)
        if self.a.glasses:
            self._glasses(d, cx, cy, hw)
        return img

    def _hair_back(self, d, cx, cy, hw, fh):
        style = self.a.hair_style
        if style == "long":
            d.rounded_rectangle([cx - hw * 0.62, cy - fh * 0.55, cx + hw * 0.62, cy + fh * 0.78],
                                radius=int(hw * 0.4), fill=self.hair)
        elif style == "bob":
            d.rounded_rectangle([cx - hw * 0.6, cy - fh * 0.56, cx + hw * 0.6, cy + fh * 0.35],
                                radius=int(hw * 0.35), fill=self.hair)
        elif style == "bun":
            d.ellipse([cx - hw * 0.2, cy - fh * 0.78, cx + hw * 0.2, cy - fh * 0.42], fill=self.hair)

    def _hair_front(self, d, cx, cy, hw, fh):
        style, hair = self.a.hair_style, self.hair
        top = cy - fh / 2
        if style == "receding":
            for side in (-1, 1):
                d.chord([cx + side * hw * 0.5 - hw * 0.14, top + fh * 0.12, cx + side * hw * 0.5 + hw * 0.14,
                         top + fh * 0.5], 90 if side > 0 else 270, 270 if side > 0 else 90, fill=hair)
            return
        d.chord([cx - hw * 0.53, top - hw * 0.06, cx + hw * 0.53, top + fh * 0.52], 180, 360, fill=hair)
        if style in ("long", "bob"):
            d.pieslice([cx - hw * 0.55, top - hw * 0.02, cx + hw * 0.1, top + fh * 0.45], 180, 300, fill=hair)
        elif style == "swept":
            d.polygon([(cx - hw * 0.5, top + fh * 0.2), (cx + hw * 0.15, top - hw * 0.12),
                       (cx + hw * 0.55, top + fh * 0.16), (cx + hw * 0.1, top + fh * 0.1)], fill=hair)
        elif style == "bun":
            d.chord([cx - hw * 0.52, top - hw * 0.02, cx + hw * 0.52, top + fh * 0.4], 180, 360, fill=hair)

    def _eyes(self, d, cx, cy, hw, state):
        for side in (-1, 1):
            ex, ey = cx + side * hw * 0.19, cy - hw * 0.06
            brow_y = ey - hw * 0.11
            d.line([(ex - hw * 0.09, brow_y + hw * 0.015), (ex, brow_y - hw * 0.01), (ex + hw * 0.09, brow_y + hw * 0.01)],
                   fill=_shade(self.hair, 0.85) if self.a.hair_style != "receding" else (90, 90, 90),
                   width=max(2, int(hw * 0.028)), joint="curve")
            w, h = hw * 0.085, hw * 0.052
            if state == "closed":
                d.arc([ex - w, ey - h, ex + w, ey + h], 20, 160, fill=_shade(self.skin, 0.55),
                      width=max(2, int(hw * 0.014)))
                continue
            d.ellipse([ex - w, ey - h, ex + w, ey + h], fill=(250, 250, 250))
            r = hw * 0.042
            d.ellipse([ex - r, ey - r, ex + r, ey + r], fill=(70, 45, 30))
            d.ellipse([ex - r * 0.5, ey - r * 0.5, ex + r * 0.5, ey + r * 0.5], fill=(15, 10, 10))
            d.ellipse([ex + r * 0.15, ey - r * 0.6, ex + r * 0.5, ey - r * 0.25], fill=(255, 255, 255))
            if state == "half":
                d.rectangle([ex - w - 2, ey - h - 2, ex + w + 2, ey], fill=self.skin)
                d.line([(ex - w, ey), (ex + w, ey)], fill=_shade(self.skin, 0.55), width=max(2, int(hw * 0.014)))
            else:
                d.arc([ex - w, ey - h, ex + w, ey + h], 200, 340, fill=(40, 30, 30), width=max(2, int(hw * 0.012)))

    def _mouth(self, d, cx, my, hw, shape):
        lip = _shade((200, 90, 90), 0.9 if self.a.gender == "male" else 1.0)
        dark, teeth, tongue = (70, 20, 25), (248, 248, 245), (215, 100, 110)
        w = hw * 0.15
        lw = max(2, int(hw * 0.02))
        if shape == "X":
            d.arc([cx - w, my - hw * 0.05, cx + w, my + hw * 0.03], 20, 160, fill=lip, width=lw)
            return
        if shape == "A":
            d.line([(cx - w, my), (cx + w, my)], fill=lip, width=int(lw * 1.8))
            return
        sizes = {"B": (0.9, 0.035), "C": (0.85, 0.08), "D": (1.0, 0.13), "E": (0.7, 0.1), "F": (0.42, 0.08),
                 "G": (0.8, 0.05), "H": (0.85, 0.09)}
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
        frame = (30, 30, 35)
        for side in (-1, 1):
            ex, ey = cx + side * hw * 0.19, cy - hw * 0.06
            d.rounded_rectangle([ex - hw * 0.13, ey - hw * 0.09, ex + hw * 0.13, ey + hw * 0.09],
                                radius=int(hw * 0.04), outline=frame, width=max(2, int(hw * 0.016)))
        d.line([(cx - hw * 0.06, cy - hw * 0.08), (cx + hw * 0.06, cy - hw * 0.08)], fill=frame,
               width=max(2, int(hw * 0.016)))

    # ---- body ------------------------------------------------------------------

    def body(self, height: int) -> Image.Image:
        """Shoulders and outfit, from the neck down `height` output pixels."""
        hw = self.hw
        w, h = int(hw * 2.8), height * SS
        img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(img)
        cx = w / 2
        neck_w = hw * 0.2
        d.rectangle([cx - neck_w, 0, cx + neck_w, hw * 0.45], fill=_shade(self.skin, 0.9))
        d.rounded_rectangle([cx - hw * 1.3, hw * 0.32, cx + hw * 1.3, h + hw], radius=int(hw * 0.45),
                            fill=self.outfit)
        if self.a.style in ("executive", "keynote", "anchor", "professional", "analyst"):
            # open collar and lapels of a jacket
            d.polygon([(cx - hw * 0.3, hw * 0.32), (cx + hw * 0.3, hw * 0.32), (cx, hw * 0.95)], fill=self.accent)
            d.polygon([(cx - hw * 0.2, hw * 0.32), (cx + hw * 0.2, hw * 0.32), (cx, hw * 0.6)],
                      fill=_shade(self.skin, 0.9))
            for side in (-1, 1):
                d.polygon([(cx + side * hw * 0.3, hw * 0.32), (cx + side * hw * 0.05, hw * 1.05),
                           (cx + side * hw * 0.55, hw * 0.45)], fill=_shade(self.outfit, 0.75))
        else:
            d.chord([cx - hw * 0.32, hw * 0.1, cx + hw * 0.32, hw * 0.55], 0, 180, fill=_shade(self.skin, 0.9))
            d.arc([cx - hw * 0.34, hw * 0.1, cx + hw * 0.34, hw * 0.58], 0, 180, fill=self.accent,
                  width=int(hw * 0.05))
        return img

    def sprites(self, body_height: int) -> Sprites:
        def down(img: Image.Image) -> Image.Image:
            return img.reduce(SS)  # a box filter: exact for a whole-number factor, and cheap

        heads = {(e, m): down(self.head(e, m)) for e in EYES for m in SHAPES}
        cw, ch = self.head_canvas()
        # The face's chin sits on the neck: head canvas offset relative to the neck's top centre.
        chin_y = (ch * 0.48 + self.hw * 1.25 / 2) / SS
        neck_offset = (-(cw // SS) // 2, int(-chin_y + self.hw * 0.08 / SS))
        return Sprites(down(self.body(body_height)), heads, neck_offset)
