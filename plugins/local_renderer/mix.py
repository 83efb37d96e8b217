"""The soundtrack: the voice at the loudness social platforms play at, and a music bed under it.

Platforms normalise to about -14 LUFS integrated and clip what goes over 0 dBTP after their own
encode, so each sentence is brought to -14 LUFS (ITU-R BS.1770, via pyloudnorm) and its peaks held
under a ceiling with headroom for AAC's overshoot. The music bed is levelled once, looped or
trimmed to the video, faded in and out, and ducked while the voice speaks: the words' timings are
known before their frames are drawn, so the duck starts ahead of the voice instead of reacting to it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from avatar_daemon import RenderError

if TYPE_CHECKING:
    from .tts import Word

SAMPLE_RATE = 22050  # speech is made, and the soundtrack mixed, at this rate
TARGET_LUFS = -14.0
CEILING = 10 ** (-2.5 / 20)    # sample peaks; AAC adds up to about a decibel, true peak stays under -1 dBTP
BED_LUFS = -22.0               # the music alone, between sentences
DUCK = 10 ** (-16 / 20)        # the music under the voice: 16 dB down
ATTACK, HOLD = 0.25, 0.6       # the duck starts before a word and holds across short pauses
FADE_IN, FADE_OUT = 1.0, 1.0   # the end is known one second ahead (the held-back last sentence and tail)


@functools.lru_cache(maxsize=1)
def _meter():
    """pyloudnorm pulls in scipy.signal (about a second): imported at the first render, not by every command."""
    import pyloudnorm

    return pyloudnorm.Meter(SAMPLE_RATE)


def loudness(audio: np.ndarray) -> float | None:
    """Integrated loudness in LUFS; None when too short (under one 400 ms block) or silent."""
    if len(audio) < int(0.4 * SAMPLE_RATE) + 1:
        return None
    value = _meter().integrated_loudness(audio.astype(np.float64))
    return float(value) if np.isfinite(value) else None


def true_peaks(audio: np.ndarray) -> np.ndarray:
    """Each sample's true peak: the largest of its four 4x-oversampled values (ITU-R BS.1770)."""
    from scipy.signal import resample_poly

    over = np.abs(resample_poly(audio, 4, 1))
    return np.pad(over, (0, 4 * len(audio) - len(over)))[:4 * len(audio)].reshape(-1, 4).max(axis=1)


def limit(audio: np.ndarray, ceiling: float = CEILING, peaks: np.ndarray | None = None) -> np.ndarray:
    """A look-ahead peak limiter on the true (4x oversampled) peaks: the gain dips smoothly around
    each peak that would pass the ceiling, reaching its lowest on the peak itself. `peaks`, if
    given, are the audio's `true_peaks`: oversampling is linear, so a caller trying gains on the
    same sound oversamples it once and scales them."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    if len(audio) == 0:
        return audio
    if peaks is None:
        peaks = true_peaks(audio)
    need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-9))
    if need.min() >= 1.0:
        return audio
    w = int(0.004 * SAMPLE_RATE) * 2 + 1
    gain = uniform_filter1d(minimum_filter1d(need, w * 3), w)
    out = (audio * np.minimum(gain, need)).astype(np.float32)
    true_peak = float(true_peaks(out).max())
    return out * min(1.0, ceiling / true_peak) if true_peak > 0 else out


def level_voice(audio: np.ndarray, fallback_rms: float) -> np.ndarray:
    """One sentence to the loudness target, peaks limited; limiting lowers the loudness a little,
    so it is measured and made up again. Too short to measure, a sentence is levelled by RMS.

    Each round gains the original audio again, aiming by the slope of loudness against gain seen
    so far (under the limiter a decibel of gain buys less than a decibel of loudness): two or three
    rounds land within a quarter of a unit, where limiting the already-limited result took six.
    """
    audio = audio.astype(np.float32)
    measured = loudness(audio)
    if measured is None:
        rms = float(np.sqrt(np.mean(audio ** 2))) if len(audio) else 0.0
        return limit(audio * (fallback_rms / rms)) if rms > 1e-6 else audio
    last, gain = (0.0, measured), TARGET_LUFS - measured
    peaks = true_peaks(audio)
    for _ in range(6):
        scale = 10 ** (gain / 20)
        out = limit((audio * scale).astype(np.float32), peaks=peaks * scale)
        measured = loudness(out)
        if measured is None or abs(measured - TARGET_LUFS) < 0.25:
            break
        slope = (measured - last[1]) / (gain - last[0]) if gain != last[0] else 1.0
        last, gain = (gain, measured), gain + (TARGET_LUFS - measured) / min(1.0, max(0.2, slope))
    return out


def decode_audio(path: Path, what: str) -> np.ndarray:
    """Any file FFmpeg reads, as mono float32 at the speech rate; errors name the file."""
    if not path.is_file():
        raise RenderError(f"the {what} {path} does not exist")
    try:
        with av.open(str(path)) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            parts = [f.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                     for f in resampler.resample(frame)]
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except (av.FFmpegError, IndexError) as exc:
        raise RenderError(f"the {what} {path} cannot be decoded as audio: {exc}") from None
    if not parts:
        raise RenderError(f"the {what} {path} has no audio")
    return np.concatenate(parts).astype(np.float32)


class Bed:
    """A music file, levelled and looped for as long as the video runs."""

    def __init__(self, path: Path):
        music = decode_audio(path, "music file")
        measured = loudness(music if len(music) > SAMPLE_RATE else np.tile(music, SAMPLE_RATE // max(len(music), 1) + 1))
        if measured is None:
            raise RenderError(f"the music file {path} is silent")
        self.music = (music * 10 ** ((BED_LUFS - measured) / 20)).astype(np.float32)

    def under(self, voice: np.ndarray, start: int, g0: float, g1: float) -> np.ndarray:
        """The voice chunk starting at sample `start` with the bed under it, its gain ramping g0 to g1."""
        n = len(voice)
        if n == 0:
            return voice
        music = self.music[np.arange(start, start + n) % len(self.music)]
        gain = np.linspace(g0, g1, n, endpoint=False, dtype=np.float32)
        return np.clip(voice + music * gain, -1.0, 1.0)


def bed_gains(words: "list[Word]", frames: int, fps: int, end: float | None) -> np.ndarray:
    """The bed's gain at each frame boundary (frames + 1 values): ducked around the words, faded in
    from the start and, once the end is known, out to it."""
    t = np.arange(frames + 1) / fps
    ducked = np.zeros(len(t), bool)
    for w in words:
        ducked |= (t >= w.start - ATTACK) & (t <= w.end + HOLD)
    gain = np.where(ducked, DUCK, 1.0)
    ramp = max(1, int(0.15 * fps))  # the duck eases over 150 ms, centred so it is down by the word
    gain = np.convolve(np.pad(gain, ramp, mode="edge"), np.ones(2 * ramp + 1) / (2 * ramp + 1), "same")[ramp:-ramp]
    gain *= np.clip(t / FADE_IN, 0, 1)
    if end is not None:
        gain *= np.clip((end - t) / FADE_OUT, 0, 1)
    return gain.astype(np.float32)
