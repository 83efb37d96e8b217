"""The HTTP API: a real server on 127.0.0.1, a real aiohttp client, real SQLite, and every refusal."""

import hashlib
import json

import aiohttp
import av
import pytest
import yaml

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.conftest import fixture_bytes
from tests.media_server import MediaServer

TOKENS = {"alice": "tok-alice-free-W1", "bob": "tok-bob-W1", "eve": "tok-eve-W2", "root": "tok-root-admin"}


def users_yaml(tmp_path):
    def entry(name, workspace, user, **extra):
        return {"name": name, "sha256": hashlib.sha256(TOKENS[name].encode()).hexdigest(), "workspace": workspace,
                "user": user, **extra}

    (tmp_path / "users.yaml").write_text(yaml.safe_dump({
        "default_tier": "free",
        "workspaces": {"W1": {"tier": "free", "users": {"U2": "pro"}}, "W2": {"tier": "enterprise"}},
        "api_tokens": [entry("alice", "W1", "U1"), entry("bob", "W1", "U2"), entry("eve", "W2", "U9"),
                       entry("root", "W0", "U0", admin=True)],
    }))


@pytest.fixture
async def api(tmp_path):
    users_yaml(tmp_path)
    plugin = RecordingPlugin(FakeRenderer(seconds=0.2))
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=make_settings(tmp_path, users_file="users.yaml"))
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        yield Api(http, daemon, plugin)


class Api:
    def __init__(self, http, daemon, plugin):
        self.http, self.daemon, self.plugin = http, daemon, plugin

    async def call(self, method, path, who="alice", **kw):
        headers = kw.pop("headers", {})
        if who:
            headers["Authorization"] = f"Bearer {TOKENS[who]}"
        async with self.http.request(method, path, headers=headers, **kw) as resp:
            body = await resp.read()
            try:
                data = json.loads(body)
            except ValueError:
                data = body
            return resp.status, data, resp.headers

    async def video(self, who="alice", **fields):
        body = {"script_title": "Hello", "script_content": "Hello from the API. This is a test.", **fields}
        status, data, _ = await self.call("POST", "/videos", who, json=body)
        assert status == 201, data
        return data["videos"][0]


async def test_tokens_are_required_and_checked(api):
    status, data, headers = await api.call("GET", "/videos", who=None)
    assert status == 401 and "bearer token is required" in data["error"] and headers["WWW-Authenticate"] == "Bearer"
    status, data, _ = await api.call("GET", "/videos", who=None, headers={"Authorization": "Bearer nope"})
    assert status == 401 and "not one in users.yaml" in data["error"]
    assert (await api.call("GET", "/healthz", who=None))[0] == 200


async def test_avatars_are_limited_to_the_callers_tier(api):
    _, free, _ = await api.call("GET", "/avatars", "alice")
    _, pro, _ = await api.call("GET", "/avatars", "bob")  # bob's own tier in W1 is pro
    _, ent, _ = await api.call("GET", "/avatars", "eve")
    assert free["tier"] == "free" and {a["tier"] for a in free["avatars"]} == {"free"}
    assert len(free["avatars"]) < len(pro["avatars"]) < len(ent["avatars"]) == 8
    premium = next(a for a in ent["avatars"] if a["tier"] == "enterprise")
    status, data, _ = await api.call("GET", f"/avatars/{premium['id']}", "alice")
    assert status == 403 and f"avatar {premium['id']!r} needs the enterprise tier; alice is on the free tier" \
        == data["error"]
    assert (await api.call("GET", "/avatars/nobody", "alice"))[0] == 404


class CatalogueRenderer(FakeRenderer):
    """A renderer with a remote catalogue: it can draw only the profiles that carry its id."""

    name = "studio"

    async def sync_catalogue(self):
        return []


async def test_each_avatar_lists_the_renderers_the_registry_says_can_draw_it(tmp_path):
    users_yaml(tmp_path)
    settings = make_settings(tmp_path, users_file="users.yaml")
    sarah = settings.avatars["sarah"]
    settings.avatars["sarah"] = sarah.model_copy(update={"renderer_ids": {**sarah.renderer_ids, "studio": "s-1"}})
    settings.avatars["mike"] = settings.avatars["mike"].model_copy(update={"renderer_ids": {}})
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(CatalogueRenderer())], settings=settings)
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        api = Api(http, daemon, None)
        _, listed, _ = await api.call("GET", "/avatars", "eve")
        _, one, _ = await api.call("GET", "/avatars/mike", "eve")
    by_id = {a["id"]: a["renderers"] for a in listed["avatars"]}
    # local has no catalogue, so it draws everyone; heygen and studio only the profiles with their id
    assert by_id["sarah"] == ["heygen", "local", "studio"]
    assert by_id["mike"] == one["renderers"] == ["local"]
    assert by_id["emma"] == ["heygen", "local"]


async def test_avatar_previews_are_drawn_once_and_served_without_a_token(api):
    _, listed, _ = await api.call("GET", "/avatars", "alice")
    url = next(a for a in listed["avatars"] if a["id"] == "sarah")["preview_image_url"]
    assert url == "/avatars/sarah/preview.jpg"
    status, image, headers = await api.call("GET", url, None)
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and image[:2] == b"\xff\xd8"
    drawn = (api.daemon.settings.data_dir / "previews/sarah.jpg").stat().st_mtime
    assert (await api.call("GET", url, None))[0] == 200
    assert (api.daemon.settings.data_dir / "previews/sarah.jpg").stat().st_mtime == drawn  # cached
    assert (await api.call("GET", "/avatars/sarah/preview.gif", None))[0] == 404
    assert (await api.call("GET", "/avatars/nobody/preview.jpg", None))[0] == 404


async def test_videos_are_made_seen_and_listed_by_workspace_only(api):
    mine = await api.video("alice", aspect_ratio="16:9", voice_speed=1.2)
    assert mine["format"] == "youtube" and mine["status"] == "queued" and mine["workspace_id"] == "W1"
    theirs = await api.video("eve")
    assert (await api.call("GET", f"/videos/{mine['id']}", "bob"))[0] == 200  # same workspace
    status, data, _ = await api.call("GET", f"/videos/{mine['id']}", "eve")
    assert status == 403 and "belongs to another workspace" in data["error"]
    for path in (f"/videos/{theirs['id']}/status", f"/videos/{theirs['id']}/download",
                 f"/videos/{theirs['id']}/analytics"):
        assert (await api.call("GET", path, "alice"))[0] == 403, path
    assert (await api.call("DELETE", f"/videos/{theirs['id']}", "alice"))[0] == 403
    assert (await api.call("POST", f"/videos/{theirs['id']}/events", "alice", json={"event": "view"}))[0] == 403
    _, listed, _ = await api.call("GET", "/videos", "alice")
    assert [v["id"] for v in listed["videos"]] == [mine["id"]]
    _, everything, _ = await api.call("GET", "/videos", "root")
    assert {v["id"] for v in everything["videos"]} == {mine["id"], theirs["id"]}
    await wait_until(lambda: api.plugin.notifier.states(mine["id"])[-1:] == ["completed"])
    _, status_body, _ = await api.call("GET", f"/videos/{mine['id']}/status", "alice")
    assert status_body["status"] == "completed" and status_body["video_url"] == f"/videos/{mine['id']}/download"
    request = api.plugin.renderer.requests[0]
    assert request.voice_speed == 1.2 and request.script.title == "Hello"


async def test_an_idempotency_key_makes_a_retry_find_the_first_video(api):
    body = {"script_title": "Once", "script_content": "Only one of these, please."}
    key = {"Idempotency-Key": "client-retry-7"}
    first = await api.call("POST", "/videos", "alice", json=body, headers=dict(key))
    again = await api.call("POST", "/videos", "alice", json=body, headers=dict(key))
    other = await api.call("POST", "/videos", "alice", json=body)
    someone_else = await api.call("POST", "/videos", "eve", json=body, headers=dict(key))
    too_long = await api.call("POST", "/videos", "alice", json=body, headers={"Idempotency-Key": "k" * 201})
    assert too_long[:2] == (400, {"error": "Idempotency-Key: must be 1 to 200 characters",
                                  "field": "Idempotency-Key"})
    assert (first[0], again[0], other[0], someone_else[0]) == (201, 200, 201, 201)
    assert first[1]["videos"][0]["id"] == again[1]["videos"][0]["id"] != other[1]["videos"][0]["id"]
    assert someone_else[1]["videos"][0]["workspace_id"] == "W2"


async def test_listing_pages_and_filters(api):
    ids = [(await api.video("alice"))["id"] for _ in range(3)]
    _, page, _ = await api.call("GET", "/videos?limit=2", "alice")
    assert [v["id"] for v in page["videos"]] == ids[:0:-1] and page["next"]
    _, rest, _ = await api.call("GET", page["next"], "alice")
    assert [v["id"] for v in rest["videos"]] == ids[:1]
    status, data, _ = await api.call("GET", "/videos?status=melted", "alice")
    assert status == 400 and data["field"] == "status"
    assert (await api.call("GET", "/videos?limit=0", "alice"))[0] == 400
    status, data, _ = await api.call("GET", "/videos?limt=1", "alice")  # a typo must not list fifty
    assert status == 400 and data["field"] == "limt" and "known: before, limit, status" in data["error"]


@pytest.mark.parametrize("body, status, field, words", [
    ({"script_title": "x"}, 422, "script_content", "Field required"),
    ({"script_title": "x", "script_content": "y", "voice_speed": 3}, 422, "voice_speed", "less than or equal"),
    ({"script_title": "x", "script_content": "y", "colour": "red"}, 422, "colour", "Extra inputs"),
    ({"script_title": "x", "script_content": "y", "format": "vhs"}, 422, "format", "no format 'vhs'"),
    ({"script_title": "x", "script_content": "y", "avatar_profile_id": "alexander"}, 403, "avatar_profile_id",
     "needs the enterprise tier"),
    ({"script_title": "x", "script_content": "y", "aspect_ratio": "4:3"}, 422, "aspect_ratio", "Input should be"),
    ({"script_title": "x", "script_content": "y", "background": {"type": "color", "colour": "#ff0000"}}, 422,
     "background.colour", "Extra inputs"),
    ({"script_title": "x", "script_content": "y", "background": {"type": "color", "value": "red"}}, 422,
     "background.value", "should match pattern"),
    ({"script_title": "x", "script_content": "y", "background": {"type": "image"}}, 422, "background",
     "an image background needs a url"),
    ({"script_title": "x", "script_content": "y", "narration": {"url": "https://x.test/a.wav", "path": "/a"}}, 422,
     "narration.path", "Extra inputs"),
])
async def test_bad_requests_name_the_field_and_reason(api, body, status, field, words):
    got, data, _ = await api.call("POST", "/videos", "alice", json=body)
    assert got == status and data["field"] == field and words in data["error"]


async def test_malformed_and_oversized_bodies(api):
    status, data, _ = await api.call("POST", "/videos", "alice", data=b"{not json",
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in data["error"]
    status, data, _ = await api.call("POST", "/videos", "alice", json={"script_title": "x",
                                                                       "script_content": "y" * (2 * 1024 * 1024)})
    assert status == 413 and "limit" in data["error"]
    assert (await api.call("GET", "/healthz", None))[0] == 200  # still serving


async def test_videos_from_stored_or_inline_research(api):
    ingested = await api.daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
    _, research, _ = await api.call("GET", "/research", "alice")
    assert research["research"][0]["id"] == ingested.research_id  # inbox research is shared
    status, data, _ = await api.call("POST", "/videos/from-research", "alice",
                                     json={"research_job_id": ingested.research_id, "format": "square"})
    assert status == 201 and data["videos"][0]["format"] == "square" and data["videos"][0]["workspace_id"] == "W1"
    inline = json.loads(fixture_bytes("github_search.json"))
    status, data, _ = await api.call("POST", "/videos/from-research", "bob", json={"research": inline})
    assert status == 201 and data["videos"][0]["user_id"] == "U2"
    status, data, _ = await api.call("POST", "/videos/from-research", "bob", json={"research": {"nothing": 1}})
    assert status == 422 and data["field"] == "research"
    status, data, _ = await api.call("POST", "/videos/from-research", "bob", json={})
    assert status == 422 and "not both or neither" in data["error"]
    assert (await api.call("POST", "/videos/from-research", "bob", json={"research_job_id": 999}))[0] == 404


async def test_cancel_then_nothing_left_to_cancel(tmp_path):
    users_yaml(tmp_path)
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(FakeRenderer(seconds=30))],
                         settings=make_settings(tmp_path, users_file="users.yaml"))
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        api = Api(http, daemon, None)
        video = await api.video("alice")
        await wait_until(lambda: video["id"] in daemon.jobs.running)
        status, data, _ = await api.call("DELETE", f"/videos/{video['id']}", "bob")
        assert status == 200 and data["status"] == "cancelled"
        status, data, _ = await api.call("DELETE", f"/videos/{video['id']}", "bob")
        assert status == 409 and "already ended (cancelled)" in data["error"]


async def test_download_supports_range_and_analytics_add_up(api):
    video = await api.video("alice")
    await wait_until(lambda: api.plugin.notifier.states(video["id"])[-1:] == ["completed"])
    path = f"/videos/{video['id']}/download"
    status, whole, headers = await api.call("GET", path, "alice")
    assert status == 200 and whole.startswith(b"Hello") and "attachment" in headers["Content-Disposition"]
    assert headers["Content-Type"] == "video/mp4"  # what the document promises, whatever the file is called
    status, part, _ = await api.call("GET", path, "alice", headers={"Range": "bytes=6-9"})
    assert status == 206 and part == whole[6:10]
    for bad in ("bytes=9-2", "bytes=abc", "pages=1-2", "bytes=999-"):
        assert (await api.call("GET", path, "alice", headers={"Range": bad}))[0] == 416, bad
    for event, platform in (("view", "tiktok"), ("view", "tiktok"), ("share", "youtube")):
        assert (await api.call("POST", f"/videos/{video['id']}/events", "bob",
                               json={"event": event, "platform": platform}))[0] == 201
    status, data, _ = await api.call("POST", f"/videos/{video['id']}/events", "bob", json={"event": "like"})
    assert status == 422 and data["field"] == "event"
    _, mine, _ = await api.call("GET", f"/videos/{video['id']}/analytics", "alice")
    platforms = {p["key"]: p for p in mine["by_platform"]}
    assert platforms["tiktok"]["view"] == 2 and platforms["youtube"]["share"] == 1
    assert platforms["api"]["download"] == 1  # the ranged request was not a second download
    _, totals, _ = await api.call("GET", "/analytics", "alice")
    assert totals["by_video"] == [{"key": video["id"], "download": 1, "share": 1, "view": 2}]
    _, others, _ = await api.call("GET", "/analytics", "eve")
    assert others["by_video"] == []


async def test_campaigns_are_files_and_need_permission(api, tmp_path):
    body = {"name": "api-weekly", "sources": [{"source": "hackernews"}],
            "schedule": {"every": "weekly", "day": "friday", "at": "16:00", "timezone": "Europe/London"}}
    status, data, _ = await api.call("POST", "/campaigns", "eve", json=body)
    assert status == 403 and "may not manage campaigns" in data["error"]
    status, data, _ = await api.call("POST", "/campaigns", "root", json=body)
    assert status == 201 and data["schedule"] == "weekly on friday at 16:00 Europe/London"
    assert "every: weekly" in (tmp_path / "campaigns/api-weekly.yaml").read_text()
    status, data, _ = await api.call("POST", "/campaigns", "root", json={**body, "schedule": {"every": "hourly"}})
    assert status == 422 and data["field"].startswith("schedule.every")
    status, data, _ = await api.call("PATCH", "/campaigns/api-weekly", "root", json={"paused": True})
    assert status == 200 and data["paused"] is True
    assert (await api.daemon.store.campaign_row("api-weekly")).paused
    status, data, _ = await api.call("POST", "/campaigns/api-weekly/run", "root")
    assert status == 201 and data["message"].startswith("campaign api-weekly (manual)")
    _, listed, _ = await api.call("GET", "/campaigns", "alice")
    assert [c["name"] for c in listed["campaigns"]] == ["api-weekly"] and listed["campaigns"][0]["runs"] == 1
    assert (await api.call("PATCH", "/campaigns/nope", "root", json={"paused": True}))[0] == 404


async def test_booleans_in_request_bodies_are_json_booleans_not_strings_or_numbers(api, tmp_path):
    """pydantic would read "yes", "1" and 0 as booleans; a body that says them is refused naming the field."""
    body = {"name": "strict", "sources": [{"source": "hackernews"}], "schedule": {"every": "daily"}}
    assert (await api.call("POST", "/campaigns", "root", json=body))[0] == 201
    for wrong in ("yes", "true", 1, 0, None):
        status, data, _ = await api.call("PATCH", "/campaigns/strict", "root", json={"paused": wrong})
        assert status == 422 and data["field"] == "paused", (wrong, data)
        assert "JSON boolean, true or false" in data["error"]
    assert not (await api.daemon.store.campaign_row("strict")).paused
    for field, value in (("active", "no"), ("captions", "off"), ("split", 1)):
        status, data, _ = await api.call("POST", "/campaigns", "root", json={**body, field: value})
        assert status == 422 and data["field"] == field, (field, data)
    status, data, _ = await api.call("POST", "/campaigns", "root", json={**body, "publish": {"made_for_kids": "no"}})
    assert status == 422 and data["field"] == "publish.made_for_kids"
    status, data, _ = await api.call("POST", "/campaigns", "root", json={
        "name": "Seed", "source_tools": ["reddit"], "is_active": "true"})
    assert status == 422 and data["field"] == "is_active"
    for field in ("enable_captions", "split"):
        status, data, _ = await api.call("POST", "/videos", "alice", json={
            "script_title": "Hi", "script_content": "Hello there.", field: "yes"})
        assert status == 422 and data["field"] == field, (field, data)
    status, data, _ = await api.call("PATCH", "/campaigns/strict", "root", json={"paused": True})
    assert status == 200 and data["paused"] is True
    # A YAML file keeps YAML's booleans: `active: no` is false there.
    (tmp_path / "campaigns/yaml.yaml").write_text("name: yaml\nactive: no\nsources: [{source: hackernews}]\n"
                                                  "schedule: {every: daily}\n")
    assert await api.daemon.campaigns.reload() == []
    _, listed, _ = await api.call("GET", "/campaigns", "root")
    assert {c["name"]: c["active"] for c in listed["campaigns"]}["yaml"] is False


async def test_metrics_in_prometheus_text(api):
    video = await api.video("alice")
    await wait_until(lambda: api.plugin.notifier.states(video["id"])[-1:] == ["completed"])
    status, text, headers = await api.call("GET", "/metrics", None)
    text = text.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'avatar_daemon_jobs{state="completed"} 1' in text
    assert "avatar_daemon_render_seconds_count 1" in text and 'avatar_daemon_render_seconds_bucket{le="+Inf"} 1' in text
    assert 'avatar_daemon_inbox_files_total{outcome="processed"} 0' in text


async def test_openapi_documents_exactly_the_routes(api):
    _, doc, _ = await api.call("GET", "/openapi.json", None)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {(r.method, r.resource.canonical) for r in api.daemon.web.app.router.routes() if r.method != "HEAD"}
    assert documented == served
    assert doc["paths"]["/videos"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"] \
        == "#/components/schemas/VideoBody"
    assert "script_content" in doc["components"]["schemas"]["VideoBody"]["properties"]
    # Every answer has its body documented; every refusal is the one error shape.
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code, answer in op["responses"].items():
                assert code in ("101", "416", "default") or answer.get("content"), (method, path, code)
                if code.startswith(("4", "5")) and code != "416":
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorReply"}, (method, path, code)
    video = doc["paths"]["/videos/{id}"]["get"]
    assert video["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/VideoPage"
    assert {"401", "403", "404"} <= set(video["responses"]) and "path" not in doc["components"]["schemas"][
        "PublicBackground"]["properties"]  # remote callers are not offered server paths


async def test_status_websocket_follows_a_real_render(tmp_path):
    users_yaml(tmp_path)
    settings = make_settings(tmp_path, users_file="users.yaml", default_renderer="local")
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin()], settings=settings)
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        api = Api(http, daemon, None)
        video = await api.video("alice", format="square", script_content="Short and sweet. Two sentences.")
        seen = []
        async with http.ws_connect(f"/videos/{video['id']}/status-ws",
                                   headers={"Authorization": f"Bearer {TOKENS['bob']}"}) as ws:
            async for msg in ws:
                seen.append(json.loads(msg.data))
                if seen[-1]["status"] in ("completed", "failed"):
                    break
                status, _, _ = await api.call("GET", f"/videos/{video['id']}/status", "alice")
                assert status == 200  # the server answers while the render runs
        assert seen[0]["id"] == video["id"] and seen[-1]["status"] == "completed", seen
        assert any(m["status"] == "rendering" and 0 < (m["percent"] or 0) < 100 for m in seen)
        assert seen[-1]["video_url"] == f"/videos/{video['id']}/download"
        status, mp4, _ = await api.call("GET", seen[-1]["video_url"], "alice")
    assert status == 200
    (tmp_path / "out.mp4").write_bytes(mp4)
    with av.open(str(tmp_path / "out.mp4")) as box:
        assert box.streams.video[0].codec_context.width == box.streams.video[0].codec_context.height


async def test_websocket_refuses_other_workspaces_before_upgrading(api):
    video = await api.video("eve")
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        async with api.http.ws_connect(f"/videos/{video['id']}/status-ws",
                                       headers={"Authorization": f"Bearer {TOKENS['alice']}"}):
            pass
    assert err.value.status == 403


async def test_ids_too_large_for_the_store_name_nothing(api):
    for path in ("/videos/99999999999999999999", "/videos/9223372036854775808/status", "/videos/-1",
                 "/videos/%D9%A7", "/videos/+7/analytics"):
        status, data, _ = await api.call("GET", path, "alice")
        assert status == 404 and data["error"].startswith("no video"), (path, data)
    status, data, _ = await api.call("POST", "/videos/from-research", "alice", json={"research_job_id": 10**30})
    assert status == 422 and data["field"] == "research_job_id" and "less than or equal" in data["error"]


async def test_remote_callers_never_name_a_server_file(api, tmp_path):
    existing, absent = str(tmp_path / "daemon.yaml"), str(tmp_path / "absent.png")
    answers = []
    for path in (existing, absent):
        answers.append(await api.call("POST", "/videos", "alice", json={
            "script_title": "x", "script_content": "y", "background": {"type": "image", "path": path}}))
        # An inline payload's own request envelope is held to the same rule as the body.
        inline = {"research": json.loads(fixture_bytes("github_search.json")),
                  "request": {"background": {"type": "video", "path": path}}}
        answers.append(await api.call("POST", "/videos/from-research", "alice", json={"research": inline}))
    body_refusals, envelope_refusals = answers[0::2], answers[1::2]
    assert [a[:2] for a in body_refusals] == [(422, {"error": "background.path: Extra inputs are not permitted",
                                                     "field": "background.path"})] * 2
    assert [a[:2] for a in envelope_refusals] == [(422, {
        "error": "background.path: a remote caller cannot name a file on the server; give an https url instead",
        "field": "background.path"})] * 2  # the same words whether or not the file exists
    _, listed, _ = await api.call("GET", "/videos", "alice")
    assert listed["videos"] == []


async def test_the_default_rules_refuse_a_loopback_url_at_once(api):
    async with MediaServer().serve() as media:
        status, data, _ = await api.call("POST", "/videos", "alice", json={
            "script_title": "x", "script_content": "y",
            "background": {"type": "image", "url": f"https://127.0.0.1:{media.port}/bg.png"}})
        assert (status, data["field"]) == (422, "background.url") and "not a public address" in data["error"]
        assert media.hits == []


async def test_a_background_url_is_fetched_on_arrival_and_the_render_gets_the_file(tmp_path):
    users_yaml(tmp_path)
    plugin = RecordingPlugin(FakeRenderer())
    settings = make_settings(tmp_path, users_file="users.yaml",
                             media={"schemes": ["http"], "allow_networks": ["127.0.0.1/32"]})
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=settings)
    async with MediaServer().serve() as media, running(daemon), \
            aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        api = Api(http, daemon, plugin)
        status, data, _ = await api.call("POST", "/videos", "alice", json={
            "script_title": "x", "script_content": "y",
            "background": {"type": "image", "url": media.url("/not-an-image.png")}})
        assert (status, data["field"]) == (422, "background.url") and "not a PNG, JPEG" in data["error"]
        video = await api.video("alice", background={"type": "image", "url": media.url("/redirect/1/bg.png")},
                                narration={"url": media.url("/voice.wav")})
        await wait_until(lambda: plugin.notifier.states(video["id"])[-1:] == ["completed"])
        fetched = list(media.hits)
    request = plugin.renderer.requests[-1]
    assert request.background.type == "image" and request.background.url is None
    assert open(request.background.path, "rb").read() == media.files["/bg.png"][0]
    assert request.narration.read_bytes() == media.files["/voice.wav"][0]
    assert fetched == ["/not-an-image.png", "/redirect/1/bg.png", "/bg.png", "/voice.wav"]  # none by the render
    assert len(plugin.renderer.requests) == 1  # the refused request queued nothing


async def test_research_with_insights_is_listed_however_many_plain_scripts_came_after(api):
    from avatar_daemon.models import Research, Script

    store = api.daemon.store
    picked = []
    for n in range(3):
        r = Research.model_validate({"source": "hackernews", "title": f"Story {n}", "topic": "tech",
                                     "insights": [{"text": f"insight {n}"}]})
        picked.append((await store.add_research_with_jobs(f"with-{n}", r, Script(title="S", text="S.", estimated_seconds=1.0), None, []))[0])
    plain = Research.model_validate({"source": "text", "title": "Plain", "topic": "script", "insights": [],
                                     "script_text": "Just words."})
    for n in range(110):
        await store.add_research_with_jobs(f"plain-{n}", plain, Script(title="Plain", text="Just words.", estimated_seconds=1.0), None, [])
    status, page, _ = await api.call("GET", "/research?with_insights=true&limit=2", "alice")
    assert status == 200 and [r["id"] for r in page["research"]] == [picked[2], picked[1]]
    _, rest, _ = await api.call("GET", page["next"], "alice")
    assert [r["id"] for r in rest["research"]] == [picked[0]] and rest["next"] is None
    status, bad, _ = await api.call("GET", "/research?with_insights=yes", "alice")
    assert status == 400 and bad["field"] == "with_insights"
