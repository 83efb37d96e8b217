"""Browser access over real HTTP on loopback: session cookies, CSRF, WebSocket tickets and subprotocols."""

from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.test_http_api import TOKENS, users_yaml

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SCRIPT = {"script_title": "Hello", "script_content": "Hello from the studio. This is a test."}


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now


@pytest.fixture
async def site(tmp_path):
    users_yaml(tmp_path)
    clock = Clock()
    plugin = RecordingPlugin(FakeRenderer(seconds=0.2))
    settings = make_settings(tmp_path, users_file="users.yaml", http={"port": 0, "session_hours": 2})
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=settings, clock=clock)
    async with running(daemon):
        base = f"http://127.0.0.1:{daemon.http_port}"
        # unsafe=True: aiohttp's jar otherwise keeps no cookies from an IP address such as 127.0.0.1
        async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            yield daemon, browser, clock, plugin


async def sign_in(browser, who="alice"):
    async with browser.post("/session", json={"token": TOKENS[who]}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json(), resp.headers.getall("Set-Cookie")


async def test_a_token_becomes_an_httponly_strict_cookie_and_a_csrf_token(site):
    daemon, browser, _, _ = site
    async with browser.post("/session", json={"token": "not-a-token"}) as resp:
        assert resp.status == 401 and "token: not a token in users.yaml" in (await resp.json())["error"]
    # A form on another site can post text/plain that parses as JSON: it signs nobody in.
    form_body = '{"token": "%s", "x": "="}' % TOKENS["alice"]
    async with browser.post("/session", data=form_body, headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415 and "Content-Type: application/json" in (await resp.json())["error"]
    assert not browser.cookie_jar.filter_cookies(browser._base_url)
    me, cookies = await sign_in(browser, "bob")
    assert {k: me[k] for k in ("user", "workspace", "tier", "admin")} == \
        {"user": "U2", "workspace": "W1", "tier": "pro", "admin": False}
    [cookie] = cookies
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert parts[0].startswith("avatar_session=") and "httponly" in parts and "samesite=strict" in parts
    assert "path=/" in parts and "secure" not in parts  # plain http here; https gets Secure
    assert TOKENS["bob"] not in cookie  # the cookie never holds the token itself
    async with browser.get("/session") as resp:
        assert resp.status == 200 and await resp.json() == me
    async with browser.get("/videos") as resp:  # a read needs only the cookie
        assert resp.status == 200
    async with browser.delete("/session") as resp:
        assert resp.status == 200
    async with browser.get("/session") as resp:
        assert resp.status == 401
    async with browser.get("/videos") as resp:
        assert resp.status == 401 and "POST /session" in (await resp.json())["error"]


async def test_a_cookie_request_that_changes_state_needs_the_csrf_header(site):
    _, browser, _, _ = site
    me, _ = await sign_in(browser)
    async with browser.post("/videos", json=SCRIPT) as resp:
        body = await resp.json()
        assert resp.status == 403 and body["field"] == "X-CSRF-Token" and "X-CSRF-Token" in body["error"]
    async with browser.post("/videos", json=SCRIPT, headers={"X-CSRF-Token": "0" * 64}) as resp:
        assert resp.status == 403
    async with browser.post("/videos", json=SCRIPT, headers={"X-CSRF-Token": me["csrf_token"]}) as resp:
        assert resp.status == 201
        video = (await resp.json())["videos"][0]
    assert video["user_id"] == "U1" and video["workspace_id"] == "W1"
    # A bearer token is not sent by a browser on its own, so it needs no CSRF token.
    async with aiohttp.ClientSession(browser._base_url) as script:
        async with script.post("/videos", json=SCRIPT, headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as r:
            assert r.status == 201


async def test_sessions_expire_and_a_forged_or_revoked_one_is_refused(site, tmp_path):
    daemon, browser, clock, _ = site
    await sign_in(browser, "alice")
    [cookie] = [c for c in browser.cookie_jar if c.key == "avatar_session"]
    digest, stamp, sig = cookie.value.split(".")
    forged = f"{digest}.{int(stamp) + 86400}.{sig}"  # a longer life, same signature
    async with aiohttp.ClientSession(browser._base_url, cookies={"avatar_session": forged}) as other:
        async with other.get("/videos") as resp:
            assert resp.status == 401 and "sign in again" in (await resp.json())["error"]
    clock.now = START + timedelta(hours=1, minutes=59)
    async with browser.get("/session") as resp:
        assert resp.status == 200
    # The token is taken out of users.yaml: its sessions end with it.
    users = daemon.settings.users
    daemon.settings.users = users.model_copy(update={"api_tokens": [t for t in users.api_tokens if t.name != "alice"]})
    async with browser.get("/videos") as resp:
        assert resp.status == 401 and "no longer in users.yaml" in (await resp.json())["error"]
    daemon.settings.users = users
    clock.now = START + timedelta(hours=2, seconds=1)
    async with aiohttp.ClientSession(browser._base_url, cookies={"avatar_session": cookie.value}) as late:
        async with late.get("/videos") as resp:  # the browser would have dropped it; a replay is refused too
            assert resp.status == 401 and "expired" in (await resp.json())["error"]


async def test_a_websocket_opens_with_a_single_use_ticket_or_the_bearer_subprotocol(site):
    daemon, browser, clock, plugin = site
    me, _ = await sign_in(browser)
    async with browser.post("/videos", json=SCRIPT, headers={"X-CSRF-Token": me["csrf_token"]}) as resp:
        video = (await resp.json())["videos"][0]
    async with browser.post("/ws-tickets") as resp:
        assert resp.status == 403  # signed in by cookie: the ticket too needs the CSRF header
    async with browser.post("/ws-tickets", headers={"X-CSRF-Token": me["csrf_token"]}) as resp:
        assert resp.status == 201
        ticket = await resp.json()
    assert ticket["expires_in"] == 30
    async with aiohttp.ClientSession(browser._base_url) as anonymous:  # no cookie, no header: a browser's WebSocket
        path = f"/videos/{video['id']}/status-ws"
        async with anonymous.ws_connect(f"{path}?ticket={ticket['ticket']}") as ws:
            states = [(await ws.receive_json())["status"]]
            while states[-1] != "completed":
                states.append((await ws.receive_json())["status"])
        async with browser.post("/ws-tickets", headers={"X-CSRF-Token": me["csrf_token"]}) as resp:
            spare = (await resp.json())["ticket"]
        async with anonymous.get(f"/videos/{video['id']}?ticket={spare}") as resp:
            assert resp.status == 401  # a ticket opens a WebSocket and nothing else
        with pytest.raises(aiohttp.WSServerHandshakeError) as used:
            await anonymous.ws_connect(f"{path}?ticket={ticket['ticket']}")
        assert used.value.status == 401
        async with anonymous.ws_connect(path, protocols=("bearer", TOKENS["alice"])) as ws:
            assert ws.protocol == "bearer" and (await ws.receive_json())["status"] == "completed"
        with pytest.raises(aiohttp.WSServerHandshakeError) as wrong:
            await anonymous.ws_connect(path, protocols=("bearer", TOKENS["eve"]))  # another workspace
        assert wrong.value.status == 403
        async with browser.post("/ws-tickets", headers={"X-CSRF-Token": me["csrf_token"]}) as resp:
            late = (await resp.json())["ticket"]
        clock.now = START + timedelta(seconds=31)
        with pytest.raises(aiohttp.WSServerHandshakeError) as expired:
            await anonymous.ws_connect(f"{path}?ticket={late}")
        assert expired.value.status == 401
    # The cookie opens one too, but only from this server's own pages.
    async with browser.ws_connect(path) as ws:
        assert (await ws.receive_json())["status"] == "completed"
    with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
        await browser.ws_connect(path, headers={"Origin": "https://evil.example"})
    assert foreign.value.status == 403
    assert "completed" in states


async def test_cors_answers_only_the_configured_origins(tmp_path):
    users_yaml(tmp_path)
    settings = make_settings(tmp_path, users_file="users.yaml",
                             http={"port": 0, "cors_origins": ["https://studio.example"]})
    async with running(make_daemon(tmp_path, plugins=[RecordingPlugin()], settings=settings)) as daemon, \
            aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-csrf-token"}
        async with http.options("/videos", headers={"Origin": "https://studio.example", **ask}) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "https://studio.example"
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
            assert "X-CSRF-Token" in resp.headers["Access-Control-Allow-Headers"]
        async with http.options("/videos", headers={"Origin": "https://evil.example", **ask}) as resp:
            assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
            assert "https://evil.example is not in http.cors_origins" in (await resp.json())["error"]
        auth = {"Authorization": f"Bearer {TOKENS['alice']}"}
        async with http.get("/videos", headers={"Origin": "https://studio.example", **auth}) as resp:
            assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "https://studio.example"
            assert "Location" in resp.headers["Access-Control-Expose-Headers"]
        async with http.get("/videos/99", headers={"Origin": "https://studio.example", **auth}) as resp:
            assert resp.status == 404 and resp.headers["Access-Control-Allow-Origin"] == "https://studio.example"
        async with http.get("/videos", headers={"Origin": "https://evil.example", **auth}) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers


async def test_no_origin_is_allowed_by_default(site):
    _, browser, _, _ = site
    async with browser.options("/videos", headers={"Origin": "http://localhost:3000",
                                                   "Access-Control-Request-Method": "GET"}) as resp:
        assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
