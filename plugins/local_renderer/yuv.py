"""Frames kept in yuv420p from start to end: colour is converted once per sprite, never per frame.

BT.709, limited range, which is what the encoder is told and what players assume for HD.
"""

from __future__ import annotations

import av
import numpy as np
from PIL import Image

KR, KB = 0.2126, 0.0722


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """'#1e40af' -> (30, 64, 175)."""
    h = colour.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float RGB in 0..1 -> Y, Cb, Cr as float in the limited 8-bit range."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = KR * r + (1 - KR - KB) * g + KB * b
    return 16 + 219 * y, 128 + 224 * (b - y) / (2 * (1 - KB)), 128 + 224 * (r - y) / (2 * (1 - KR))


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    yy = (y.astype(np.float32) - 16) / 219
    cb = (u.astype(np.float32) - 128) / 224 * 2 * (1 - KB)
    cr = (v.astype(np.float32) - 128) / 224 * 2 * (1 - KR)
    r = yy + cr
    b = yy + cb
    g = (yy - KR * r - KB * b) / (1 - KR - KB)
    return np.clip(np.stack([r, g, b], -1) * 255 + 0.5, 0, 255).astype(np.uint8)


def _half(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))


class Frame:
    """Three yuv420p planes as arrays: our own, or views into a PyAV frame's (see `wrap`)."""

    def __init__(self, width: int, height: int, planes: tuple[np.ndarray, ...] | None = None):
        self.width, self.height = width, height
        self.video_frame: av.VideoFrame | None = None
        if planes is None:
            planes = (np.empty((height, width), np.uint8), np.empty((height // 2, width // 2), np.uint8),
                      np.empty((height // 2, width // 2), np.uint8))
        self.y, self.u, self.v = planes

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

    @classmethod
    def from_image(cls, img: Image.Image) -> "Frame":
        rgb = np.asarray(img.convert("RGB"), np.float32) / 255
        y, u, v = rgb_to_yuv(rgb)
        f = cls(img.width, img.height)
        f.y[:] = np.clip(y + 0.5, 0, 255)
        f.u[:] = np.clip(_half(u) + 0.5, 0, 255)
        f.v[:] = np.clip(_half(v) + 0.5, 0, 255)
        return f

    def copy(self) -> "Frame":
        return Frame(self.width, self.height, (self.y.copy(), self.u.copy(), self.v.copy()))

    def copy_into(self, other: "Frame") -> None:
        np.copyto(other.y, self.y)
        np.copyto(other.u, self.u)
        np.copyto(other.v, self.v)

    def to_image(self) -> Image.Image:
        u = self.u.repeat(2, 0).repeat(2, 1)
        v = self.v.repeat(2, 0).repeat(2, 1)
        return Image.fromarray(yuv_to_rgb(self.y, u, v))


class Layer:
    """An RGBA sprite premultiplied in YUV with 7-bit alpha, so a blend is one multiply-add in uint16."""

    def __init__(self, img: Image.Image, any_pixel: bool = False):
        """`any_pixel`: keep a copy per pixel parity as well, so the sprite lands on odd rows and columns
        too (chroma is sampled every other pixel, so one copy can only move in steps of two): a moving
        head then glides a pixel at a time instead of jumping two."""
        img = img.convert("RGBA")
        self.parity: dict[tuple[int, int], Layer] | None = None
        if any_pixel:
            self.parity = {}
            for px, py in ((1, 0), (0, 1), (1, 1)):
                moved = Image.new("RGBA", (img.width + 2, img.height + 2), (0, 0, 0, 0))
                moved.paste(img, (px, py))
                self.parity[px, py] = Layer(moved)
        box = img.getchannel("A").getbbox()
        if box is None:
            self.empty = True
            self.w = self.h = self.ox = self.oy = 0
            return
        self.empty = False
        # only the visible box is converted and kept, on even coordinates so chroma stays aligned
        x0, y0 = box[0] // 2 * 2, box[1] // 2 * 2
        x1, y1 = x0 + (box[2] - x0 + 1) // 2 * 2, y0 + (box[3] - y0 + 1) // 2 * 2
        rgba = np.asarray(img.crop((x0, y0, x1, y1)), np.float32) / 255  # crop pads past the edge with zeros
        alpha = rgba[..., 3]
        self.ox, self.oy, self.h, self.w = x0, y0, y1 - y0, x1 - x0
        y, u, v = rgb_to_yuv(rgba[..., :3])
        a_half = _half(alpha)
        with np.errstate(invalid="ignore", divide="ignore"):
            u_half = np.where(a_half > 0, _half(u * alpha) / a_half, 128)
            v_half = np.where(a_half > 0, _half(v * alpha) / a_half, 128)
        a7 = np.round(alpha * 128).astype(np.uint16)
        a7h = np.round(a_half * 128).astype(np.uint16)
        self.y_pre = np.round(y * a7).astype(np.uint16)
        self.u_pre = np.round(u_half * a7h).astype(np.uint16)
        self.v_pre = np.round(v_half * a7h).astype(np.uint16)
        self.y_inv = (128 - a7).astype(np.uint16)
        self.c_inv = (128 - a7h).astype(np.uint16)

    def blend(self, frame: Frame, x: int, y: int) -> None:
        """Draw onto `frame` with the sprite's top-left at (x, y); clipped at the frame's edges."""
        if self.parity and (x % 2 or y % 2):
            px, py = x % 2, y % 2
            self.parity[px, py].blend(frame, x - px, y - py)
            return
        if self.empty:
            return
        x, y = (x + self.ox) // 2 * 2, (y + self.oy) // 2 * 2
        fx0, fy0 = max(x, 0), max(y, 0)
        fx1, fy1 = min(x + self.w, frame.width), min(y + self.h, frame.height)
        if fx0 >= fx1 or fy0 >= fy1:
            return
        sx0, sy0 = fx0 - x, fy0 - y
        sx1, sy1 = sx0 + fx1 - fx0, sy0 + fy1 - fy0
        _mix(frame.y[fy0:fy1, fx0:fx1], self.y_pre[sy0:sy1, sx0:sx1], self.y_inv[sy0:sy1, sx0:sx1])
        c = (slice(fy0 // 2, fy1 // 2), slice(fx0 // 2, fx1 // 2))
        cs = (slice(sy0 // 2, sy1 // 2), slice(sx0 // 2, sx1 // 2))
        _mix(frame.u[c], self.u_pre[cs], self.c_inv[cs])
        _mix(frame.v[c], self.v_pre[cs], self.c_inv[cs])


def _mix(dst: np.ndarray, pre: np.ndarray, inv: np.ndarray) -> None:
    tmp = dst.astype(np.uint16)
    tmp *= inv
    tmp += pre
    tmp >>= 7
    dst[:] = tmp
