"""espeak-ng through ctypes (the library espeakng-loader ships): speech with word and phoneme events.

espeak-ng keeps global state, so every call holds one process-wide lock.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
INITIALIZE_DONT_EXIT = 0x8000
EVENT_WORD, EVENT_PHONEME, EVENT_END, EVENT_MSG_TERMINATED = 1, 7, 5, 6
POS_CHARACTER = 1
CHARS_UTF8 = 1
RATE = 1
DEFAULT_RATE = 175  # words per minute at speed 1.0

_LOCK = threading.Lock()


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class EspeakResult:
    audio: np.ndarray                             # float32 mono
    sample_rate: int
    words: list[tuple[int, int, float]]           # (char start, char length, seconds)
    phonemes: list[tuple[str, float]]             # (IPA, start seconds)


class Espeak:
    """One initialised library; synthesize() is safe to call from any thread."""

    _instance: "Espeak | None" = None

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = Path(espeakng_loader.get_data_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = self.lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data.parent).encode(),
            INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA | INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data at {data}")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, str]] = []
        self._callback = _CALLBACK(self._on_audio)  # kept referenced: ctypes must not free it
        self.lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> "Espeak":
        with _LOCK:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav, count, events) -> int:
        if count > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768.0)
        i = 0
        while events[i].type != 0:
            e = events[i]
            ipa = bytes(e.id.string).split(b"\0")[0].decode("utf-8", "replace") if e.type == EVENT_PHONEME else ""
            self._events.append((e.type, e.text_position, e.length, e.audio_position, ipa))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, speed: float = 1.0) -> EspeakResult:
        data = text.encode("utf-8")
        with _LOCK:
            self._chunks, self._events = [], []
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}")
            self.lib.espeak_SetParameter(RATE, int(DEFAULT_RATE * speed), 0)
            buf = ctypes.create_string_buffer(data)
            self.lib.espeak_Synth(buf, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            chunks, events = self._chunks, self._events
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        # text_position counts characters from 1 in the UTF-8 input; map back to str offsets.
        words = [(pos - 1, length, ms / 1000) for kind, pos, length, ms, _ in events if kind == EVENT_WORD]
        phonemes = [(ipa, ms / 1000) for kind, _, _, ms, ipa in events if kind == EVENT_PHONEME]
        return EspeakResult(audio, self.sample_rate, words, phonemes)
