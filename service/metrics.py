"""Prometheus metrics, in a registry per app (no import-time globals)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _QueueDepth(Collector):
    """Reads the queue depth per site from the database at scrape time."""

    def __init__(self, depths: Callable[[], Mapping[str, int]]):
        self._depths = depths

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "moderation_queue_depth", "Comments awaiting review, per site", labels=["site"]
        )
        try:
            for site, depth in sorted(self._depths().items()):
                family.add_metric([site], depth)
        except Exception as exc:  # a scrape must not fail because the database is down
            logger.warning("queue depth unavailable: %s", type(exc).__name__)
        yield family


class Metrics:
    """The service's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "moderation_http_requests",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "moderation_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "moderation_decisions",
            "Decisions by flagged label ('none' when nothing was flagged), outcome and source",
            ["label", "outcome", "source"],
            registry=self.registry,
        )
        self.model = Gauge("moderation_model_info", "The served model (1)", ["model"], registry=self.registry)

    def watch_queue(self, depths: Callable[[], Mapping[str, int]]) -> None:
        """Report the queue depth from `depths` at each scrape."""
        self.registry.register(_QueueDepth(depths))

    def set_model(self, model_id: str | None) -> None:
        """Record which model is served."""
        self.model.clear()
        if model_id is not None:
            self.model.labels(model=model_id).set(1)

    def count_decision(self, flagged: Sequence[str], outcome: str, source: str) -> None:
        """Count one decision under each flagged label."""
        for label in flagged or ("none",):
            self.decisions.labels(label=label, outcome=outcome, source=source).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=template).observe(time.perf_counter() - start)
