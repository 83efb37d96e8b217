"""MediaPipe's face detector and face mesh, run by OpenCV: 468 landmarks, with the lips' real contour.

The two models (BlazeFace short range, 128 px, and the 192 px face mesh; Apache 2.0) are the files
the `mediapipe` wheel carries in mediapipe/modules/. They are read from there without importing
mediapipe: its import alone takes two seconds, its face mesh is the legacy `solutions` API that later
wheels dropped (with the model files), and it logs to stderr past our logging. OpenCV's dnn module
reads TFLite, so the runtime is the OpenCV the renderer already uses; its landmarks agree with
mediapipe's own FaceMesh on the test portrait to within a pixel.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path

import numpy as np

from avatar_daemon import RenderError

# Landmark numbers in MediaPipe's canonical face mesh.
MOUTH_CORNERS = (61, 291)
UPPER_LIP = (0, 13)      # outer edge, inner edge
LOWER_LIP = (14, 17)     # inner edge, outer edge
CHIN = 152
EYES = ((33, 133, 159, 145), (362, 263, 386, 374))  # corners, upper lid, lower lid: the photo's left eye first

DETECT = 128
MESH = 192
MODELS = ("face_detection/face_detection_short_range.tflite", "face_landmark/face_landmark.tflite")

# The face mesh is an optional extra: mediapipe brings jax, matplotlib and OpenCV's GUI build (README).
INSTALL = "pip install 'avatar-daemon[photos]'"
MISSING = f"talking photos need MediaPipe's face mesh, which is not installed: {INSTALL} (Python 3.11 or 3.12)"


def missing() -> str | None:
    """Why the face mesh cannot run here, or None: asked afresh each time (a lookup, no import)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return MISSING
    for name in MODELS:
        if not (_root(spec) / name).is_file():
            return f"talking photos need mediapipe's {Path(name).name}, which this mediapipe does not carry: {INSTALL}"
    return None


def _root(spec) -> Path:
    return Path(next(iter(spec.submodule_search_locations))) / "modules"


@functools.cache
def _nets():
    """Both networks, loaded once per process and only for a talking photo; the lock keeps two renders
    from running one network at once (an OpenCV Net holds its activations)."""
    import cv2

    reason = missing()
    if reason:
        raise RenderError(reason)
    root = _root(importlib.util.find_spec("mediapipe"))
    return (*(cv2.dnn.readNetFromTFLite(str(root / name)) for name in MODELS), threading.Lock())


@functools.cache
def _anchors() -> np.ndarray:
    """BlazeFace's 896 anchor centres: two per cell of the 16x16 grid, six per cell of the 8x8 one."""
    centres = []
    for cells, per in ((16, 2), (8, 6)):
        c = (np.arange(cells) + 0.5) / cells
        x, y = np.meshgrid(c, c)
        centres.append(np.repeat(np.stack([x.ravel(), y.ravel()], 1), per, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _run(net, blob: np.ndarray) -> dict[str, np.ndarray]:
    names = net.getUnconnectedOutLayersNames()
    net.setInput(blob)
    return dict(zip(names, net.forward(names)))


def _sigmoid(x):
    return 1 / (1 + np.exp(-np.clip(x, -60, 60)))


def landmarks(pixels: np.ndarray) -> np.ndarray | None:
    """The largest face's 468 landmarks (x, y in `pixels`' own coordinates, RGB uint8), or None."""
    import cv2

    detector, mesh, lock = _nets()
    h, w = pixels.shape[:2]
    side = max(h, w)
    ox, oy = (side - w) // 2, (side - h) // 2
    square = cv2.copyMakeBorder(pixels, oy, side - h - oy, ox, side - w - ox, cv2.BORDER_CONSTANT, value=0)
    small = cv2.resize(square, (DETECT, DETECT), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
    with lock:
        out = _run(detector, small[None].transpose(0, 3, 1, 2))
    found = _sigmoid(out["classificators"].reshape(-1)) > 0.5
    if not found.any():
        return None
    boxes = out["regressors"].reshape(-1, 16)[found] / DETECT
    anchors = _anchors()[found]
    best = int(np.argmax(boxes[:, 2] * boxes[:, 3]))  # the largest face: the portrait's, not a passer-by's
    centre = (anchors[best] + boxes[best, :2]) * side - (ox, oy)
    eyes = (anchors[best] + boxes[best, 4:8].reshape(2, 2)) * side - (ox, oy)
    # MediaPipe's own crop: the box 1.5 times as large, turned so the eyes are level; then once more
    # around the landmarks themselves, which fit a face more closely than a detector's box.
    size = float(boxes[best, 2:4].max() * side * 1.5)
    angle = float(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
    for _ in range(2):
        k, ca, sa = MESH / size, np.cos(angle), np.sin(angle)
        crop = np.array([[ca * k, sa * k, 0], [-sa * k, ca * k, 0]])
        crop[:, 2] = MESH / 2 - crop[:, :2] @ centre
        face = cv2.warpAffine(pixels, crop, (MESH, MESH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        with lock:
            out = _run(mesh, face.astype(np.float32)[None].transpose(0, 3, 1, 2) / 255)
        if _sigmoid(out["conv2d_31"].ravel()[0]) < 0.5:
            return None
        back = cv2.invertAffineTransform(crop)
        pts = out["conv2d_21"].reshape(468, 3)[:, :2] @ back[:, :2].T + back[:, 2]
        lo, hi = pts.min(0), pts.max(0)
        centre, size = (lo + hi) / 2, float((hi - lo).max() * 1.5)
        angle = float(np.arctan2(*(pts[EYES[1][1]] - pts[EYES[0][0]])[::-1]))
    return pts
