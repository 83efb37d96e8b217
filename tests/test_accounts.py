"""Platform accounts: daemon.yaml's publishing.accounts, their secrets from the environment or systemd."""

from __future__ import annotations

import pytest

from avatar_daemon.accounts import Accounts, env_name
from avatar_daemon.errors import ConfigError, UnknownNameError
from avatar_daemon.settings import PublishingSettings

SETTINGS = PublishingSettings.model_validate({"accounts": {
    "acme-shorts": {"platform": "youtube", "channel_id": "UC123"},
    "acme-tt": {"platform": "tiktok"}, "acme-tt-2": {"platform": "tiktok", "default": True},
    "acme-ig": {"platform": "instagram"}, "acme-ig-2": {"platform": "instagram"}}})


def test_a_secret_comes_from_the_environment_first_then_a_systemd_credential(tmp_path):
    (tmp_path / "acme-shorts.refresh_token").write_text("from-systemd\n")
    accounts = Accounts(SETTINGS, {"AVATAR_DAEMON_ACME_SHORTS_REFRESH_TOKEN": "from-env",
                                   "CREDENTIALS_DIRECTORY": str(tmp_path)})
    shorts = accounts.get("acme-shorts")
    assert env_name("acme-shorts", "refresh_token") == "AVATAR_DAEMON_ACME_SHORTS_REFRESH_TOKEN"
    assert shorts.secret("refresh_token") == "from-env"
    assert Accounts(SETTINGS, {"CREDENTIALS_DIRECTORY": str(tmp_path)}).get("acme-shorts").secret(
        "refresh_token") == "from-systemd"
    assert shorts.settings == {"channel_id": "UC123"} and shorts.platform == "youtube"
    assert "from-env" not in repr(shorts)


def test_a_missing_secret_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(ConfigError) as err:
        Accounts(SETTINGS, {"CREDENTIALS_DIRECTORY": str(tmp_path)}).get("acme-tt").secret("client_secret")
    assert str(err.value) == (f"account acme-tt (tiktok): no client_secret: set $AVATAR_DAEMON_ACME_TT_CLIENT_SECRET "
                              f"or {tmp_path / 'acme-tt.client_secret'}")
    with pytest.raises(ConfigError, match="or a systemd credential acme-tt.client_secret"):
        Accounts(SETTINGS, {}).get("acme-tt").secret("client_secret")


def test_a_platforms_default_account_is_its_only_one_or_the_one_marked():
    accounts = Accounts(SETTINGS, {})
    assert accounts.default_of("youtube").name == "acme-shorts"
    assert accounts.default_of("tiktok").name == "acme-tt-2"
    with pytest.raises(UnknownNameError, match=r"instagram has 2 accounts \(acme-ig, acme-ig-2\): name one"):
        accounts.default_of("instagram")
    with pytest.raises(UnknownNameError, match="no vimeo account is configured"):
        accounts.default_of("vimeo")
    with pytest.raises(UnknownNameError, match=r"no account named 'nope' \(known: acme-ig, "):
        accounts.get("nope")


def test_account_names_and_platforms_are_checked_in_daemon_yaml():
    with pytest.raises(ValueError, match="accounts"):
        PublishingSettings.model_validate({"accounts": {"Bad Name!": {"platform": "youtube"}}})
    with pytest.raises(ValueError, match="platform"):
        PublishingSettings.model_validate({"accounts": {"ok": {}}})
