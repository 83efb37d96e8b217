"""Talking photos: the face is found once per photo; each mouth shape and blink is a warp of it.

The face and its landmarks come from dlib's HOG face detector and its five-point shape
predictor, whose weights the `face_recognition_models` package ships (the five-point model is
public domain; the 68-point one beside it was trained on data that excludes commercial use, so
it is not used). Five points give the eyes' corners and the base of the nose; the mouth is
placed below the nose from the face's own proportions: its centre a little over a third of
the eye-to-nose distance below the nose, its width three quarters of the span between the
eyes' outer corners. Where that misses (a beard, a head turned aside, a drawing), a profile's
`mouth: {x, y, width}` names the place in the photo's own pixels.

Each shape is drawn once per photo, as a patch over the still photo: the jaw and lower lip
move down, the upper lip a little up, the corners in for rounded shapes, and where the lips
part a dark mouth with a row of teeth shows. A blink pulls the skin above each eye down over it.
Outside those patches the photo's pixels are never touched.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from avatar_daemon import RenderError

from .visemes import SHAPES

# Per shape: how far the lips part (in mouth widths) and how wide the mouth is (1 = at rest).
OPENING = {"A": (0.0, 0.96), "B": (0.1, 1.0), "C": (0.22, 1.0), "D": (0.34, 1.04), "E": (0.22, 0.84),
           "F": (0.13, 0.7), "G": (0.06, 1.0), "H": (0.18, 0.95), "X": (0.0, 1.0)}
DETECT_SIDE = 900  # photos are searched at most this large: a phone's 12 MP photo takes seconds otherwise


@dataclass
class Face:
    """Landmarks in a photo's pixels."""

    mouth: tuple[float, float]               # centre, where the lips meet
    mouth_width: float
    eyes: list[tuple[float, float, float]]   # centre x, centre y, corner-to-corner width

    def scaled(self, k: float, dx: float, dy: float) -> "Face":
        return Face((self.mouth[0] * k - dx, self.mouth[1] * k - dy), self.mouth_width * k,
                    [(x * k - dx, y * k - dy, w * k) for x, y, w in self.eyes])


@functools.cache
def _models():
    """The detector and predictor, loaded once per process (about three seconds) and only when a
    talking photo is rendered; the lock keeps two renders from running one model at once."""
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(_five_point_model())), threading.Lock()


def _five_point_model() -> Path:
    """The weights' file, found without importing `face_recognition_models`: its __init__ needs
    pkg_resources, which current setuptools no longer ships."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RenderError("talking photos need the face_recognition_models package (pip install face-recognition-models)")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "shape_predictor_5_face_landmarks.dat"


def _sample(channel: np.ndarray, coords: list, **kw) -> np.ndarray:
    """scipy's bilinear sampling, imported at the first talking photo, not when the plugin loads
    (it costs the CLI about a second to start)."""
    from scipy.ndimage import map_coordinates

    return map_coordinates(channel, coords, **kw)


def find_face(img: Image.Image) -> Face | None:
    """The largest face's eyes and mouth, or None when there is no face to find."""
    detector, predictor, lock = _models()
    k = min(1.0, DETECT_SIDE / max(img.size))
    small = img.convert("RGB")
    if k < 1:
        small = small.resize((round(img.width * k), round(img.height * k)), Image.LANCZOS)
    pixels = np.asarray(small)
    with lock:
        faces, scores, _ = detector.run(pixels, 1 if max(small.size) < 600 else 0, 0)
        if not len(faces):
            return None
        best = max(range(len(faces)), key=lambda i: (faces[i].area(), scores[i]))
        pts = np.array([(p.x, p.y) for p in predictor(pixels, faces[best]).parts()], float) / k
    eyes = [(*((pts[a] + pts[b]) / 2), float(np.hypot(*(pts[a] - pts[b])))) for a, b in ((0, 1), (2, 3))]
    eye_mid = (pts[0] + pts[1] + pts[2] + pts[3]) / 4
    nose = pts[4]
    mouth = nose + (nose - eye_mid) * 0.36
    outer = float(max(np.hypot(*(pts[a] - pts[b])) for a in (0, 1) for b in (2, 3)))
    return Face((float(mouth[0]), float(mouth[1])), outer * 0.75, eyes)


def _smooth(t: np.ndarray) -> np.ndarray:
    """1 at 0, 0 at 1 and beyond, with flat ends: warps fade out without a visible edge."""
    t = np.clip(t, 0, 1)
    return 1 - t * t * (3 - 2 * t)


class TalkingPhoto:
    """A portrait fitted to `size`, with a patch per mouth shape and per eyelid state."""

    def __init__(self, path: Path, size: tuple[int, int], mouth=None):
        """`mouth`: a profile's MouthPlace (x, y, width in the photo's pixels), trusted over the detector."""
        try:
            with Image.open(path) as raw:
                img = ImageOps.exif_transpose(raw).convert("RGB")
        except (OSError, ValueError) as exc:
            raise RenderError(f"talking photo {path} cannot be read: {exc}") from None
        face = find_face(img)
        if mouth is not None:
            face = Face((mouth.x, mouth.y), mouth.width, face.eyes if face else [])
        elif face is None:
            raise RenderError(f"no face found in the talking photo {path}: use a portrait that faces the camera "
                              "with the whole face in view, or give the profile a mouth: {x, y, width}")
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
        (mx, my), mw = self.face.mouth, self.face.mouth_width
        return _box(self.image.size, mx - 1.4 * mw, my - 0.5 * mw, mx + 1.4 * mw, my + 1.5 * mw)

    def _mouth(self, pixels: np.ndarray, shape: str) -> Image.Image:
        (mx, my), mw = self.face.mouth, self.face.mouth_width
        opening, width = OPENING[shape]
        gap = opening * mw
        up, down = gap * 0.25, gap * 0.75
        x0, y0, x1, y1 = self.mouth_box()
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        across = _smooth((np.abs(xs - mx) - 0.55 * mw) / (0.8 * mw))             # the jaw's width
        lower = down * across * _smooth((ys - my - 0.7 * mw) / (0.75 * mw))      # jaw and chin, into the neck
        upper = up * across * _smooth((my - ys) / (0.35 * mw))                   # the upper lip, not the nose
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
        return [_box(self.image.size, x - 0.9 * w, y - 0.9 * w, x + 0.9 * w, y + 0.6 * w) for x, y, w in self.face.eyes]

    def _eyes(self, pixels: np.ndarray, closing: float) -> Image.Image:
        """The lid comes down: each point of the eye shows the skin from nearer the brow."""
        patch = Image.new("RGBA", self.image.size, (0, 0, 0, 0))
        for (ex, ey, ew), (x0, y0, x1, y1) in zip(self.face.eyes, self.eye_boxes()):
            ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            lid = ey - 0.45 * ew
            weight = _smooth(np.sqrt(((xs - ex) / (0.7 * ew)) ** 2 + ((ys - ey) / (0.45 * ew)) ** 2) - 0.3) * (ys > lid)
            sy = ys - closing * weight * (ys - lid)
            out = np.stack([_sample(pixels[..., c], [sy, xs], order=1, mode="nearest") for c in range(3)], -1)
            if closing >= 1:  # the lashes where the lids meet
                lash = np.exp(-((ys - ey - 0.08 * ew) / max(0.6, 0.03 * ew)) ** 2) * _smooth(np.abs(xs - ex) / (0.5 * ew))
                out = out * (1 - 0.6 * lash[..., None]) + 30 * 0.6 * lash[..., None]
            patch.paste(Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), (x0, y0))
        return patch


def _box(size: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    """A box inside the image on even pixels, so a patch lands on the photo's own chroma samples."""
    w, h = size
    return (max(0, int(x0) // 2 * 2), max(0, int(y0) // 2 * 2), min(w // 2 * 2, -(-int(x1) // 2) * 2),
            min(h // 2 * 2, -(-int(y1) // 2) * 2))
