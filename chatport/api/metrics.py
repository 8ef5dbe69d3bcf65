"""GET /metrics: Prometheus text, read from the engines at scrape time so that
the decode loop never pays for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chatport.service.search.web import SearchStats
from chatport.service.services import Services


class EngineCollector(Collector):
    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily("chatport_running_sequences", "Sequences holding a KV slot", labels=["model"])
        waiting = GaugeMetricFamily("chatport_waiting_requests", "Requests queued for a slot", labels=["model"])
        steps = CounterMetricFamily("chatport_decode_steps", "Decode steps run", labels=["model"])
        graphs = CounterMetricFamily(
            "chatport_decode_graphs", "Forward passes the decode steps ran as (llama.cpp ubatches)", labels=["model"]
        )
        tokens = CounterMetricFamily("chatport_generated_tokens", "Tokens sampled", labels=["model"])
        decode = CounterMetricFamily("chatport_decode_seconds", "Time inside llama_decode", labels=["model"])
        total = CounterMetricFamily("chatport_step_seconds", "Time of whole engine steps", labels=["model"])
        first = CounterMetricFamily("chatport_first_tokens", "Requests that got their first token", labels=["model"])
        first_wait = CounterMetricFamily(
            "chatport_first_token_seconds", "Sum of waits from submission to the first token", labels=["model"]
        )
        prompt = CounterMetricFamily("chatport_prompt_tokens", "Prompt tokens of admitted requests", labels=["model"])
        cached = CounterMetricFamily(
            "chatport_prompt_tokens_cached",
            "Prompt tokens whose KV was reused (exact; usage reports whole blocks)",
            labels=["model"],
        )
        drafts = CounterMetricFamily(
            "chatport_draft_tokens",
            "Draft tokens verified, by source (prediction: the client's; context: the request's own; history: earlier "
            "answers of its project) and outcome",
            labels=["model", "source", "outcome"],
        )
        # Engines run as replicas (chatport serve --ray): each one's health, load and share.
        labels = ["model", "replica"]
        up = GaugeMetricFamily("chatport_replica_up", "1 while the replica reports and its engine runs", labels=labels)
        r_running = GaugeMetricFamily("chatport_replica_running_sequences", "Sequences holding a slot", labels=labels)
        r_waiting = GaugeMetricFamily("chatport_replica_waiting_requests", "Requests queued for a slot", labels=labels)
        r_requests = CounterMetricFamily("chatport_replica_requests", "Requests taken since the replica started", labels=labels)
        r_tokens = CounterMetricFamily("chatport_replica_generated_tokens", "Tokens sampled", labels=labels)
        replicas: tuple[GaugeMetricFamily | CounterMetricFamily, ...] = (up, r_running, r_waiting, r_requests, r_tokens)
        status = self.services.status()
        for model in status.models:
            stats = model.stats
            for replica in stats.replicas:
                values = (int(replica.alive), replica.running, replica.waiting, replica.requests, replica.tokens)
                for family, value in zip(replicas, values, strict=True):
                    family.add_metric([model.id, replica.name], value)
            running.add_metric([model.id], stats.running)
            waiting.add_metric([model.id], stats.waiting)
            steps.add_metric([model.id], stats.steps)
            graphs.add_metric([model.id], stats.graphs)
            tokens.add_metric([model.id], stats.tokens)
            decode.add_metric([model.id], stats.decode_seconds)
            total.add_metric([model.id], stats.step_seconds)
            first.add_metric([model.id], stats.first_tokens)
            first_wait.add_metric([model.id], stats.first_token_seconds)
            prompt.add_metric([model.id], stats.prompt_tokens)
            cached.add_metric([model.id], stats.cached_tokens)
            accepted = dict(stats.accepted_draft_tokens)
            for source, drafted in stats.drafted_tokens:
                drafts.add_metric([model.id, source, "accepted"], accepted.get(source, 0))
                drafts.add_metric([model.id, source, "rejected"], drafted - accepted.get(source, 0))
        yield from _search_families(status.search)
        draining = GaugeMetricFamily("chatport_draining", "1 while the server drains before shutting down")
        draining.add_metric([], 1 if status.draining else 0)
        yield from (
            running,
            waiting,
            steps,
            graphs,
            tokens,
            decode,
            total,
            first,
            first_wait,
            prompt,
            cached,
            drafts,
            draining,
            *replicas,
        )


def _search_families(stats: SearchStats | None) -> Iterator[Metric]:
    """The web search engine's counters (--web-search), labelled by engine."""
    if stats is None:
        return
    engine = [stats.backend]
    searches = CounterMetricFamily("chatport_web_searches", "Web searches run", labels=["backend"])
    searches.add_metric(engine, stats.searches)
    failures = CounterMetricFamily(
        "chatport_web_search_failures", "Web searches that failed (down: 502, slow: 504)", labels=["backend", "kind"]
    )
    for kind, count in stats.failures.items():
        failures.add_metric([stats.backend, kind], count)
    seconds = CounterMetricFamily("chatport_web_search_seconds", "Time waiting for the search engine", labels=["backend"])
    seconds.add_metric(engine, stats.seconds)
    pages = CounterMetricFamily(
        "chatport_web_search_pages", "Result pages read, or left with the engine's snippet", labels=["backend", "outcome"]
    )
    pages.add_metric([stats.backend, "read"], stats.pages_read)
    pages.add_metric([stats.backend, "snippet"], stats.pages_failed)
    yield from (searches, failures, seconds, pages)


def metrics_endpoint(services: Services) -> Callable[[], Awaitable[Response]]:
    registry = CollectorRegistry()
    registry.register(EngineCollector(services))

    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
