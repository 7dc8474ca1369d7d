"""Prometheus metrics for one server, in their own CollectorRegistry (so two apps in one process never clash).

Units are in the names. Pool gauges are read when scraped, from the backend itself.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Tiny pooled runs take tens of milliseconds; generated ones can take minutes.
_RUN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
_QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300)


class Metrics:
    """The server's metrics: runs by status, run and queue durations, pool, gate refusals, egress, drops."""

    def __init__(self, pool_state: Callable[[], tuple[int, int]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("harness_runs", "jobs ended, by kind and status", ("kind", "status"), registry=r)
        self.run_duration = Histogram(
            "harness_run_duration_seconds", "from a job's start to its end", ("kind",), buckets=_RUN_BUCKETS, registry=r
        )
        self.queue_duration = Histogram(
            "harness_queue_duration_seconds", "from admission to start", buckets=_QUEUE_BUCKETS, registry=r
        )
        self.rejected = Counter(
            "harness_jobs_rejected", "jobs refused at admission, by reason", ("reason",), registry=r
        )
        self.gate_refusals = Counter("harness_gate_refusals", "scripts the static gate refused", registry=r)
        self.egress = Counter("harness_egress_requests", "fetches made for scripts, by host", ("host",), registry=r)
        self.events_dropped = Counter(
            "harness_events_dropped", "events not kept (the run's caps, or a job buffer's)", registry=r
        )
        self.jobs_running = Gauge("harness_jobs_running", "jobs running now", registry=r)
        self.jobs_queued = Gauge("harness_jobs_queued", "jobs waiting for a slot", registry=r)
        pool_ready = Gauge("harness_pool_ready", "pre-started containers ready now", registry=r)
        pool_size = Gauge("harness_pool_size", "pre-started containers wanted", registry=r)
        if pool_state is not None:
            pool_ready.set_function(lambda: float(pool_state()[0]))
            pool_size.set_function(lambda: float(pool_state()[1]))

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
