"""What every render needs and takes seconds to load, loaded once in the forkserver (child.py).

Each render is a child forked from that server, so it finds the Piper voice (about a second to
import onnxruntime and another to build its session) and scipy's signal code (pyloudnorm, the
limiter) already in memory, shared with its siblings, instead of loading them again per video.
Forking after the voice is loaded is safe: its session runs on the calling thread only
(intra_op_num_threads = 1), so no onnxruntime worker is left behind in the fork.
A voice that cannot load here is not an error yet: the render that needs it says why.
"""

from __future__ import annotations

import importlib
import logging

from . import mix, tts

log = logging.getLogger(__name__)


def load() -> None:
    try:
        tts.piper_voice()
        mix._meter()
        for name in ("scipy.ndimage", "scipy.signal"):  # the limiter's filters and resampler
            importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - the forkserver must start whatever happens here
        log.debug("render preload: %s", exc)


load()
