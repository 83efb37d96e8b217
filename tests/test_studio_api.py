"""The endpoints the web studio reads, and the studio's own files, over real HTTP on loopback."""

from __future__ import annotations

import json
import re

from avatar_daemon import estimate_seconds
from avatar_daemon.spoken import PARAGRAPH_PAUSE_SECONDS, WORDS_PER_SECOND
from avatar_daemon.testing import wait_until
from avatar_daemon.web.studio import STATIC
from tests.conftest import fixture_bytes
from tests.test_http_api import Api, api  # noqa: F401  (the fixture)


async def test_formats_carry_the_numbers_the_server_estimates_with(api: Api):
    status, data, _ = await api.call("GET", "/formats")
    assert status == 200
    assert data["speech"] == {"words_per_second": WORDS_PER_SECOND, "paragraph_pause_seconds": PARAGRAPH_PAUSE_SECONDS}
    assert [f["name"] for f in data["formats"]] == api.daemon.formats.names()
    tiktok = next(f for f in data["formats"] if f["name"] == "tiktok")
    spec = api.daemon.formats["tiktok"]
    assert (tiktok["max_seconds"], tiktok["voice_speed"], tiktok["aspect_ratio"]) == (spec.max_seconds,
                                                                                      spec.voice_speed, "9:16")
    assert data["default_formats"] == api.daemon.settings.default_formats
    # The formula the answer documents, worked from its own numbers, is the server's.
    speech = data["speech"]
    for text, speed in [("one two three", 1.0), ("a b c d e f g\n\nh i j", 1.25), ("word " * 130, 0.8)]:
        words, pauses = len(text.split()), text.count("\n\n")
        ours = round(words / (speech["words_per_second"] * speed) + pauses * speech["paragraph_pause_seconds"], 1)
        assert ours == estimate_seconds(text, speed)


async def test_templates_say_which_carry_a_brand_logo(api: Api):
    status, data, _ = await api.call("GET", "/templates")
    assert status == 200
    ids = {t["id"] for t in data["templates"]}
    assert ids == set(api.daemon.settings.templates) and ids
    assert all(isinstance(t["has_logo"], bool) for t in data["templates"])
    assert (await api.call("GET", "/templates", who=None))[0] == 401  # same access rules as the rest


async def test_the_page_and_its_files_are_served_offline(api: Api):
    status, page, headers = await api.call("GET", "/", who=None)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    html = page.decode()
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/studio/studio.js" in links and "/studio/studio.css" in links
    assert all(link.startswith(("/", "#")) for link in links), links  # nothing from another host: works offline
    for name in ("studio.js", "studio.css", "icon.svg"):
        status, body, headers = await api.call("GET", f"/studio/{name}", who=None)
        assert status == 200 and body == (STATIC / name).read_bytes()
    assert (await api.call("GET", "/studio/studio.js", who=None))[2]["Content-Type"].startswith("text/javascript")
    for bad in ("nope.js", ".hidden.js", "..%2F__init__.py", "%2E%2E%2Fstudio.js"):
        status, data, _ = await api.call("GET", f"/studio/{bad}", who=None)
        assert status == 404 and "no studio file" in data["error"], (bad, data)


async def test_a_research_job_in_full_and_who_may_read_it(api: Api):
    ingested = await api.daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
    status, data, _ = await api.call("GET", f"/research/{ingested.research_id}")
    assert status == 200 and data["source"] == "hackernews"
    stored = await api.daemon.store.research_job(ingested.research_id)
    assert [i["text"] for i in data["insights"]] == [i.text for i in stored.research.insights]
    assert [i["score"] for i in data["insights"]] == [i.score for i in stored.research.insights]
    assert data["script"]["text"] == stored.script.text and data["script"]["text"]
    # eve's own research (workspace W2) is hers: alice (W1) is told so; nobody gets an unknown id
    status, made, _ = await api.call("POST", "/videos/from-research", "eve",
                                     json={"research": json.loads(fixture_bytes("github_search.json"))})
    assert status == 201
    theirs = made["videos"][0]["research_job_id"]
    assert (await api.call("GET", f"/research/{theirs}", "eve"))[0] == 200
    status, data, _ = await api.call("GET", f"/research/{theirs}", "alice")
    assert status == 403 and "another workspace" in data["error"]
    for missing in ("999", "0", "x", "٣"):
        assert (await api.call("GET", f"/research/{missing}"))[0] == 404


async def test_a_campaign_with_its_last_run_report(api: Api):
    folder = api.daemon.settings.campaigns_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hn.yaml").write_text("name: hn\nsources: [{source: hackernews}]\nschedule: {every: daily}\n")
    await wait_until(lambda: _ok(api, "/campaigns/hn"))
    status, data, _ = await api.call("GET", "/campaigns/hn", "root")
    assert data["campaign"]["sources"] == [{"source": "hackernews"}] and data["runs"] == []
    await api.daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
    status, ran, _ = await api.call("POST", "/campaigns/hn/run", "root")
    assert status == 201
    status, data, _ = await api.call("GET", "/campaigns/hn?runs=1", "root")
    assert status == 200 and len(data["runs"]) == 1
    assert data["runs"][0]["message"] == ran["message"] and data["runs"][0]["considered"] == ran["considered"]
    assert ran["considered"]  # the run looked at the research, and says so
    status, data, _ = await api.call("GET", "/campaigns/nope", "root")
    assert status == 404 and "nope" in data["error"]


async def _ok(api: Api, path: str) -> bool:
    return (await api.call("GET", path, "root"))[0] == 200
