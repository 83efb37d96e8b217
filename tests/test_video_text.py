"""A video's title, description and hashtags: request > campaign > template > research, on every way in."""

import json
from pathlib import Path

import aiohttp
import pytest
import yaml
from pydantic import ValidationError

from avatar_daemon.campaigns.schema import Campaign
from avatar_daemon.errors import InvalidRequest, ResearchError
from avatar_daemon.testing import RecordingPlugin, make_daemon, make_settings, running
from avatar_daemon.video_requests import video_text
from tests.test_campaigns import Clock, ingest_listing, write_campaign
from tests.test_http_api import Api, users_yaml
from tests.test_systemd_and_cli import _main

TEMPLATE = {"id": "branded", "name": "Branded", "format": "tiktok",
            "metadata": {"description": "From the template", "hashtags": ["Branded", "#Daily"]}}
RESEARCH = {"config": {"keywords": ["robots"]},
            "analysis": {"key_insights": ["Robots learn to fold laundry", "Cheap arms reach hobbyists",
                                          "Open datasets for grasping grow"]}}


def templates_yaml(tmp_path: Path, **extra) -> None:
    (tmp_path / "templates.yaml").write_text(yaml.safe_dump({"video_templates": [{**TEMPLATE, **extra}]}))


@pytest.fixture
async def api(tmp_path):
    users_yaml(tmp_path)
    templates_yaml(tmp_path)
    plugin = RecordingPlugin()
    settings = make_settings(tmp_path, users_file="users.yaml", templates_file="templates.yaml")
    daemon = make_daemon(tmp_path, plugins=[plugin], settings=settings)
    async with running(daemon), aiohttp.ClientSession(f"http://127.0.0.1:{daemon.http_port}") as http:
        yield Api(http, daemon, plugin)


async def page(api, video_id):
    status, data, _ = await api.call("GET", f"/videos/{video_id}")
    assert status == 200, data
    return data["title"], data["description"], data["hashtags"]


async def test_http_requests_override_the_template_which_overrides_the_research(api):
    plain = await api.video(template_id="branded")
    assert await page(api, plain["id"]) == ("Hello", "From the template", ["#Branded", "#Daily"])
    own = await api.video(template_id="branded", title="On its page", description="Mine", hashtags=["mine", "#too"])
    assert await page(api, own["id"]) == ("On its page", "Mine", ["#mine", "#too"])
    assert own["title"] == "On its page"

    status, made, _ = await api.call("POST", "/videos/from-research", json={
        "research": RESEARCH, "template_id": "branded", "hashtags": [], "title": "Robots at home"})
    assert status == 201, made
    title, description, hashtags = await page(api, made["video_id"])
    assert (title, description, hashtags) == ("Robots at home", "From the template", [])
    research_id = made["videos"][0]["research_job_id"]

    # the stored research again, without a template: its own description, the request's hashtags
    status, again, _ = await api.call("POST", "/videos/from-research", json={
        "research_job_id": research_id, "hashtags": ["Robots"]})
    assert status == 201, again
    title, description, hashtags = await page(api, again["video_id"])
    assert hashtags == ["#Robots"] and "Robots learn to fold laundry" in description


@pytest.mark.parametrize("fields, field", [
    ({"hashtags": ["two words"]}, "hashtags.0"),
    ({"hashtags": [f"t{n}" for n in range(11)]}, "hashtags"),
    ({"description": "   "}, "description"),
    ({"description": "x" * 5001}, "description"),
    ({"title": "x" * 201}, "title"),
])
async def test_http_refuses_bad_text_naming_the_field(api, fields, field):
    for path, body in (("/videos", {"script_title": "Hi", "script_content": "Hello there.", **fields}),
                       ("/videos/from-research", {"research": RESEARCH, **fields})):
        status, data, _ = await api.call("POST", path, json=body)
        assert status == 422 and data["error"].startswith(f"{field}:"), (path, data)
    assert await api.daemon.store.jobs_page(None, None, 10, None) == []


def test_the_shared_limits_raise_invalid_request():
    with pytest.raises(InvalidRequest, match=r"^hashtags\.1: 'not fine' is not a hashtag: one word"):
        video_text(hashtags=["fine", "not fine"])
    assert video_text(title="  Spaced  ").title == "Spaced"


async def test_an_inbox_envelope_request_overrides_the_template(tmp_path):
    templates_yaml(tmp_path)
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin()],
                         settings=make_settings(tmp_path, templates_file="templates.yaml"))
    async with daemon.started():
        envelope = {"request": {"template": "branded", "title": "Envelope title"}, "research": RESEARCH}
        done = await daemon.pipeline.ingest(json.dumps(envelope).encode(), "e.json", ".json")
        script = await daemon.jobs.script_for(await daemon.store.job(done.job_ids[0]))
        assert (script.title, script.description, script.hashtags) == \
            ("Envelope title", "From the template", ["#Branded", "#Daily"])
        bad = {"request": {"hashtags": ["#ok", "no way"]}, "research": RESEARCH}
        with pytest.raises(ResearchError, match=r"request envelope field request\.hashtags\.1: 'no way' is not a hashtag"):
            await daemon.pipeline.ingest(json.dumps(bad).encode(), "bad.json", ".json")


async def test_a_campaign_overrides_its_template(tmp_path):
    templates_yaml(tmp_path)
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin()], clock=Clock("2026-11-24T07:00:00+00:00"),
                         settings=make_settings(tmp_path, templates_file="templates.yaml"))
    write_campaign(tmp_path / "campaigns", template="branded", hashtags=["series"],
                   metadata={"title": "The robot series"})
    async with daemon.started():
        await daemon.campaigns.reload()
        await ingest_listing(daemon, [("Robots fold laundry now", 900), ("Robot arms get cheap", 500)])
        (job_id,) = (await daemon.campaigns.run_now("ai")).job_ids
        job = await daemon.store.job(job_id)
        script = await daemon.jobs.script_for(job)
    assert job.title == script.title == "The robot series"
    assert script.description == "From the template" and script.hashtags == ["#series", "#Branded", "#Daily"]


def test_a_campaign_with_bad_metadata_is_refused_naming_it():
    base = {"name": "ai", "sources": [{"source": "reddit"}], "schedule": {"every": "daily"}}
    with pytest.raises(ValidationError, match=r"metadata\.hashtags"):
        Campaign.model_validate({**base, "metadata": {"hashtags": ["a b"]}})
    with pytest.raises(ValidationError, match=r"metadata\.subtitle"):
        Campaign.model_validate({**base, "metadata": {"subtitle": "x"}})


def test_cli_render_options_reach_metadata_json(tmp_path, capsys):
    templates_yaml(tmp_path, format="portrait-720")
    cfg = tmp_path / "daemon.yaml"
    cfg.write_text(json.dumps({"inbox": {"path": "inbox"}, "data_dir": "var", "database": "var/db.sqlite3",
                               "http": {"port": 0}, "notifiers": ["log"], "templates_file": "templates.yaml",
                               "default_template": "branded",
                               "plugins": {"settings": {"local": {"preset": "ultrafast"}}}}))
    script = tmp_path / "hi.txt"
    script.write_text("Hello from the command line.")
    argv = ["render", str(script), "--format", "portrait-720", "--out", str(tmp_path / "out"), "--config", str(cfg)]
    assert _main(*argv, "--title", "My title", "--hashtag", "one", "--hashtag", "#two", "--json") == 0
    (video,) = json.loads(capsys.readouterr().out)["videos"]
    meta = json.loads((Path(video["video"]).parent / "metadata.json").read_text())
    assert (meta["title"], meta["description"], meta["hashtags"]) == ("My title", "From the template",
                                                                      ["#one", "#two"])
    assert _main(*argv, "--hashtag", "not one") == 1
    err = capsys.readouterr().err
    assert "--hashtag: 'not one' is not a hashtag" in err
