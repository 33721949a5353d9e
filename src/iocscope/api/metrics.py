"""Prometheus metrics, in a registry of the app's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "iocscope_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "iocscope_http_request_duration_seconds",
            "Time from request to response start, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self.lookups = Counter(
            "iocscope_lookups_total",
            "Finished lookups by verdict, single and bulk.",
            ["verdict"],
            registry=self.registry,
        )
        self.credits = Counter(
            "iocscope_credits_charged_total",
            "Credits charged to tenants after settlement.",
            registry=self.registry,
        )

    def lookup(self, verdict: str, credits: int) -> None:
        self.lookups.labels(verdict=verdict).inc()
        self.credits.inc(credits)
