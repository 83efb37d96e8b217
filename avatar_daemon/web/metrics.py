"""/metrics in Prometheus' text format: jobs by state, render time, inbox files, remote API calls."""

from __future__ import annotations

from aiohttp import web

from ..hookspecs import CountsApiCalls
from ..models import JobState
from .common import Answer, Endpoint, daemon_of

BUCKETS = [5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def metrics(request: web.Request) -> web.Response:
    d = daemon_of(request)
    lines = ["# HELP avatar_daemon_node_info The daemon that answered, among several sharing one database.",
             "# TYPE avatar_daemon_node_info gauge", f'avatar_daemon_node_info{{node="{_label(d.node_id)}"}} 1',
             "# HELP avatar_daemon_node_running_jobs Jobs this node is running now.",
             "# TYPE avatar_daemon_node_running_jobs gauge",
             f'avatar_daemon_node_running_jobs{{node="{_label(d.node_id)}"}} {len(d.jobs.running)}',
             "# HELP avatar_daemon_jobs Video jobs by state.", "# TYPE avatar_daemon_jobs gauge"]
    counts = await d.store.counts()
    lines += [f'avatar_daemon_jobs{{state="{s.value}"}} {counts.get(s.value, 0)}' for s in JobState]
    seconds = await d.store.render_seconds()
    lines += ["# HELP avatar_daemon_render_seconds Wall time of completed renders.",
              "# TYPE avatar_daemon_render_seconds histogram"]
    lines += [f'avatar_daemon_render_seconds_bucket{{le="{b}"}} {sum(s <= b for s in seconds)}' for b in BUCKETS]
    lines += [f'avatar_daemon_render_seconds_bucket{{le="+Inf"}} {len(seconds)}',
              f"avatar_daemon_render_seconds_sum {sum(seconds):.3f}",
              f"avatar_daemon_render_seconds_count {len(seconds)}"]
    stats = d.inbox.stats
    lines += ["# HELP avatar_daemon_inbox_files_total Files taken from the inbox, by outcome.",
              "# TYPE avatar_daemon_inbox_files_total counter",
              f'avatar_daemon_inbox_files_total{{outcome="processed"}} {stats.processed}',
              f'avatar_daemon_inbox_files_total{{outcome="failed"}} {stats.failed}',
              f'avatar_daemon_inbox_files_total{{outcome="duplicate"}} {stats.duplicates}']
    lines += ["# HELP avatar_daemon_renderer_api_calls_total Calls to remote renderers' APIs, by outcome.",
              "# TYPE avatar_daemon_renderer_api_calls_total counter"]
    for renderer in d.renderers:
        calls = renderer.api_calls() if isinstance(renderer, CountsApiCalls) else {}
        for (endpoint, outcome), n in sorted(calls.items()):
            lines.append(f'avatar_daemon_renderer_api_calls_total{{renderer="{_label(renderer.name)}",'
                         f'endpoint="{_label(endpoint)}",outcome="{_label(outcome)}"}} {n}')
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def endpoints() -> list[Endpoint]:
    return [Endpoint("GET", "/metrics", metrics, "Prometheus metrics", auth=False,
                     responses={200: Answer("the text exposition format", media=("text/plain",))})]
