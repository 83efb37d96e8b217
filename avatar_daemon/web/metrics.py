"""/metrics for Prometheus: jobs by state, render time, inbox files, remote API calls, the process.

The figures live in the store, which is read with `await`, while prometheus_client's
collectors are called synchronously during exposition. So the handler reads everything
first and hands the results to a registry as ready-made metric families; the library then
does what is easy to get subtly wrong by hand: escaping, `_total`/`_bucket` naming, the
process and GC metrics, and choosing the text or OpenMetrics format from `Accept`.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
                                            Metric)

from ..hookspecs import CountsApiCalls
from ..models import JobState
from .common import Answer, Endpoint, daemon_of

BUCKETS = [5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]
TEXT = "text/plain"
OPENMETRICS = "application/openmetrics-text"


class _Families:
    """A collector that yields families read beforehand (prometheus_client's custom-collector form)."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


# The process, platform and GC collectors read /proc and the interpreter, not the store: one set
# for the process, shared by every daemon in it (tests run several), and not the library's
# global registry, which would also collect whatever else the process registered there.
PROCESS = CollectorRegistry(auto_describe=True)
for _collector in (ProcessCollector, PlatformCollector, GCCollector):
    _collector(registry=PROCESS)


async def families(d) -> list[Metric]:
    counts = await d.store.counts()
    jobs = GaugeMetricFamily("avatar_daemon_jobs", "Video jobs by state.", labels=["state"])
    for state in JobState:
        jobs.add_metric([state.value], counts.get(state.value, 0))

    seconds = await d.store.render_seconds()
    buckets = [(str(float(b)), sum(s <= b for s in seconds)) for b in BUCKETS] + [("+Inf", len(seconds))]
    renders = HistogramMetricFamily("avatar_daemon_render_seconds", "Wall time of completed renders.",
                                    buckets=buckets, sum_value=sum(seconds))

    stats = d.inbox.stats
    inbox = CounterMetricFamily("avatar_daemon_inbox_files", "Files taken from the inbox, by outcome.",
                                labels=["outcome"])
    for outcome, n in (("processed", stats.processed), ("failed", stats.failed), ("duplicate", stats.duplicates)):
        inbox.add_metric([outcome], n)

    calls = CounterMetricFamily("avatar_daemon_renderer_api_calls", "Calls to remote renderers' APIs, by outcome.",
                                labels=["renderer", "endpoint", "outcome"])
    for renderer in d.renderers:
        made = renderer.api_calls() if isinstance(renderer, CountsApiCalls) else {}
        for (endpoint, outcome), n in sorted(made.items()):
            calls.add_metric([renderer.name, endpoint, outcome], n)
    node = GaugeMetricFamily("avatar_daemon_node_info", "The daemon that answered, among several sharing one database.",
                             labels=["node"])
    node.add_metric([d.node_id], 1)
    running = GaugeMetricFamily("avatar_daemon_node_running_jobs", "Jobs this node is running now.", labels=["node"])
    running.add_metric([d.node_id], len(d.jobs.running))
    return [node, running, jobs, renders, inbox, calls]


async def metrics(request: web.Request) -> web.Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(await families(daemon_of(request)) + list(PROCESS.collect())))
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    # aiohttp sends no body to a HEAD request and keeps the length of what a GET would get.
    return web.Response(body=encode(registry), headers={"Content-Type": content_type,
                                                        "X-Content-Type-Options": "nosniff"})


def endpoints() -> list[Endpoint]:
    return [Endpoint("GET", "/metrics", metrics, "Prometheus metrics (OpenMetrics when the Accept header asks)",
                     auth=False, responses={200: Answer("the Prometheus text or OpenMetrics exposition format",
                                                        media=(TEXT, OPENMETRICS))})]
