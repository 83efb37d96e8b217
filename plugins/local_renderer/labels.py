"""Small on-screen labels that stay up the whole video: which part of a split script this is."""

from __future__ import annotations

from PIL import Image, ImageDraw

from avatar_daemon import Brand, FormatSpec, Script

from .captions import font
from .yuv import Layer, hex_rgb


def part_text(script: Script) -> str | None:
    """The label of a part of a split script ("Part 2 of 3"); None for a whole one."""
    return f"Part {script.part.number} of {script.part.of}" if script.part else None


def part_layer(text: str, fmt: FormatSpec, brand: Brand) -> tuple[Layer, tuple[int, int]]:
    """A pill in the brand's colour in a top corner, the one the logo does not take."""
    side = min(fmt.width, fmt.height)
    size, margin = max(12, side // 26), int(side * 0.04)
    fnt = font(size, brand.font)
    pad_x, pad_y = size * 0.6, size * 0.35
    w, h = int(fnt.getlength(text) + 2 * pad_x), int(size * 1.2 + 2 * pad_y)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([0, 0, w - 1, h - 1], radius=h // 2, fill=hex_rgb(brand.primary) + (235,))
    d.text((pad_x, pad_y), text, font=fnt, fill=(17, 17, 17, 255))
    right = bool(brand.logo) and brand.logo_corner == "top-left"
    return Layer(img), (fmt.width - w - margin if right else margin, margin)
