"""One campaign as its file says it, with its last runs: what each considered and why it chose what it did.

The studio's campaign form starts from the definition here and writes it back through
POST /campaigns, so the YAML on disk is always one the daemon validated.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import UnknownNameError
from .common import ApiError, Endpoint, daemon_of, int_arg


async def get_campaign(request: web.Request) -> web.Response:
    d = daemon_of(request)
    name = request.match_info["name"]
    try:
        campaign = d.campaigns.get(name)
    except UnknownNameError as exc:
        raise ApiError(404, str(exc)) from None
    row = next((r for r in await d.campaigns.rows() if r["name"] == name), None)
    if row is None:
        raise ApiError(404, f"campaign {name!r} is not registered yet; try again in a moment")
    runs = await d.store.campaign_runs(row["id"], int_arg(request, "runs", 5, high=50))
    return web.json_response({**row, "campaign": campaign.model_dump(mode="json", exclude_none=True), "runs": runs})


def endpoints() -> list[Endpoint]:
    return [Endpoint("GET", "/campaigns/{name}", get_campaign,
                     "A campaign's definition and its last runs' reports (what was considered and why)",
                     query={"runs": {"type": "integer", "minimum": 1, "maximum": 50,
                                     "description": "how many recent runs, 1-50"}},
                     responses={200: "OK", 404: "unknown"})]
