"""Every request in the seed's README, sent as written: only host, port, token and ids changed.

The curl commands are copied from the README character for character and parsed with shlex,
so a field the seed sends that we do not take fails here. The Python and JavaScript examples
become the HTTP requests they stand for, with their own field names and values.
"""

import json
import shlex

import aiohttp
import pytest

from avatar_daemon.testing import FakeRenderer, RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.conftest import fixture_bytes
from tests.media_server import MediaServer
from tests.test_http_api import TOKENS, users_yaml

# The README's "API Endpoints" section, verbatim.
SEED_CURLS = r'''
# List available avatars
curl -H "Authorization: Bearer TOKEN" \
  "http://localhost:8008/avatars"

# Get specific avatar
curl -H "Authorization: Bearer TOKEN" \
  "http://localhost:8008/avatars/{avatar_id}"

# Create video from script
curl -X POST "http://localhost:8008/videos" \
  -H "Authorization: Bearer TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "script_title": "AI Trends Analysis",
    "script_content": "Based on our research...",
    "avatar_profile_id": "avatar_id",
    "aspect_ratio": "portrait",
    "voice_speed": 1.0,
    "enable_captions": true
  }'

# Create video from research job
curl -X POST "http://localhost:8008/videos/from-research" \
  -H "Authorization: Bearer TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "research_job_id": "job_id",
    "avatar_profile_id": "avatar_id",
    "aspect_ratio": "portrait"
  }'

# Get video status
curl -H "Authorization: Bearer TOKEN" \
  "http://localhost:8008/videos/{video_id}/status"

# List user videos
curl -H "Authorization: Bearer TOKEN" \
  "http://localhost:8008/videos"

# Create automated campaign
curl -X POST "http://localhost:8008/campaigns" \
  -H "Authorization: Bearer TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "Daily AI Trends Videos",
    "research_config_id": "config_id",
    "source_tools": ["google_trends", "reddit"],
    "frequency": "daily",
    "max_videos_per_day": 3,
    "auto_post_enabled": false
  }'
'''

# The Python examples' arguments as the HTTP bodies they stand for (values as the seed wrote them).
SEED_CALLS = [
    # Use case 2: research summaries
    ("/videos/from-research", {"research_job_id": "job_id", "custom_title": "Weekly Reddit AI Discussions",
                               "aspect_ratio": "landscape"}),
    # Use case 3: multi-platform content
    *[("/videos/from-research", {"research_job_id": "job_id", "aspect_ratio": ratio, "voice_speed": speed,
                                 "title": f"{name} - AI Trends Analysis"})
      for name, ratio, speed in (("TikTok", "portrait", 1.2), ("YouTube", "landscape", 1.0),
                                 ("Instagram", "square", 1.1))],
    # Template usage (VideoGenerationConfig)
    ("/videos/from-research", {"research_job_id": "job_id", "avatar_profile_id": "sarah_avatar",
                               "template_id": "social_media_portrait", "voice_speed": 1.1,
                               "enable_captions": True}),
    # Use case 4: branded content series
    ("/videos/from-research", {"research_job_id": "job_id", "avatar_profile_id": "brand_spokesperson",
                               "background_type": "image", "background_url": "https://brand.com/background.jpg",
                               "enable_captions": True, "voice_speed": 1.0}),
]

SEED_CAMPAIGN = {  # "Campaign Configuration"
    "name": "Daily Trends Videos",
    "research_config_id": "trends_config_123",
    "source_tools": ["google_trends"],
    "avatar_profile_id": "sarah_avatar",
    "frequency": "daily",
    "max_videos_per_day": 2,
    "auto_post_enabled": True,
    "post_platforms": ["tiktok", "instagram"],
}


def parse_curl(command: str) -> tuple[str, str, dict[str, str], str | None]:
    args = shlex.split(command.replace("\\\n", " "))
    assert args.pop(0) == "curl"
    method, headers, data, url = "GET", {}, None, None
    while args:
        arg = args.pop(0)
        if arg == "-X":
            method = args.pop(0)
        elif arg == "-H":
            name, _, value = args.pop(0).partition(": ")
            headers[name] = value
        elif arg == "-d":
            data = args.pop(0)
            method = "POST" if method == "GET" else method
        else:
            url = arg
    return method, url, headers, data


def commands() -> list[str]:
    return [block.split("\n", 1)[1].strip() for block in SEED_CURLS.strip().split("\n\n")]


@pytest.fixture
async def seed(tmp_path):
    users_yaml(tmp_path)
    import yaml
    users = yaml.safe_load((tmp_path / "users.yaml").read_text())
    users["api_tokens"][3]["campaigns"] = True  # root may manage campaigns
    (tmp_path / "users.yaml").write_text(yaml.safe_dump(users))
    plugin = RecordingPlugin(FakeRenderer(seconds=0.1))
    settings = make_settings(tmp_path, users_file="users.yaml",
                             media={"schemes": ["http", "https"], "allow_networks": ["127.0.0.1/32"]})
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=settings)
    async with MediaServer().serve() as media, running(daemon), \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield daemon, http, plugin, media


async def test_every_curl_in_the_seed_succeeds_with_what_its_clients_read(seed):
    daemon, http, plugin, _ = seed
    base = f"http://127.0.0.1:{daemon.http_port}"
    async with http.post(f"{base}/videos/from-research", headers={"Authorization": f"Bearer {TOKENS['root']}"},
                         json={"research": json.loads(fixture_bytes("research_job.json"))}) as resp:
        assert resp.status == 201, await resp.text()
        job_id = (await resp.json())["videos"][0]["research_job_id"]
    ids = {"TOKEN": TOKENS["root"], "{avatar_id}": "sarah", '"avatar_id"': '"sarah"', '"job_id"': str(job_id)}
    answers = []
    for command in commands():
        method, url, headers, data = parse_curl(command)
        url = url.replace("http://localhost:8008", base)
        if "{video_id}" in url:
            url = url.replace("{video_id}", str(answers[2]["video_id"]))
        for seed_id, ours in ids.items():
            headers = {k: v.replace(seed_id, ours) for k, v in headers.items()}
            url = url.replace(seed_id, ours)
            data = data.replace(seed_id, ours) if data else data
        async with http.request(method, url, headers=headers, data=data) as resp:
            assert resp.status in (200, 201), (command, await resp.text())
            answers.append(await resp.json())
    avatars, avatar, script_video, research_video, status, listed, campaign = answers
    assert "sarah" in {a["id"] for a in avatars["avatars"]} and avatar["id"] == "sarah"
    # the seed's avatar_profiles columns, beside ours
    assert avatar["subscription_tier"] == avatar["tier"] and avatar["preview_url"] == avatar["preview_video_url"]
    assert avatar["preview_url"].endswith("/avatars/sarah/preview.mp4")
    for made in (script_video, research_video):
        assert made["video_id"] == made["videos"][0]["id"]
        assert made["videos"][0]["format"] == "tiktok" and made["videos"][0]["avatar_profile_id"] == "sarah"
    assert research_video["videos"][0]["research_job_id"] == job_id
    assert {"status", "video_url", "error_message"} <= status.keys()
    assert script_video["video_id"] in {v["id"] for v in listed["videos"]}
    assert campaign["name"] == "daily-ai-trends-videos" and campaign["campaign_id"] == campaign["id"]
    assert campaign["max_videos_per_day"] == 3 and campaign["schedule"].startswith("daily")
    written = (daemon.settings.campaigns_dir / "daily-ai-trends-videos.yaml").read_text()
    assert "config_id" in written and "google_trends" in written and "reddit" in written
    await wait_until(lambda: plugin.notifier.states(script_video["video_id"])[-1:] == ["completed"])
    request = next(r for r in plugin.renderer.requests if r.job_id == script_video["video_id"])
    assert request.voice_speed == 1.0 and request.captions is True and request.script.title == "AI Trends Analysis"


async def test_the_python_examples_requests_succeed(seed):
    daemon, http, plugin, media = seed
    base = f"http://127.0.0.1:{daemon.http_port}"
    auth = {"Authorization": f"Bearer {TOKENS['root']}"}
    async with http.post(f"{base}/videos/from-research", headers=auth,
                         json={"research": json.loads(fixture_bytes("research_job.json"))}) as resp:
        job_id = (await resp.json())["videos"][0]["research_job_id"]
    media.files["/background.jpg"] = media.files["/bg.png"]  # the brand's image, served here
    made = []
    for path, body in SEED_CALLS:
        text = json.dumps(body).replace('"job_id"', str(job_id)).replace('"sarah_avatar"', '"sarah"') \
            .replace('"brand_spokesperson"', '"emma"').replace("https://brand.com", media.url(""))
        async with http.post(base + path, headers={**auth, "Content-Type": "application/json"}, data=text) as resp:
            assert resp.status == 201, (body, await resp.text())
            made.append((await resp.json())["videos"][0])
    summary, tiktok, youtube, instagram, templated, branded = made
    assert summary["title"] == "Weekly Reddit AI Discussions" and summary["format"] == "youtube"
    assert [v["format"] for v in (tiktok, youtube, instagram)] == ["tiktok", "youtube", "square"]
    assert instagram["title"] == "Instagram - AI Trends Analysis"
    assert templated["template_id"] == "social-portrait"
    await wait_until(lambda: all(plugin.notifier.states(v["id"])[-1:] == ["completed"] for v in made))
    by_id = {r.job_id: r for r in plugin.renderer.requests}
    assert by_id[tiktok["id"]].voice_speed == 1.2 and by_id[instagram["id"]].voice_speed == 1.1
    assert by_id[branded["id"]].background.type == "image"

    ours = {**SEED_CAMPAIGN, "avatar_profile_id": "sarah"}  # the id changed, as in every example
    async with http.post(f"{base}/campaigns", headers=auth, json=ours) as resp:
        assert resp.status == 201, await resp.text()
        campaign = await resp.json()
    written = (daemon.settings.campaigns_dir / "daily-trends-videos.yaml").read_text()
    assert "auto_post:\n- tiktok\n- instagram" in written and "avatar: sarah" in written
    assert campaign["max_videos_per_day"] == 2

    # track_video_event(video_id, event_type="view", platform="tiktok"), then get_video_analytics(video_id)
    for event in ("view", "view", "download"):
        async with http.post(f"{base}/videos/{tiktok['id']}/events", headers=auth,
                             json={"event_type": event, "platform": "tiktok"}) as resp:
            assert resp.status == 201 and (await resp.json())["event_type"] == event
    async with http.get(f"{base}/videos/{tiktok['id']}/analytics", headers=auth) as resp:
        analytics = await resp.json()
    assert (analytics["views"], analytics["downloads"]) == (2, 1)
    async with http.get(f"{base}/analytics", headers=auth) as resp:
        assert (await resp.json())["views"] == 2


async def test_the_seed_pages_javascript_works_once_signed_in(seed):
    daemon, http, _, _ = seed
    base = f"http://127.0.0.1:{daemon.http_port}"
    async with http.post(f"{base}/session", json={"token": TOKENS["root"]}) as resp:
        csrf = (await resp.json())["csrf_token"]
    async with http.post(f"{base}/videos/from-research", headers={"X-CSRF-Token": csrf},
                         json={"research": json.loads(fixture_bytes("research_job.json"))}) as resp:
        assert resp.status == 201
    # loadResearchJobs(): fetch('/api/research/jobs?status=completed'), then renderResearchJobs(jobs): a list
    async with http.get(f"{base}/api/research/jobs?status=completed") as resp:
        assert resp.status == 200
        jobs = await resp.json()
    assert isinstance(jobs, list) and jobs[0]["status"] == "completed" and jobs[0]["source"]
    # createVideoFromResearch(jobId): fetch('/api/avatar-video/videos/from-research', {method: 'POST', body}),
    # at the path it names; the page's own fetch sends the session cookie and adds the CSRF token.
    body = json.dumps({"research_job_id": jobs[0]["id"], "avatar_profile_id": "sarah"})
    async with http.post(f"{base}/api/avatar-video/videos/from-research", data=body,
                         headers={"Content-Type": "text/plain;charset=UTF-8", "X-CSRF-Token": csrf}) as resp:
        assert resp.status == 201, await resp.text()
        video_id = (await resp.json())["video_id"]
    # new WebSocket(`ws://localhost:8008/videos/${videoId}/status-ws`): no header, the page's cookie
    async with http.ws_connect(f"{base}/videos/{video_id}/status-ws") as ws:
        data = await ws.receive_json()
        while data["status"] not in ("completed", "failed"):
            data = await ws.receive_json()
    assert data["status"] == "completed" and data["video_url"] == f"/videos/{video_id}/download"
    assert "error_message" in data


async def test_docs_are_served_offline_from_bundled_files(seed):
    daemon, http, _, _ = seed
    base = f"http://127.0.0.1:{daemon.http_port}"
    async with http.get(f"{base}/docs") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    sources = [part.split('"', 1)[0] for part in page.replace("href=", "src=").split('src="')[1:]]
    assert sources == ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/init.js"]
    for src in sources:
        async with http.get(base + src) as resp:
            assert resp.status == 200, src
            text = await resp.text()
            assert "//cdn" not in text and "unpkg.com" not in text and "jsdelivr" not in text
    async with http.get(f"{base}/docs/init.js") as resp:
        init = await resp.text()
    assert '"/openapi.json"' in init and "validatorUrl: null" in init
    async with http.get(f"{base}/openapi.json") as resp:
        document = await resp.json()
    props = document["components"]["schemas"]["FromResearchBody"]["properties"]
    assert {"script_title", "custom_title", "title", "background_type", "background_url"} <= props.keys()
    assert "portrait" in json.dumps(props["aspect_ratio"]) and "9:16" in json.dumps(props["aspect_ratio"])
