"""Talking photos: the face is found once per photo; each mouth shape and blink is a warp of it.

The face and its landmarks come from MediaPipe's face detector and face mesh (face_mesh.py): the
mouth's real corners, the upper and lower lips' edges, the chin, and each eye's corners and lids.
Where that misses (a beard, a head turned aside, a drawing), a profile's `mouth: {x, y, width}`
names the place in the photo's own pixels.

Each shape is drawn once per photo, as a patch over the still photo: the jaw and lower lip
move down (as far as the chin, fading into the neck), the upper lip a little up, the corners in
for rounded shapes, and where the lips part a dark mouth with a row of teeth shows. A blink pulls
the skin above each eye down over it, to the lower lid. Outside those patches the photo's pixels
are never touched.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from avatar_daemon import RenderError

from . import face_mesh
from .visemes import SHAPES

# Per shape: how far the lips part (in mouth widths) and how wide the mouth is (1 = at rest).
OPENING = {"A": (0.0, 0.96), "B": (0.1, 1.0), "C": (0.22, 1.0), "D": (0.34, 1.04), "E": (0.22, 0.84),
           "F": (0.13, 0.7), "G": (0.06, 1.0), "H": (0.18, 0.95), "X": (0.0, 1.0)}
DETECT_SIDE = 900  # photos are searched at most this large: a phone's 12 MP photo gains nothing but time
NO_FACE = ("no face found in the photo: use a portrait that faces the camera with the whole face in view, or give "
           "the profile a mouth: {x, y, width}")
REMEMBERED = 64  # photos whose search is kept: a profile's photo is checked at every request that names it


@dataclass
class Face:
    """Landmarks in a photo's pixels. Lip and chin distances are below (or above) `mouth`; a profile's
    own mouth place has none found, so they take an average face's proportions of its width."""

    mouth: tuple[float, float]               # centre, where the lips meet
    mouth_width: float                       # corner to corner
    eyes: list[tuple[float, float, float, float, float]]  # centre x, centre y, width, upper lid y, lower lid y
    upper_lip: float = 0.0                   # the upper lip's height, from where the lips meet
    lower_lip: float = 0.0
    chin: float = 0.0                        # where the lips meet to the chin's lowest point

    def __post_init__(self):
        self.upper_lip = self.upper_lip or 0.14 * self.mouth_width
        self.lower_lip = self.lower_lip or 0.2 * self.mouth_width
        self.chin = self.chin or 0.7 * self.mouth_width

    def scaled(self, k: float, dx: float, dy: float) -> "Face":
        return Face((self.mouth[0] * k - dx, self.mouth[1] * k - dy), self.mouth_width * k,
                    [(x * k - dx, y * k - dy, w * k, top * k - dy, bottom * k - dy) for x, y, w, top, bottom in self.eyes],
                    self.upper_lip * k, self.lower_lip * k, self.chin * k)


def _sample(channel: np.ndarray, coords: list, **kw) -> np.ndarray:
    """scipy's bilinear sampling, imported at the first talking photo, not when the plugin loads
    (it costs the CLI about a second to start)."""
    from scipy.ndimage import map_coordinates

    return map_coordinates(channel, coords, **kw)


def find_face(img: Image.Image) -> Face | None:
    """The largest face's lips, chin and eyes, or None when there is no face to find."""
    k = min(1.0, DETECT_SIDE / max(img.size))
    small = img.convert("RGB")
    if k < 1:
        small = small.resize((round(img.width * k), round(img.height * k)), Image.LANCZOS)
    pts = face_mesh.landmarks(np.asarray(small))
    if pts is None:
        return None
    pts = pts / k
    left, right = (pts[i] for i in face_mesh.MOUTH_CORNERS)
    lip_top, upper_in = (pts[i] for i in face_mesh.UPPER_LIP)
    lower_in, lip_bottom = (pts[i] for i in face_mesh.LOWER_LIP)
    mx, my = (upper_in + lower_in) / 2
    eyes = []
    for a, b, top, bottom in face_mesh.EYES:
        (x, _), w = (pts[a] + pts[b]) / 2, float(np.hypot(*(pts[a] - pts[b])))
        eyes.append((float(x), float(pts[top][1] + pts[bottom][1]) / 2, w, float(pts[top][1]), float(pts[bottom][1])))
    return Face((float(mx), float(my)), float(np.hypot(*(right - left))), eyes, upper_lip=float(my - lip_top[1]),
                lower_lip=float(lip_bottom[1] - my), chin=float(pts[face_mesh.CHIN][1] - my))


_found: OrderedDict[str, Face | None] = OrderedDict()
_found_lock = threading.Lock()


def read(path: Path) -> Image.Image:
    try:
        with Image.open(path) as raw:
            return ImageOps.exif_transpose(raw).convert("RGB")
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> RenderError:
    """Without the server's folders: the sentence may reach a remote caller (a profile's photo)."""
    return RenderError(f"the photo cannot be read: {str(exc).replace(str(path), path.name)}")


def face_of(path: Path, img: Image.Image | None = None) -> Face | None:
    """find_face, remembered by the file's content: a profile's photo, checked at every request that
    names it, is searched (and decoded: a 12 MP JPEG takes longer than the search) once per process.
    A render runs in a child process of its own and searches again."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with _found_lock:
        if digest in _found:
            _found.move_to_end(digest)
            return _found[digest]
    face = find_face(img if img is not None else read(path))
    with _found_lock:
        _found[digest] = face
        while len(_found) > REMEMBERED:
            _found.popitem(last=False)
    return face


def placed(path: Path, img: Image.Image | None, mouth=None) -> Face:
    """The face that will talk, or RenderError with the reason there is none. A profile's `mouth` needs
    neither the face mesh nor a face; where the mesh is installed it still finds the eyes to blink."""
    if mouth is not None:
        found = None if face_mesh.missing() else face_of(path, img)
        return Face((mouth.x, mouth.y), mouth.width, found.eyes if found else [])
    reason = face_mesh.missing()
    if reason:
        raise RenderError(reason)
    found = face_of(path, img)
    if found is None:
        raise RenderError(NO_FACE)
    return found


def check(path: Path, mouth=None) -> None:
    """What the renderer's check_photo asks before a request is queued: the photo reads, and without a
    profile's `mouth` the face mesh finds a face in it (remembered for the next request)."""
    if mouth is None:
        placed(path, None)
    else:
        read(path)


def _smooth(t: np.ndarray) -> np.ndarray:
    """1 at 0, 0 at 1 and beyond, with flat ends: warps fade out without a visible edge."""
    t = np.clip(t, 0, 1)
    return 1 - t * t * (3 - 2 * t)


class TalkingPhoto:
    """A portrait fitted to `size`, with a patch per mouth shape and per eyelid state."""

    def __init__(self, path: Path, size: tuple[int, int], mouth=None):
        """`mouth`: a profile's MouthPlace (x, y, width in the photo's pixels), trusted over the detector."""
        try:
            img = read(path)
            face = placed(path, img, mouth)
        except RenderError as exc:
            raise RenderError(f"talking photo {path}: {exc}") from None
        w, h = size
        k = max(w / img.width, h / img.height)
        big = img.resize((max(w, round(img.width * k)), max(h, round(img.height * k))), Image.LANCZOS)
        # the face stays in view: centred across, its mouth a little below the middle
        left = int(np.clip(face.mouth[0] * k - w / 2, 0, big.width - w))
        top = int(np.clip(face.mouth[1] * k - h * 0.55, 0, big.height - h))
        self.image = big.crop((left, top, left + w, top + h))
        self.face = face.scaled(k, left, top)
        pixels = np.asarray(self.image, np.float32)
        self.mouths = {s: self._mouth(pixels, s) for s in SHAPES if OPENING[s] != (0.0, 1.0)}
        self.eyes = {state: self._eyes(pixels, c) for state, c in (("half", 0.5), ("closed", 1.0))} \
            if self.face.eyes else {}

    # ---- mouth -----------------------------------------------------------------

    def mouth_box(self) -> tuple[int, int, int, int]:
        """Where mouth patches may differ from the photo: lips, jaw and chin."""
        (mx, my), mw, face = self.face.mouth, self.face.mouth_width, self.face
        return _box(self.image.size, mx - 1.4 * mw, my - max(0.5 * mw, 2.6 * face.upper_lip), mx + 1.4 * mw,
                    my + max(1.5 * mw, face.chin + 0.8 * mw))

    def _mouth(self, pixels: np.ndarray, shape: str) -> Image.Image:
        (mx, my), mw = self.face.mouth, self.face.mouth_width
        opening, width = OPENING[shape]
        gap = opening * mw
        up, down = gap * 0.25, gap * 0.75
        x0, y0, x1, y1 = self.mouth_box()
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        across = _smooth((np.abs(xs - mx) - 0.55 * mw) / (0.8 * mw))             # the jaw's width
        lower = down * across * _smooth((ys - my - self.face.chin) / (0.75 * mw))  # jaw and chin, into the neck
        upper = up * across * _smooth((my - ys) / (2.5 * self.face.upper_lip))      # the upper lip, not the nose
        # Between the lips the photo tears open (the mouth's inside covers it); past the corners the
        # cheeks stretch instead, over a band that widens away from the mouth.
        band = 1 + 0.5 * mw * np.clip((np.abs(xs - mx) - 0.4 * mw * width) / (0.3 * mw), 0, 1)
        t = np.clip((ys - my) / band * 0.5 + 0.5, 0, 1)
        t = t * t * (3 - 2 * t)
        sy = ys - (t * lower - (1 - t) * upper)
        # rounded shapes draw the corners in: sample from further out
        near = _smooth(np.abs(ys - my) / (0.45 * mw)) * _smooth((np.abs(xs - mx) - 0.2 * mw) / (0.9 * mw))
        sx = mx + (xs - mx) / (1 + (width - 1) * near)
        out = np.stack([_sample(pixels[..., c], [sy, sx], order=1, mode="nearest") for c in range(3)], -1)
        if gap > 0:
            out = self._inside(out, xs, ys, (mx, my + (down - up) / 2), 0.48 * mw * width, gap / 2, shape)
        patch = Image.new("RGBA", self.image.size, (0, 0, 0, 0))
        patch.paste(Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), (x0, y0))
        return patch

    def _inside(self, out, xs, ys, centre, ax, ay, shape):
        """The parted lips: a dark mouth, the upper teeth, a tongue when the mouth is wide open."""
        cx, cy = centre
        r = np.sqrt(((xs - cx) / ax) ** 2 + ((ys - cy) / max(ay, 0.5)) ** 2)
        edge = np.clip((1 - r) * min(ax, ay) / 1.2, 0, 1)[..., None]  # about a pixel of soft edge
        depth = np.clip((ys - (cy - ay)) / (2 * ay), 0, 1)[..., None]
        inside = np.array([58, 22, 26], np.float32) * (1 - 0.5 * depth)
        teeth = np.clip((cy - ay + max(1.5, 0.5 * ay) - ys) / 1.5, 0, 1) * _smooth((np.abs(xs - cx) - ax * 0.5) / (ax * 0.35))
        shade = 1 - 0.25 * np.clip(np.abs(xs - cx) / ax, 0, 1) ** 2  # teeth darken towards the corners
        inside = inside * (1 - teeth[..., None]) + (np.array([226, 222, 212], np.float32) * shade[..., None]) * teeth[..., None]
        if shape in "CD":
            tongue = _smooth(np.sqrt(((xs - cx) / (ax * 0.55)) ** 2 + ((ys - (cy + ay * 0.8)) / (ay * 0.45)) ** 2) - 0.6)
            inside = inside * (1 - 0.7 * tongue[..., None]) + np.array([150, 70, 78], np.float32) * 0.7 * tongue[..., None]
        return out * (1 - edge) + inside * edge

    # ---- eyes ------------------------------------------------------------------

    def eye_boxes(self) -> list[tuple[int, int, int, int]]:
        return [_box(self.image.size, x - 0.9 * w, y - 0.9 * w, x + 0.9 * w, y + 0.6 * w) for x, y, w, _, _ in self.face.eyes]

    def _eyes(self, pixels: np.ndarray, closing: float) -> Image.Image:
        """The lid comes down to the lower lid: each point of the eye shows the skin from nearer the brow."""
        patch = Image.new("RGBA", self.image.size, (0, 0, 0, 0))
        for (ex, ey, ew, top, bottom), (x0, y0, x1, y1) in zip(self.face.eyes, self.eye_boxes()):
            ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            lid = top - max(0.3 * ew, bottom - top)  # the skin above the upper lid
            weight = _smooth(np.sqrt(((xs - ex) / (0.7 * ew)) ** 2 + ((ys - ey) / (0.45 * ew)) ** 2) - 0.3) * (ys > lid)
            sy = ys - closing * weight * (ys - lid)
            out = np.stack([_sample(pixels[..., c], [sy, xs], order=1, mode="nearest") for c in range(3)], -1)
            if closing >= 1:  # the lashes where the lids meet
                lash = np.exp(-((ys - bottom + 0.25 * (bottom - top)) / max(0.6, 0.03 * ew)) ** 2) * _smooth(np.abs(xs - ex) / (0.5 * ew))
                out = out * (1 - 0.6 * lash[..., None]) + 30 * 0.6 * lash[..., None]
            patch.paste(Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), (x0, y0))
        return patch


def _box(size: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    """A box inside the image on even pixels, so a patch lands on the photo's own chroma samples."""
    w, h = size
    return (max(0, int(x0) // 2 * 2), max(0, int(y0) // 2 * 2), min(w // 2 * 2, -(-int(x1) // 2) * 2),
            min(h // 2 * 2, -(-int(y1) // 2) * 2))
