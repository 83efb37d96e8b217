"""Campaigns over HTTP: every change is written to the YAML file, which stays the source of truth."""

from __future__ import annotations

from aiohttp import web

from ..campaign import Campaign
from ..errors import ConfigError, UnknownNameError
from pydantic import RootModel

from .bodies import SEED_CAMPAIGN_KEYS, CampaignPatchBody, SeedCampaignBody
from .common import ApiError, Endpoint, caller, daemon_of, parse_body, read_object, validated


class CampaignBody(RootModel[Campaign | SeedCampaignBody]):
    """For the document: a campaign file's fields, or the seed's body."""


def _may_manage(request: web.Request) -> None:
    who = caller(request)
    if not who.campaigns:
        raise ApiError(403, f"{who.name} may not manage campaigns (set `campaigns: true` on its token in users.yaml)")


async def _row(request: web.Request) -> dict:
    name = request.match_info["name"]
    rows = {r["name"]: r for r in await daemon_of(request).campaigns.rows()}
    if name not in rows:
        raise ApiError(404, f"no campaign {name!r}")
    return rows[name]


async def list_campaigns(request: web.Request) -> web.Response:
    return web.json_response({"campaigns": await daemon_of(request).campaigns.rows()})


async def create_campaign(request: web.Request) -> web.Response:
    _may_manage(request)
    data = await read_object(request)
    if SEED_CAMPAIGN_KEYS & data.keys():
        data = validated(SeedCampaignBody, data).campaign()
    campaign = validated(Campaign, data)
    campaigns = daemon_of(request).campaigns
    existed = campaigns.path_of(campaign.name) is not None
    path = campaigns.folder / f"{campaign.name}.yaml"
    if not existed and path.exists():
        raise ApiError(409, f"{path.name} exists but does not hold a valid campaign {campaign.name!r}; "
                            "fix, rename or remove it first")
    try:
        await campaigns.write(campaign)
    except ConfigError as exc:  # each problem reads `name.yaml:line: field: reason`
        parts = exc.problems[0].split(": ", 2)
        raise ApiError(422, "; ".join(exc.problems), parts[1] if len(parts) == 3 else None) from None
    row = next(r for r in await campaigns.rows() if r["name"] == campaign.name)
    return web.json_response({"campaign_id": row["id"], **row}, status=200 if existed else 201,
                             headers={"Location": f"/campaigns/{campaign.name}"})


async def patch_campaign(request: web.Request) -> web.Response:
    _may_manage(request)
    await _row(request)
    body = await parse_body(request, CampaignPatchBody)
    await daemon_of(request).campaigns.set_paused(request.match_info["name"], body.paused)
    return web.json_response(await _row(request))


async def run_campaign(request: web.Request) -> web.Response:
    _may_manage(request)
    await _row(request)
    try:
        report = await daemon_of(request).campaigns.run_now(request.match_info["name"])
    except UnknownNameError as exc:
        raise ApiError(404, str(exc)) from None
    return web.json_response({"run_id": report.run_id, "message": report.message, "job_ids": report.job_ids,
                              "considered": report.considered}, status=201)


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("GET", "/campaigns", list_campaigns, "Campaigns with schedule, state and totals"),
        Endpoint("POST", "/campaigns", create_campaign, "Create or replace a campaign (writes its YAML file); "
                 "the seed's body (name, source_tools, frequency, ...) is taken too", body=CampaignBody,
                 responses={200: "replaced", 201: "created", 403: "not allowed",
                            409: "an invalid file of that name is in the way", 422: "invalid"}),
        Endpoint("PATCH", "/campaigns/{name}", patch_campaign, "Pause or resume a campaign", body=CampaignPatchBody,
                 responses={200: "OK", 403: "not allowed", 404: "unknown"}),
        Endpoint("POST", "/campaigns/{name}/run", run_campaign, "Run a campaign now",
                 responses={201: "ran", 403: "not allowed", 404: "unknown"}),
    ]
