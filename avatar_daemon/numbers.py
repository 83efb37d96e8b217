"""Figures in words, read one way everywhere, so the captions show exactly what the voice says.

Writers put words, not digits, into a script: the local renderer captions the script's text, so
"about two hundred thousand searches" on screen is what the listener hears, and a title's
"200,000+" and a source's "50K+" come out the same way ("more than fifty thousand").
"""

from __future__ import annotations

import math
import re

from num2words import num2words

_SCALES = [(1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand")]
_SCALE_OF = {name: scale for scale, name in _SCALES}
# A figure as research writes it, after to_spoken: "225,273", "200000 plus", "2.5 million", "3rd",
# "1.2.3"; never a digit glued to a word ("H100", "mp3", "GPT-4", "SHA-1"), which is a name.
_FIGURE = re.compile(
    r"(?<![\w.,-])(?P<dotted>\d+(?:\.\d+){2,})(?![\w.])"
    r"|(?<![\w.,-])(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?P<ord>st|nd|rd|th)?"
    r"(?:\s(?P<scale>thousand|million|billion|trillion)\b)?(?P<plus>\s?\+|\splus\b(?!\s*\d))?(?![\w]|\.\d)"
)


def _words(n: int) -> str:
    # num2words writes "one thousand, two hundred": the comma would become a pause in the voice.
    return num2words(n).replace(",", "")


def say_number(value: float, rough: bool = False) -> str:
    """A figure in words; `rough` rounds a source's big counts to the size a listener keeps.

    Rough reading keeps two significant figures from a thousand up and says "about" when that
    changed the figure: 225,273 stars is "about two hundred and thirty thousand stars".
    """
    if value < 0:
        return "minus " + say_number(-value, rough)
    if rough and value >= 1000:
        step = 10 ** (len(str(int(value))) - 2)
        rounded = math.floor(value / step + 0.5) * step  # half up: round() would make 2.45 million 2.4
        return ("about " if rounded != value else "") + _sized(rounded)
    if float(value).is_integer():
        return _words(int(value))
    whole, frac = f"{value:.2f}".rstrip("0").split(".")
    return f"{_words(int(whole))} point {_digits(frac)}"


def _sized(value: float) -> str:
    """A big round figure the way people say it: "one thousand two hundred", "two and a half million"."""
    scale, name = next(((s, n) for s, n in _SCALES if value >= s), (1, ""))
    lead = value / scale
    whole = int(lead)
    if name in ("", "thousand") and float(value).is_integer():
        return _words(int(value))
    if lead == whole:
        return f"{_words(whole)} {name}"
    if lead - whole == 0.5:
        return f"{_words(whole)} and a half {name}"
    return f"{_words(whole)} point {_digits(f'{lead - whole:.1f}'[2:])} {name}"


def _digits(digits: str) -> str:
    return " ".join(num2words(int(d)) for d in digits)


def _figure(m: re.Match, rough: bool = False) -> str:
    if m.group("dotted"):  # a version such as 1.2.3
        return " point ".join(_words(int(p)) for p in m.group("dotted").split("."))
    raw, frac, scale = m.group("int").replace(",", ""), m.group("frac"), m.group("scale")
    if m.group("ord") and not frac:
        spoken = num2words(int(raw), to="ordinal").replace(",", "")
    elif scale and frac and frac != "5":  # 1.25 million as written, not rounded
        spoken = f"{_words(int(raw))} point {_digits(frac)} {scale}"
    elif scale:
        spoken = _sized(float(f"{raw}.{frac or 0}") * _SCALE_OF[scale])
    elif frac:
        spoken = f"{_words(int(raw))} point {_digits(frac)}"
    elif len(raw) == 4 and 1900 <= int(raw) <= 2099 and "," not in m.group("int"):
        spoken = num2words(int(raw), to="year")  # "in 2024": twenty twenty-four
    else:
        spoken = say_number(int(raw), rough)
    if m.group("plus"):
        return "more than " + spoken.removeprefix("about ")
    return spoken


def numbers_in_words(text: str, rough: bool = False) -> str:
    """Every figure in `text` (already through to_spoken) written out as it is read aloud.

    `rough` is for a source's own counts (stars, searches): see say_number. A figure someone
    wrote in a title is theirs, read as written.
    """
    return _FIGURE.sub(lambda m: _figure(m, rough), text)
