"""Small readers the source plugins share: research files are strangers' JSON, in any shape."""

from __future__ import annotations

import math
from typing import Any, Callable

SAMPLE = 200
"""Elements looked at to recognise a list: enough to judge, cheap on a 10,000-item save."""


def list_score(items: list, looks_like: Callable[[Any], bool], confidence: float) -> float:
    """`confidence` for a list of the source's own elements, less the more of it is something else.

    One element of another shape (a null, a deleted stub, a stray string) never stops a list
    from being recognised; a list mostly of other things scores lower, so a better reader wins.
    """
    seen = [x for x in items[:SAMPLE] if x is not None]
    mine = sum(1 for x in seen if looks_like(x))
    return confidence * (0.5 + 0.5 * mine / len(seen)) if mine else 0.0


def number(value: Any, *, text: bool = True) -> float | None:
    """A count as saved: 5, 5.0, "5" or "40,365"; None for anything else (booleans, inf and NaN too).

    `text=False` takes JSON numbers only, where a string is a label ("high", "+250%").
    """
    if isinstance(value, bool) or (isinstance(value, str) and not text):
        return None
    if isinstance(value, str):
        value = value.replace(",", "").strip()
    if not isinstance(value, (str, int, float)):
        return None
    try:
        result = float(value)
    except (ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []
