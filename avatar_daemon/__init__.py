"""avatar-daemon: research in, talking-avatar videos out.

This module is the public API for plugin authors: import only what `__all__` lists.
"""

from .errors import (
    AvatarDaemonError, ConfigError, InvalidRequest, PayloadError, PluginError, RenderError, ResearchError,
    UnknownNameError,
)
from .fetching import fetch
from .hookspecs import hookimpl
from .interfaces import Notifier, Progress, Renderer, ResearchSource, ScriptWriter, Service
from .models import (
    AvatarProfile, Background, Brand, CaptionLook, CaptionStyle, FormatSpec, Insight, JobEvent, JobState,
    RenderRequest, Notice, RenderResult, Research, Script, VideoTemplate,
)
from .settings import ScriptTemplate, secret
from .spoken import clean_text, estimate_seconds, strip_markup, to_spoken, words_for_seconds
from .numbers import numbers_in_words, say_number
from .decoding import load_json
from .retry import GaveUp, TryAgain, retry_after, retrying
from .timeparse import parse_time

__all__ = [
    "AvatarDaemonError", "AvatarProfile", "Background", "Brand", "CaptionLook", "CaptionStyle", "ConfigError",
    "FormatSpec", "GaveUp", "TryAgain", "retry_after", "retrying",
    "Insight", "InvalidRequest", "JobEvent", "JobState", "Notice", "Notifier", "PayloadError", "PluginError", "Progress", "RenderError", "RenderRequest",
    "RenderResult", "Renderer", "Research", "ResearchError", "ResearchSource", "Script", "ScriptTemplate",
    "ScriptWriter", "Service", "UnknownNameError", "VideoTemplate", "clean_text", "estimate_seconds", "fetch",
    "hookimpl", "load_json", "numbers_in_words", "parse_time", "say_number", "secret", "strip_markup", "to_spoken", "words_for_seconds",
]
