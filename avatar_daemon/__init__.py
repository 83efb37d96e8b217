"""avatar-daemon: research in, talking-avatar videos out.

This module is the public API for plugin authors: import only what `__all__` lists. The
contract itself (hooks, the Protocols of what you register, and `Host`, what you may use
of the daemon) is one page: `avatar_daemon.hookspecs`. Importing this module is light: it
pulls in no HTTP library, so a plugin that only parses files loads fast.
"""

# What you register, and what you may use of the daemon you are handed.
from .hookspecs import (
    Account, Check, ChecksPhotos, CountsApiCalls, DrawsLogos, DrawsPreviews, DryRuns, FetchesLive, HasOwnTimeout, Host, KeepsOldNotifyKeys, Notifier,
    NotifyTarget, Progress, Publisher, Renderer, ResearchSource, ScriptLimits, ScriptWriter, Service, SyncsCatalogue, TakesNotices, Upload,
    WaitsRemotely, hookimpl,
)

# The models that cross the contract.
from .models import (
    AvatarProfile, Background, Brand, CaptionLook, CaptionStyle, Figures, FormatSpec, Insight, JobEvent, JobState, Notice,
    Posted, PublishOptions, PublishVideo, RemoteWait, RenderRequest, RenderResult, Research, Script,
)
from .settings import ScriptTemplate
from .findings import Finding

# The errors a plugin raises (each carries a sentence for the person who asked).
from .errors import (
    AvatarDaemonError, ConfigError, InvalidRequest, PayloadError, PublishError, QuotaWait, RenderError, ResearchError,
    UnknownNameError,
)

# Helpers: settings, untrusted input, the network, and spoken text.
from .settings import secret
from .plugin_setup import per_daemon, plugin_settings
from .decoding import load_json
from .timeparse import parse_time
from .fetching import fetch
from .oauth import AccessToken, AccessTokens
from .retry import GaveUp, TryAgain, backoff, retry_after, retrying
from .spoken import clean_text, estimate_seconds, to_spoken, words_for_seconds
from .numbers import numbers_in_words, say_number
from .share_links import share_link

__all__ = [
    # what you register
    "hookimpl", "Host", "ResearchSource", "FetchesLive", "ScriptWriter", "ScriptLimits", "Renderer", "Progress",
    "DrawsPreviews", "DrawsLogos", "ChecksPhotos", "DryRuns", "SyncsCatalogue", "CountsApiCalls", "HasOwnTimeout", "WaitsRemotely", "Notifier", "TakesNotices",
    "Service", "NotifyTarget", "KeepsOldNotifyKeys", "Publisher", "Account", "Upload", "Check",
    # models
    "AvatarProfile", "Background", "Brand", "CaptionLook", "CaptionStyle", "FormatSpec", "Insight", "JobEvent",
    "JobState", "Notice", "RemoteWait", "RenderRequest", "RenderResult", "Research", "Script", "ScriptTemplate", "PublishVideo",
    "PublishOptions", "Posted", "Figures", "Finding",
    # errors
    "AvatarDaemonError", "ConfigError", "InvalidRequest", "PayloadError", "RenderError", "ResearchError",
    "UnknownNameError", "PublishError", "QuotaWait",
    # helpers
    "plugin_settings", "per_daemon", "secret", "load_json", "parse_time", "fetch", "AccessToken", "AccessTokens", "GaveUp", "TryAgain", "backoff",
    "retry_after", "retrying", "clean_text", "estimate_seconds", "to_spoken", "words_for_seconds", "numbers_in_words",
    "say_number", "share_link",
]
