"""Prometheus metrics of the service (prometheus-client).

One `Metrics` object per app. In a multi-worker server (`--workers N`) the
command sets PROMETHEUS_MULTIPROC_DIR before the workers start; each worker
then writes its values to files there and `/metrics` sums them over workers
(prometheus-client's multiprocess mode).
"""
import os
from typing import Tuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        kw = {"registry": self.registry}
        self.requests = Counter(
            "smi_requests", "HTTP requests answered, by endpoint and status code", ["endpoint", "status"], **kw
        )
        self.latency = Histogram(
            "smi_request_latency_seconds", "Request latency (seconds), by endpoint", ["endpoint"],
            buckets=LATENCY_BUCKETS, **kw,
        )
        self.batch_size = Histogram(
            "smi_batch_size_texts", "Texts per model call (one micro-batch)", buckets=BATCH_BUCKETS, **kw
        )
        gauge_kw = {"multiprocess_mode": "livesum"} if multiprocess() else {}
        self.queue_depth = Gauge(
            "smi_queue_depth_texts", "Texts waiting for the model (not yet in a batch)", **gauge_kw, **kw
        )
        self.in_flight = Gauge(
            "smi_batch_in_flight_texts", "Texts inside the running model call", **gauge_kw, **kw
        )

    def render(self) -> Tuple[bytes, str]:
        if multiprocess():
            from prometheus_client import multiprocess as mp

            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
