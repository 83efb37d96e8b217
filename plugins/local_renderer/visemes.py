"""Mouth shapes over time, in Rhubarb Lip Sync's set, from phoneme timings or the audio envelope.

A  lips together (m, b, p)      B  slightly open, teeth (most consonants, "ee")
C  open (eh, ae, uh)            D  wide open (aa, ai)
E  rounded (aw, oh-ish, er)     F  puckered (oo, ow, w)
G  teeth on lower lip (f, v)    H  tongue up (l)
X  at rest (silence)
"""

from __future__ import annotations

import numpy as np

SHAPES = "ABCDEFGHX"

_MAP = {
    "A": "pbm",
    "B": "kgtdszʃʒθðnŋhjɹrʔɾiɪçxʤʧ",
    "C": "ɛeæʌəɚɜɐ",
    "D": "ɑaɒ",
    "E": "ɔoɝ",
    "F": "uʊwɥy",
    "G": "fv",
    "H": "l",
}
PHONEME_SHAPE = {ch: shape for shape, chars in _MAP.items() for ch in chars}
IGNORED = set("ˈˌːˑ̃ ^$_.,;:!?—…'\"-")
SILENCE = 0.012  # RMS below this is a pause: the mouth rests


def shape_of(phoneme: str) -> str | None:
    """The shape of a phoneme (IPA, possibly with stress and length marks); None for marks alone."""
    for ch in phoneme:
        if ch in IGNORED:
            continue
        return PHONEME_SHAPE.get(ch, "B")
    return None


_BEFORE = set("ˈˌ")  # stress marks precede the vowel they stress
_AFTER = set("ːˑ̃")  # length and nasal marks follow the sound they lengthen


def _voiced_spans(phonemes: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Shaped spans covering the whole utterance: a mark's duration goes to the sound it marks,
    a word space's or a punctuation's half to each neighbour, because Piper times those tokens
    as if they were sounds. Only the audio may say a moment is silent."""
    items = [(shape_of(p), p, a, b) for p, a, b in phonemes]
    spans: list[list] = []  # [shape, start, end]
    pending_start: float | None = None  # start of marks that precede the next sound
    for shape, p, a, b in items:
        if shape is not None:
            start = pending_start if pending_start is not None else a
            spans.append([shape, start, b])
            pending_start = None
        elif p and p[0] in _AFTER and spans:
            spans[-1][2] = b
        elif p and p[0] in _BEFORE:
            pending_start = a if pending_start is None else pending_start
        elif spans and a - spans[-1][2] < 1e-6:  # a space or punctuation right after a sound: split it
            mid = (a + b) / 2
            spans[-1][2] = mid
            pending_start = mid
        else:
            pending_start = a if pending_start is None else pending_start
    if items and items[-1][0] is None and spans:  # closing punctuation: the audio says when it ends
        spans[-1][2] = max(spans[-1][2], items[-1][3])
    return [(s, a, b) for s, a, b in spans]


def from_phonemes(phonemes: list[tuple[str, float, float]], duration: float, fps: int,
                  envelope: np.ndarray | None = None) -> np.ndarray:
    """One shape index per frame; frames the audio calls silent are forced to rest."""
    # One frame per envelope value: ceil(31 / 30 * 30) is 32 in floating point, and the mask below failed.
    n = len(envelope) if envelope is not None else int(np.ceil(duration * fps))
    frames = np.full(n, SHAPES.index("X"), np.int8)
    for shape, start, end in _voiced_spans(phonemes):
        a, b = int(round(start * fps)), max(int(round(end * fps)), int(round(start * fps)) + 1)
        frames[a:min(b, n)] = SHAPES.index(shape)
    if envelope is not None:
        quiet = envelope[:n] < SILENCE  # (the duration in frames can round one past the envelope)
        frames[:len(quiet)][quiet] = SHAPES.index("X")
    return frames

def envelope(audio: np.ndarray, sample_rate: int, fps: int) -> np.ndarray:
    """RMS per video frame."""
    n = int(np.ceil(len(audio) * fps / sample_rate))
    if n == 0:
        return np.zeros(0, np.float32)
    starts = (np.arange(n) * sample_rate / fps).astype(np.int64)
    sums = np.add.reduceat(audio.astype(np.float64) ** 2, starts)
    counts = np.diff(np.append(starts, len(audio)))
    return np.sqrt(sums / np.maximum(counts, 1)).astype(np.float32)


def from_envelope(env: np.ndarray) -> np.ndarray:
    """Fallback for narration without phonemes: louder = wider, with rounded and closed shapes mixed
    in so the mouth does not just flap."""
    peak = float(np.percentile(env[env > SILENCE], 90)) if np.any(env > SILENCE) else 1.0
    level = env / max(peak, 1e-6)
    frames = np.full(len(env), SHAPES.index("X"), np.int8)
    cycle = "BCEB"
    for i, v in enumerate(level):
        if env[i] < SILENCE:
            continue
        if v > 0.75:
            frames[i] = SHAPES.index("D")
        elif v > 0.45:
            frames[i] = SHAPES.index(cycle[i % len(cycle)] if i % 5 else "C")
        elif v > 0.2:
            frames[i] = SHAPES.index("B")
        else:
            frames[i] = SHAPES.index("A")
    return frames
