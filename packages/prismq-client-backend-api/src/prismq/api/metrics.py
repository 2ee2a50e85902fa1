"""Prometheus metrics of one application: the queue as the database sees it, and HTTP latency.

Each application has its own :class:`~prometheus_client.CollectorRegistry` (not the
process-wide default), so several applications in one process never clash.

Queue metrics are read from the database when Prometheus scrapes, so every API replica
reports the same numbers (aggregate them with ``max``, not ``sum``):

``prismq_database_up``
    1 if the scrape could read the database, else 0 (and the queue metrics are absent).
``prismq_tasks{status}``, ``prismq_tasks_by_type{type,status}``,
``prismq_tasks_by_queue{queue,status}``
    Gauges: tasks in the table now. ``status="completed"`` and ``status="failed"`` are
    totals of the finished tasks *still kept*; they drop when finished tasks are purged, so
    they are gauges, not counters: use ``prismq_recently_finished_tasks`` for rates.
``prismq_recently_finished_tasks{status}``
    Gauge: tasks completed, or failed for good, within the last
    :data:`RECENT_WINDOW_SECONDS` seconds.
``prismq_oldest_queued_age_seconds``
    Gauge: how long the oldest *ready* task has waited; 0 when none is waiting.
``prismq_workers{state}``
    Gauge: registered workers that are ``active``, ``stale`` or ``stopped``.

Measured in the process:

``prismq_api_request_duration_seconds{method,route,status}``
    Histogram of request durations; ``route`` is the route's template
    (``/api/queue/tasks/{task_id}``), never the raw path, so the label set stays bounded.
``prismq_api_waiting_requests``
    Gauge: long-poll requests of this process waiting for a task right now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prismq.api.schemas import WorkerState
from prismq.queue import PrismQError, QueueDatabase, TaskStatus, list_workers, queue_stats
from prismq.queue import throughput as finished_throughput

__all__ = [
    "RECENT_WINDOW_SECONDS",
    "QueueCollector",
    "RequestMetricsMiddleware",
    "create_registry",
]

logger = logging.getLogger(__name__)

#: Window of ``prismq_recently_finished_tasks``.
RECENT_WINDOW_SECONDS = 300.0
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUSES = [status.value for status in TaskStatus]


class QueueCollector:
    """Reads the queue's numbers from the database at every scrape."""

    def __init__(
        self, database: Callable[[], QueueDatabase], *, stale_after_seconds: float
    ) -> None:
        self._database = database
        self._stale_after_seconds = stale_after_seconds

    def describe(self) -> Iterable[Metric]:
        """The metric families, without reading the database (used at registration)."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """Every queue metric, read now."""
        up, tasks, by_type, by_queue, recent, oldest, workers = self._families()
        database = self._database()
        try:
            stats = queue_stats(database)
            recently = finished_throughput(database, RECENT_WINDOW_SECONDS)
            registered = list_workers(database, stale_after_seconds=self._stale_after_seconds)
        except PrismQError as error:
            logger.warning("metrics scrape could not read the queue database: %s", error)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        overall = {
            TaskStatus.QUEUED.value: stats.queued_tasks,
            TaskStatus.LEASED.value: stats.processing_tasks,
            TaskStatus.COMPLETED.value: stats.completed_tasks,
            TaskStatus.FAILED.value: stats.failed_tasks,
            TaskStatus.CANCELLED.value: stats.cancelled_tasks,
        }
        for status, count in overall.items():
            tasks.add_metric([status], count)
        for task_type, counts in stats.by_type.items():
            for status in _STATUSES:
                by_type.add_metric([task_type, status], counts.count(status))
        for queue, counts in stats.by_queue.items():
            for status in _STATUSES:
                by_queue.add_metric([queue, status], counts.count(status))
        recent.add_metric([TaskStatus.COMPLETED.value], recently.completed)
        recent.add_metric([TaskStatus.FAILED.value], recently.failed)
        oldest.add_metric([], stats.oldest_queued_age_seconds or 0.0)
        states = dict.fromkeys(WorkerState, 0)
        for worker in registered:
            states[WorkerState.of(worker)] += 1
        for state, count in states.items():
            workers.add_metric([state.value], count)
        return [up, tasks, by_type, by_queue, recent, oldest, workers]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "prismq_database_up", "1 if this scrape could read the queue database, else 0."
            ),
            GaugeMetricFamily(
                "prismq_tasks", "Tasks in the queue table, by status.", labels=["status"]
            ),
            GaugeMetricFamily(
                "prismq_tasks_by_type",
                "Tasks in the queue table, by task type and status.",
                labels=["type", "status"],
            ),
            GaugeMetricFamily(
                "prismq_tasks_by_queue",
                "Tasks in the queue table, by queue and status.",
                labels=["queue", "status"],
            ),
            GaugeMetricFamily(
                "prismq_recently_finished_tasks",
                f"Tasks completed or failed for good in the last {RECENT_WINDOW_SECONDS:g} s.",
                labels=["status"],
            ),
            GaugeMetricFamily(
                "prismq_oldest_queued_age_seconds",
                "How long the oldest ready task has waited (0 when none is waiting).",
            ),
            GaugeMetricFamily("prismq_workers", "Registered workers, by state.", labels=["state"]),
        )


def create_registry(
    database: Callable[[], QueueDatabase],
    *,
    stale_after_seconds: float,
    waiting_requests: Callable[[], float],
) -> tuple[CollectorRegistry, Histogram]:
    """A registry with the queue collector and this process's metrics.

    Returns the registry and the request-duration histogram the middleware observes.
    """
    registry = CollectorRegistry()
    registry.register(QueueCollector(database, stale_after_seconds=stale_after_seconds))
    waiting = Gauge(
        "prismq_api_waiting_requests",
        "Long-poll requests of this process waiting for a task right now.",
        registry=registry,
    )
    waiting.set_function(waiting_requests)
    durations = Histogram(
        "prismq_api_request_duration_seconds",
        "Duration of HTTP requests, by method, route template and status.",
        ["method", "route", "status"],
        registry=registry,
    )
    return registry, durations


class RequestMetricsMiddleware:
    """Observes each HTTP request's duration, labelled by its route template."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the application answers: an exception escaped

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope.get("method", "")
            self.histogram.labels(
                method if method in _KNOWN_METHODS else "other",
                _route_template(scope),
                str(status),
            ).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    # The router records the matched route in the scope; no match (404) has no template.
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
