"""The service's Prometheus metrics, in a registry of its own (one per app).

Label values come only from closed sets (known methods, route templates, reason codes, configured stations),
so no caller can mint new time series by sending odd methods, paths or station ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def method_label(method: str) -> str:
    """The HTTP method as a label: one of the standard methods, else ``other``."""
    return method if method in METHODS else "other"


@dataclass
class Metrics:
    """Counters, histograms and gauges of one app."""

    registry: CollectorRegistry
    inspections: Counter
    rejections: Counter
    http: Counter
    latency: Histogram
    stages: Histogram
    in_flight: Gauge
    queued: Gauge
    abandoned: Counter

    @classmethod
    def create(cls) -> Metrics:
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            inspections=Counter(
                "inspection_inspections_total",
                "Records stored, by station, status and verdict.",
                ["station", "status", "verdict"],
                registry=reg,
            ),
            rejections=Counter(
                "inspection_rejections_total", "Refused uploads, by reason.", ["reason"], registry=reg
            ),
            http=Counter(
                "inspection_http_requests_total",
                "HTTP requests, by method, route and status code (499: the client went away).",
                ["method", "route", "code"],
                registry=reg,
            ),
            latency=Histogram(
                "inspection_request_seconds",
                "Wall time of POST /v1/inspections, upload to response.",
                buckets=BUCKETS,
                registry=reg,
            ),
            stages=Histogram(
                "inspection_stage_seconds",
                "Pipeline time per stage.",
                ["stage"],
                buckets=BUCKETS,
                registry=reg,
            ),
            in_flight=Gauge(
                "inspection_in_flight", "Uploads being received or scored right now.", registry=reg
            ),
            queued=Gauge("inspection_queued_photos", "Photos waiting to be scored.", registry=reg),
            abandoned=Counter(
                "inspection_abandoned_total",
                "Uploads whose client went away before the verdict; they were not scored or not stored.",
                registry=reg,
            ),
        )
