"""Festival with the CMU SLT HTS voice (Debian's festival + festvox-us-slt-hts): a smooth female voice.

No pip package bundles a female neural English voice, and this HTS voice is smoother than
espeak-ng's formant voices and flite's slt, and festival reports every phone's end time, which
the mouth needs. Each sentence is one festival process: it costs ~0.15 s to start, and a
process of its own means no state carries from one sentence (or one render) to the next.

The text reaches festival's Scheme only as a string literal with its backslashes and double
quotes escaped, so nothing in a script can end the literal and be run as code.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import unicodedata
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOICE = "cmu_us_slt_arctic_hts"
INSTALL = "apt-get install festival festvox-us-slt-hts"
TIMEOUT_SECONDS = 120

# festival's US phone set (radio) in IPA, so the visemes' table reads them like espeak's and Piper's
RADIO_IPA = {
    "aa": "ɑ", "ae": "æ", "ah": "ʌ", "ao": "ɔ", "aw": "aʊ", "ax": "ə", "axr": "ɚ", "ay": "aɪ", "b": "b",
    "ch": "ʧ", "d": "d", "dh": "ð", "eh": "ɛ", "el": "l", "em": "m", "en": "n", "er": "ɝ", "ey": "eɪ",
    "f": "f", "g": "g", "hh": "h", "ih": "ɪ", "iy": "i", "jh": "ʤ", "k": "k", "l": "l", "m": "m", "n": "n",
    "ng": "ŋ", "ow": "oʊ", "oy": "ɔɪ", "p": "p", "r": "ɹ", "s": "s", "sh": "ʃ", "t": "t", "th": "θ",
    "uh": "ʊ", "uw": "u", "v": "v", "w": "w", "y": "j", "z": "z", "zh": "ʒ",
}
# festival reads bytes: the usual typographic characters as the ASCII it knows
_ASCII = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\u00a0": " "})

# Speed is the HTS engine's own rate (-r): festival's Duration_Stretch does not reach an HTS voice.
_SCRIPT = """(voice_{voice})
(set! hts_engine_params (append hts_engine_params (list (list "-r" {speed:.4f}))))
(set! utt (utt.synth (Utterance Text {text})))
(utt.save.wave utt {wav} 'riff)
(set! out (fopen {times} "w"))
(mapcar (lambda (s) (format out "S %s %f\\n" (item.name s) (item.feat s "end"))) (utt.relation.items utt 'Segment))
(mapcar (lambda (tok)
  (if (not (item.parent tok))
    (let ((spoken (mapcar (lambda (w) (list (item.feat w "word_start") (item.feat w "word_end")))
                          (item.daughters tok))))
      (format out "T")
      (mapcar (lambda (w) (if (> (cadr w) 0) (format out " %f %f" (car w) (cadr w)))) spoken)
      (format out "\\n"))))
  (utt.relation.items utt 'Token))
(fclose out)
"""


@dataclass
class FestivalResult:
    audio: np.ndarray                          # float32 mono
    sample_rate: int
    tokens: list[tuple[float, float] | None]   # per whitespace token of the text: when spoken, None if silent
    phones: list[tuple[str, float, float]]     # (IPA, start, end), pauses left out


def available() -> bool:
    """Festival is on PATH and loads the voice (it exits non-zero when the voice is not installed)."""
    if shutil.which("festival") is None:
        return False
    try:
        return subprocess.run(["festival", "--batch", f"(voice_{VOICE})"], capture_output=True,
                              timeout=TIMEOUT_SECONDS, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def scheme_string(text: str) -> str:
    """A Scheme string literal of `text`: only a backslash or a double quote could end or bend one."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plain(token: str) -> str:
    """One token as the ASCII festival reads (it reads bytes): typographic marks as their ASCII,
    accents dropped, anything else unprintable or beyond ASCII left out."""
    return "".join(c for c in unicodedata.normalize("NFKD", token.translate(_ASCII)) if c.isascii() and c.isprintable())


def synthesize(text: str, speed: float = 1.0) -> FestivalResult:
    """Raises RuntimeError naming festival and what it said when it fails."""
    spoken = " ".join((plain(t) or "-") for t in text.split())
    with tempfile.TemporaryDirectory(prefix="avatar-festival-") as tmp:
        wav, times = Path(tmp) / "speech.wav", Path(tmp) / "times.txt"
        script = _SCRIPT.format(voice=VOICE, speed=min(max(speed, 0.1), 10.0), text=scheme_string(spoken),
                                wav=scheme_string(str(wav)), times=scheme_string(str(times)))
        try:
            run = subprocess.run(["festival", "--pipe"], input=script.encode("ascii"), capture_output=True,
                                 timeout=TIMEOUT_SECONDS, check=False)
        except FileNotFoundError:
            raise RuntimeError(f"festival is not installed: {INSTALL}") from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"festival took over {TIMEOUT_SECONDS} s on one sentence") from None
        said = (run.stderr + run.stdout).decode("utf-8", "replace").strip()
        if run.returncode != 0 or not wav.is_file() or not times.is_file() or "SIOD ERROR" in said:
            raise RuntimeError(f"festival failed (exit {run.returncode}): {said[-300:] or 'no output'}")
        audio, rate = _read_wav(wav.read_bytes())
        lines = times.read_text(encoding="ascii", errors="replace").splitlines()
    phones, start = [], 0.0
    for line in (ln.split() for ln in lines if ln.startswith("S ")):
        name, end = line[1], float(line[2])
        if name in RADIO_IPA:
            phones.append((RADIO_IPA[name], start, end))
        start = end
    tokens: list[tuple[float, float] | None] = []
    for line in (ln.split()[1:] for ln in lines if ln.startswith("T")):
        tokens.append((float(line[0]), float(line[-1])) if line else None)
    return FestivalResult(audio, rate, tokens, phones)


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        if w.getsampwidth() != 2:
            raise RuntimeError(f"festival wrote {8 * w.getsampwidth()}-bit audio, not 16-bit")
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return (pcm.mean(axis=1) / 32768.0).astype(np.float32), w.getframerate()
