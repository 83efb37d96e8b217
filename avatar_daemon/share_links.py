"""Share links: a signed, expiring path that plays one finished video without a token.

The link carries the video's id and its expiry, signed with the daemon's signing key: nothing
is stored, a forged or stretched link fails the signature, and a link stops working at its
expiry on every daemon that shares the key. In the core, not the web layer, because the
webhook notifier (a plugin) hands its receivers these links as well as the API does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import datetime
from functools import lru_cache
from pathlib import Path

KEY_FILE = "http-session.key"


class SigningKey:
    """The key that signs cookies and share links, kept beside the database (0600) so every restart
    honours old ones, and several daemons sharing the data folder honour each other's."""

    def __init__(self, path: Path):
        self.path = path
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                self._key = base64.b64decode(self.path.read_text().strip())
            else:
                key = secrets.token_bytes(32)
                with os.fdopen(fd, "w") as f:
                    f.write(base64.b64encode(key).decode())
                self._key = key
        return self._key

    def sign(self, text: str) -> str:
        return hmac.new(self.key(), text.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=16)
def signing_key(data_dir: Path) -> SigningKey:
    """One key object per data folder: the file is read once, not on every link."""
    return SigningKey(Path(data_dir) / KEY_FILE)


class InvalidLink(Exception):
    """Not a link made here (mistyped, forged or stretched)."""


class ExpiredLink(Exception):
    """A genuine link past its expiry."""


def _signature(key: SigningKey, video_id: int, until: int) -> str:
    return key.sign(f"share:{video_id}.{until}")[:32]


def share_link(data_dir: Path, video_id: int, expires: datetime) -> str:
    """The path (`/shared/<id>.<until>.<signature>`) that plays the video until `expires`; append
    `/page` for a player page, `/thumbnail` for its still, `?download=1` to download it."""
    until = int(expires.timestamp())
    return f"/shared/{video_id}.{until}.{_signature(signing_key(data_dir), video_id, until)}"


def shared_video_id(key: SigningKey, signed: str, now: datetime) -> int:
    """The video a link's last part names, or InvalidLink / ExpiredLink."""
    parts = signed.split(".")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()) or len(parts[0]) > 19:
        raise InvalidLink(signed)
    video_id, until = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(_signature(key, video_id, until), parts[2]):
        raise InvalidLink(signed)
    if until <= now.timestamp():
        raise ExpiredLink(signed)
    return video_id
