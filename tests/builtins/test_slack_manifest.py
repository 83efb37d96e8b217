"""The shipped Slack app manifests create an app the plugin can talk to, in either mode."""

from pathlib import Path

import yaml

from avatar_daemon_plugins.slack.settings import SlackSettings

CONFIG = Path(__file__).parent.parent.parent / "config" / "slack"


def _manifest(mode: str) -> dict:
    return yaml.safe_load((CONFIG / f"manifest-{mode}-mode.yaml").read_text())


def test_both_manifests_declare_the_command_scopes_and_interactivity_the_plugin_uses():
    for mode in ("socket", "http"):
        m = _manifest(mode)
        assert [c["command"] for c in m["features"]["slash_commands"]] == [SlackSettings().command]
        assert {"commands", "chat:write", "files:write"} <= set(m["oauth_config"]["scopes"]["bot"])
        assert m["settings"]["interactivity"]["is_enabled"] is True
        assert m["settings"]["socket_mode_enabled"] is (mode == "socket")


def test_http_manifest_points_slack_at_the_route_the_plugin_serves():
    m = _manifest("http")
    urls = [m["settings"]["interactivity"]["request_url"], m["features"]["slash_commands"][0]["url"]]
    assert all(u.startswith("https://") and u.endswith("/slack/events") for u in urls)
