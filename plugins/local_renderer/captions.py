"""Caption cues from word timings, SRT and word-level WebVTT, and caption images.

Captions always show the script's own words (the text that was spoken), never a transcript.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import srt
from PIL import Image, ImageDraw, ImageFont

from avatar_daemon import CaptionStyle

from .tts import Word

# DejaVu Sans Bold, shipped with the package (from Debian's fonts-dejavu-core 2.37; Bitstream Vera
# licence, DejaVu changes public domain: fonts/LICENSE-DejaVu), so captions look the same everywhere.
BUNDLED_FONT = Path(__file__).parent / "fonts" / "DejaVuSans-Bold.ttf"


@lru_cache(maxsize=32)
def font(size: int, path: str | None = None) -> ImageFont.FreeTypeFont:
    """The brand's font if it names one that exists, else the bundled one."""
    return ImageFont.truetype(str(path) if path and Path(path).is_file() else str(BUNDLED_FONT), size)


@dataclass
class Cue:
    words: list[Word]

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def build_cues(words: list[Word], style: CaptionStyle, words_per_line: int | None = None) -> list[Cue]:
    """Short phrases (karaoke) or subtitle lines, broken at sentence ends and commas."""
    max_words, max_chars = (3, 22) if style == CaptionStyle.karaoke else (12, 64)
    if words_per_line:
        max_words, max_chars = words_per_line, max(max_chars, words_per_line * 12)
    cues: list[Cue] = []
    current: list[Word] = []
    for w in words:
        if not w.text.strip():
            continue
        if current and (len(current) >= max_words or len(" ".join(x.text for x in current + [w])) > max_chars
                        or w.start - current[-1].end > 0.6):
            cues.append(Cue(current))
            current = []
        current.append(w)
        if w.text[-1] in ".!?" or (w.text[-1] in ",;:" and len(current) > max_words // 2):
            cues.append(Cue(current))
            current = []
    if current:
        cues.append(Cue(current))
    return cues


def _time(t: float) -> timedelta:
    return timedelta(milliseconds=round(t * 1000))


def to_srt(cues: list[Cue]) -> str:
    return srt.compose([srt.Subtitle(i, _time(c.start), _time(c.end), c.text) for i, c in enumerate(cues, 1)])


def _vtt_stamp(t: float) -> str:
    return srt.timedelta_to_srt_timestamp(_time(t)).replace(",", ".")  # WebVTT's stamps are SRT's with a dot


def to_vtt(cues: list[Cue]) -> str:
    """WebVTT with a timestamp tag before every word after the first: players highlight word by word."""
    out = ["WEBVTT", ""]
    for c in cues:
        parts = [c.words[0].text] + [f"<{_vtt_stamp(w.start)}>{w.text}" for w in c.words[1:]]
        out += [f"{_vtt_stamp(c.start)} --> {_vtt_stamp(c.end)}", " ".join(parts), ""]
    return "\n".join(out)


def _greedy(words: list[str], fnt, max_width: float) -> list[list[int]]:
    lines: list[list[int]] = [[]]
    for i in range(len(words)):
        trial = " ".join(words[j] for j in lines[-1] + [i])
        if lines[-1] and fnt.getlength(trial) > max_width:
            lines.append([])
        lines[-1].append(i)
    return lines


def _wrap(words: list[str], fnt, max_width: int) -> list[list[int]]:
    """As few lines as fit `max_width`, as even as they can be: the narrowest width that still
    needs no more lines (CSS's text-wrap: balance), so a subtitle never leaves one word alone below."""
    lines = _greedy(words, fnt, max_width)
    if len(lines) < 2:
        return lines
    lo, hi = max(fnt.getlength(w) for w in words), float(max_width)
    while hi - lo > 2:
        mid = (lo + hi) / 2
        if len(_greedy(words, fnt, mid)) <= len(lines):
            hi = mid
        else:
            lo = mid
    return _greedy(words, fnt, hi)


def render_caption(cue: Cue, style: CaptionStyle, width: int, size: int, colour: tuple[int, int, int],
                   font_path: str | None = None, only: int | None = None, upper: bool = False,
                   box: tuple[int, int, int] | None = None, scale: float = 1.0) -> Image.Image:
    """The cue as an RGBA image `width` wide, or with `only`, just that word, in place.

    Karaoke draws the phrase once and the spoken word over it in the highlight colour, so
    each word costs a word-sized sprite rather than another copy of the whole phrase. The word
    can instead stand on a `box` of that colour, or be drawn `scale` times larger.
    """
    fnt = font(size, font_path)
    words = [w.text.upper() if upper else w.text for w in cue.words]
    lines = _wrap(words, fnt, int(width * 0.9))
    line_h = int(size * 1.25)
    stroke = max(2, size // 12)
    pad = size // 3
    img = Image.new("RGBA", (width, line_h * len(lines) + pad * 2), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if style == CaptionStyle.subtitles and only is None:
        # a soft box behind bottom subtitles keeps them readable on any background
        widest = max(fnt.getlength(" ".join(words[i] for i in line)) for line in lines)
        x0 = (width - widest) / 2 - pad
        d.rounded_rectangle([x0, 0, width - x0, img.height], radius=pad, fill=(0, 0, 0, 150))
    space = fnt.getlength(" ")
    for row, line in enumerate(lines):
        total = sum(fnt.getlength(words[i]) for i in line) + space * (len(line) - 1)
        x = (width - total) / 2
        y = pad + row * line_h
        for i in line:
            wide = fnt.getlength(words[i])
            if only is None or i == only:
                if only is not None and box is not None:
                    d.rounded_rectangle([x - pad / 2, y - pad / 4, x + wide + pad / 2, y + line_h], radius=pad / 2,
                                        fill=box + (255,))
                if only is not None and scale != 1.0:
                    big = font(int(size * scale), font_path)
                    grow = (big.getlength(words[i]) - wide) / 2
                    d.text((x - grow, y - size * (scale - 1) / 2), words[i], font=big, fill=colour + (255,),
                           stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
                else:
                    d.text((x, y), words[i], font=fnt, fill=colour + (255,), stroke_width=stroke if style ==
                           CaptionStyle.karaoke and box is None else 0, stroke_fill=(0, 0, 0, 255))
            x += wide + space
    return img
