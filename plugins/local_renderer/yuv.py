"""Frames kept in yuv420p from start to end: colour is converted once per sprite, never per frame.

BT.709, limited range, which is what the encoder is told and what players assume for HD.
Sprites are kept premultiplied in 8 bits with their inverse alpha, so a blend is two of OpenCV's
SIMD passes per plane (multiply, add), in place on the encoder's own frame.
"""

from __future__ import annotations

import math

import av
import cv2
import numpy as np
from PIL import Image

cv2.setNumThreads(1)  # the cores belong to x264: one blend at a time, on the composing thread

KR, KB = 0.2126, 0.0722
KG = 1 - KR - KB
# RGB (0..255) -> limited-range Y, Cb, Cr, as Pillow's matrix conversion takes it (rows, then offset)
_TO_YUV = (
    219 / 255 * KR, 219 / 255 * KG, 219 / 255 * KB, 16.0,
    -224 / 255 * KR / (2 * (1 - KB)), -224 / 255 * KG / (2 * (1 - KB)), 224 / 255 / 2, 128.0,
    224 / 255 / 2, -224 / 255 * KG / (2 * (1 - KR)), -224 / 255 * KB / (2 * (1 - KR)), 128.0,
)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """'#1e40af' -> (30, 64, 175)."""
    h = colour.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


# ... and back: RGB = inverse(rows) · (Y, Cb, Cr) - inverse(rows) · offset, as one 3x4 matrix
_ROWS = np.array(_TO_YUV, np.float64).reshape(3, 4)
_TO_RGB = np.hstack([np.linalg.inv(_ROWS[:, :3]), -np.linalg.inv(_ROWS[:, :3]) @ _ROWS[:, 3:]]).astype(np.float32)


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Planes of one size to RGB, rounded and clipped, in one of OpenCV's passes: the thumbnail is
    converted on the composing thread, where numpy's float passes over a 1080x1920 frame took 0.6 s."""
    return cv2.transform(cv2.merge([y, u, v]), _TO_RGB)


def _planes(img: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-resolution Y, Cb, Cr of an RGB(A) image, in C (Pillow's matrix conversion)."""
    yuv = img.convert("RGB").convert("RGB", matrix=_TO_YUV)
    return tuple(np.asarray(c) for c in yuv.split())  # type: ignore[return-value]


def _half(a: np.ndarray) -> np.ndarray:
    """Each 2x2 block's mean (rounded): chroma's resolution."""
    return cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)


def premultiplied(img: Image.Image) -> tuple[np.ndarray, ...]:
    """An RGBA image of even size as (Y·a, 1 - a, U·a, V·a, 1 - a) in 8 bits, chroma at half resolution."""
    y, u, v = _planes(img)
    a = np.asarray(img.getchannel("A"))
    yp, up, vp = (cv2.multiply(p, a, scale=1 / 255) for p in (y, u, v))
    return yp, cv2.bitwise_not(a), _half(up), _half(vp), cv2.bitwise_not(_half(a))


class Frame:
    """Three yuv420p planes as arrays: our own, or views into a PyAV frame's (see `wrap`)."""

    def __init__(self, width: int, height: int, planes: tuple[np.ndarray, ...] | None = None):
        self.width, self.height = width, height
        self.video_frame: av.VideoFrame | None = None
        if planes is None:
            planes = (np.empty((height, width), np.uint8), np.empty((height // 2, width // 2), np.uint8),
                      np.empty((height // 2, width // 2), np.uint8))
        self.y, self.u, self.v = planes
        # What this frame holds, for a composer reusing it: the base it was filled from, and the
        # boxes drawn over that since (which the base, copied back there, undoes).
        self.filled_from: Frame | None = None
        self.drawn: list[tuple[int, int, int, int]] = []

    @classmethod
    def wrap(cls, vf: av.VideoFrame) -> "Frame":
        """Draw straight into an encoder frame: no copy between composing and encoding."""
        planes = tuple(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width] for p in vf.planes)
        frame = cls(vf.width, vf.height, planes)
        frame.video_frame = vf
        return frame

    def load_packed(self, buf: np.ndarray) -> None:
        """Copy in yuv420p as `VideoFrame.to_ndarray()` packs it: Y rows, then U, then V."""
        h, q = self.height, self.height // 4
        np.copyto(self.y, buf[:h])
        np.copyto(self.u, buf[h:h + q].reshape(self.u.shape))
        np.copyto(self.v, buf[h + q:].reshape(self.v.shape))
        self.filled_from, self.drawn = None, []

    @classmethod
    def from_image(cls, img: Image.Image) -> "Frame":
        y, u, v = _planes(img)
        return cls(img.width, img.height, (y.copy(), _half(u), _half(v)))

    def copy(self) -> "Frame":
        return Frame(self.width, self.height, (self.y.copy(), self.u.copy(), self.v.copy()))

    def copy_into(self, other: "Frame") -> None:
        np.copyto(other.y, self.y)
        np.copyto(other.u, self.u)
        np.copyto(other.v, self.v)
        other.filled_from, other.drawn = None, []

    def restore(self, other: "Frame") -> None:
        """Make `other` this frame again, copying only what was drawn on it since it was last
        filled from this one (a frame the encoder gave back), else all of it."""
        if other.filled_from is not self:
            self.copy_into(other)
        else:
            for x0, y0, x1, y1 in other.drawn:
                np.copyto(other.y[y0:y1, x0:x1], self.y[y0:y1, x0:x1])
                c = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
                np.copyto(other.u[c], self.u[c])
                np.copyto(other.v[c], self.v[c])
        other.filled_from, other.drawn = self, []

    def to_image(self) -> Image.Image:
        size = (self.width, self.height)
        u, v = (cv2.resize(c, size, interpolation=cv2.INTER_NEAREST) for c in (self.u, self.v))
        return Image.fromarray(yuv_to_rgb(self.y, u, v))


def _over(dst: np.ndarray, pre: np.ndarray, inv: np.ndarray) -> None:
    """dst = pre + dst·(1 - alpha), in place (dst may be a view into a frame); `inv` is 1 - alpha."""
    cv2.multiply(dst, inv, dst=dst, scale=1 / 255)
    cv2.add(dst, pre, dst=dst)


def _clip(frame: Frame, x: int, y: int, w: int, h: int):
    """The part of a w x h sprite at (x, y) (even) inside the frame: frame slices, sprite slices."""
    fx0, fy0, fx1, fy1 = max(x, 0), max(y, 0), min(x + w, frame.width), min(y + h, frame.height)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    sx0, sy0 = fx0 - x, fy0 - y
    return (fx0, fy0, fx1, fy1), (sx0, sy0, sx0 + fx1 - fx0, sy0 + fy1 - fy0)


class Layer:
    """An RGBA sprite that stays upright and lands on even pixels (where chroma is sampled)."""

    def __init__(self, img: Image.Image):
        img = img.convert("RGBA")
        box = img.getchannel("A").getbbox()
        self.empty = box is None
        if box is None:
            self.w = self.h = self.ox = self.oy = 0
            return
        # only the visible box is converted and kept, on even coordinates so chroma stays aligned
        x0, y0 = box[0] // 2 * 2, box[1] // 2 * 2
        x1, y1 = x0 + (box[2] - x0 + 1) // 2 * 2, y0 + (box[3] - y0 + 1) // 2 * 2
        self.ox, self.oy, self.w, self.h = x0, y0, x1 - x0, y1 - y0
        self.y_pre, self.inv, self.u_pre, self.v_pre, self.inv_half = premultiplied(img.crop((x0, y0, x1, y1)))

    def box(self, x: int, y: int) -> tuple[int, int, int, int]:
        x, y = (x + self.ox) // 2 * 2, (y + self.oy) // 2 * 2
        return x, y, x + self.w, y + self.h

    def blend(self, frame: Frame, x: int, y: int) -> None:
        """Draw onto `frame` with the sprite's top-left at (x, y); clipped at the frame's edges."""
        if self.empty:
            return
        x, y, _, _ = self.box(x, y)
        part = _clip(frame, x, y, self.w, self.h)
        if part is None:
            return
        frame.drawn.append(part[0])
        (fx0, fy0, fx1, fy1), (sx0, sy0, sx1, sy1) = part
        _over(frame.y[fy0:fy1, fx0:fx1], self.y_pre[sy0:sy1, sx0:sx1], self.inv[sy0:sy1, sx0:sx1])
        c, cs = (slice(fy0 // 2, fy1 // 2), slice(fx0 // 2, fx1 // 2)), (slice(sy0 // 2, sy1 // 2), slice(sx0 // 2, sx1 // 2))
        _over(frame.u[c], self.u_pre[cs], self.inv_half[cs])
        _over(frame.v[c], self.v_pre[cs], self.inv_half[cs])


class Puppet:
    """A sprite drawn anywhere to a fraction of a pixel and at any small angle: a head that glides
    and tilts instead of stepping. Parts (eyes, mouths) are composed onto it first, in its own
    space, then the whole is resampled (bilinear) into place in one pass per plane."""

    def __init__(self, img: Image.Image, parts: dict | None = None, replace: bool = True):
        """`parts`: key -> (x, y, RGBA image) with x, y even, in `img`'s pixels. `replace`: a part's
        rectangle replaces the sprite's (cut from the same drawing), else it is laid over it (a
        patch with soft edges)."""
        img = img.convert("RGBA")
        box = img.getchannel("A").getbbox() or (0, 0, 2, 2)
        x0, y0 = box[0] // 2 * 2, box[1] // 2 * 2
        x1, y1 = x0 + (box[2] - x0 + 1) // 2 * 2, y0 + (box[3] - y0 + 1) // 2 * 2
        self.box = (x0, y0, x1, y1)
        self.replace = replace
        self.base = self._planes(img.crop(self.box))
        self.parts: dict = {}
        for key, (px, py, part) in (parts or {}).items():
            # the part's rectangle, inside the kept box
            px0, py0 = max(px, x0), max(py, y0)
            px1, py1 = min(px + part.width // 2 * 2, x1), min(py + part.height // 2 * 2, y1)
            if px0 < px1 and py0 < py1:
                crop = part.convert("RGBA").crop((px0 - px, py0 - py, px1 - px, py1 - py))
                self.parts[key] = ((px0 - x0, py0 - y0), self._planes(crop))
        self.work = [p.copy() for p in self.base]
        self._shown: tuple = ()
        h, w = self.base[0].shape
        side = int(math.hypot(w, h)) + 8
        self._out = [np.empty((side, side), np.uint8), np.empty((side, side), np.uint8),
                     np.empty((side // 2, side // 2, 4), np.uint8)]
        self._split = [np.empty((side // 2, side // 2), np.uint8) for _ in range(4)]  # U·a, V·a, 1 - a, 0

    @staticmethod
    def _planes(img: Image.Image) -> list[np.ndarray]:
        """Luma premultiplied, 1 - alpha, and chroma as one half-size (U·a, V·a, 1 - a, 0) image: OpenCV
        warps four channels along a faster path than three (0.20 ms against 0.29 for a head's chroma)."""
        yp, inv, up, vp, inv_half = premultiplied(img)
        return [yp, inv, cv2.merge([up, vp, inv_half, np.zeros_like(inv_half)])]

    def _compose(self, keys: tuple) -> None:
        if keys == self._shown:
            return
        for dst, src in zip(self.work, self.base):
            np.copyto(dst, src)
        for key in keys:
            if key not in self.parts:
                continue
            (x, y), planes = self.parts[key]
            h, w = planes[0].shape
            ys, xs, cy, cx = slice(y, y + h), slice(x, x + w), slice(y // 2, y // 2 + h // 2), slice(x // 2, x // 2 + w // 2)
            if self.replace:
                self.work[0][ys, xs] = planes[0]
                self.work[1][ys, xs] = planes[1]
                self.work[2][cy, cx] = planes[2]
            else:  # over: colour = part + sprite·(1 - a); what shows through = both kinds of 1 - a
                inv, inv_half = planes[1], planes[2][..., 2]
                _over(self.work[0][ys, xs], planes[0], inv)
                cv2.multiply(self.work[1][ys, xs], inv, dst=self.work[1][ys, xs], scale=1 / 255)
                chroma = planes[2].copy()
                chroma[..., 2] = 0
                _over(self.work[2][cy, cx], chroma, cv2.merge([inv_half] * 4))
        self._shown = keys

    def draw(self, frame: Frame, x: float, y: float, angle: float, pivot: tuple[float, float],
             parts: tuple = ()) -> tuple[int, int, int, int] | None:
        """Blend the sprite (with `parts` on it) so its top-left lands at (x, y), turned by `angle`
        radians (clockwise) about `pivot` (sprite pixels). Returns the frame box it touched."""
        self._compose(parts)
        bx, by = self.box[0], self.box[1]
        h, w = self.base[0].shape
        c, s = math.cos(angle), math.sin(angle)
        px, py = pivot
        # where the sprite's visible corners land; the box around them, grown a pixel, on even pixels
        corners = [(bx + u, by + v) for u in (0, w) for v in (0, h)]
        xs = [x + px + c * (u - px) - s * (v - py) for u, v in corners]
        ys = [y + py + s * (u - px) + c * (v - py) for u, v in corners]
        X0, Y0 = max(0, (math.floor(min(xs)) - 1) // 2 * 2), max(0, (math.floor(min(ys)) - 1) // 2 * 2)
        X1 = min(frame.width, (math.ceil(max(xs)) + 2) // 2 * 2)
        Y1 = min(frame.height, (math.ceil(max(ys)) + 2) // 2 * 2)
        if X0 >= X1 or Y0 >= Y1:
            return None
        # frame pixel (X0 + i, Y0 + j) -> sprite pixel, relative to the kept box
        ex, ey = X0 - x - px, Y0 - y - py
        luma = np.array([[c, s, px + c * ex + s * ey - bx], [-s, c, py - s * ex + c * ey - by]], np.float32)
        chroma = luma.copy()
        chroma[:, 2] = (luma[:, 0] * 0.5 + luma[:, 1] * 0.5 + luma[:, 2] - 0.5) / 2
        W, H = X1 - X0, Y1 - Y0
        yp, inv, ch = self._out[0][:H, :W], self._out[1][:H, :W], self._out[2][:H // 2, :W // 2]
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        border = cv2.BORDER_CONSTANT  # outside the sprite: nothing drawn, everything shows through
        cv2.warpAffine(self.work[0], luma, (W, H), dst=yp, flags=flags, borderMode=border, borderValue=0)
        cv2.warpAffine(self.work[1], luma, (W, H), dst=inv, flags=flags, borderMode=border, borderValue=255)
        cv2.warpAffine(self.work[2], chroma, (W // 2, H // 2), dst=ch, flags=flags, borderMode=border,
                       borderValue=(0, 0, 255, 0))
        frame.drawn.append((X0, Y0, X1, Y1))
        _over(frame.y[Y0:Y1, X0:X1], yp, inv)
        up, vp, inv_half, _ = cv2.split(ch, [p[:H // 2, :W // 2] for p in self._split])
        _over(frame.u[Y0 // 2:Y1 // 2, X0 // 2:X1 // 2], up, inv_half)
        _over(frame.v[Y0 // 2:Y1 // 2, X0 // 2:X1 // 2], vp, inv_half)
        return X0, Y0, X1, Y1
