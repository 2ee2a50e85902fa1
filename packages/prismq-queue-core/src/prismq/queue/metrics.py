"""Read-only metrics over the queue: depth, backlog age, throughput and processing times.

Every time is measured on the database's clock (:meth:`SqlDialect.now`), like every lease
decision, so the numbers agree whichever machine asks. Each function reads in one read
transaction, which on SQLite does not block writers. All queries are SQLAlchemy Core and run
unchanged on SQLite and PostgreSQL; percentiles are computed in Python over a bounded
sample for the same reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, select

from prismq.queue.database import QueueDatabase
from prismq.queue.status import TaskStatus
from prismq.queue.tables import task_table

__all__ = [
    "DEFAULT_PERCENTILE_SAMPLE_LIMIT",
    "DEFAULT_WINDOW_SECONDS",
    "ProcessingTimes",
    "QueueDepth",
    "QueueStats",
    "StatusCounts",
    "Throughput",
    "oldest_queued_age_seconds",
    "processing_time_percentiles",
    "queue_depth",
    "queue_stats",
    "throughput",
]

#: Default look-back of :func:`throughput` and :func:`processing_time_percentiles`.
DEFAULT_WINDOW_SECONDS = 300.0
#: Default number of most recent completions the percentiles are computed over.
DEFAULT_PERCENTILE_SAMPLE_LIMIT = 10_000

_t = task_table.c


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class StatusCounts:
    """Number of tasks in each of the five statuses (zero when there are none)."""

    queued: int = 0
    leased: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        """All tasks, whatever their status."""
        return self.queued + self.leased + self.completed + self.failed + self.cancelled

    def count(self, status: TaskStatus | str) -> int:
        """The count of one status."""
        return int(getattr(self, TaskStatus(status).value))

    def as_dict(self) -> dict[str, int]:
        """``{status: count, ..., "total": n}``, JSON-ready."""
        counts = {status.value: self.count(status) for status in TaskStatus}
        counts["total"] = self.total
        return counts


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class QueueDepth:
    """How many tasks are in each status: overall, per task type and per queue.

    ``by_type`` and ``by_queue`` hold only types and queues that have at least one task;
    each of their :class:`StatusCounts` has all five statuses, zero-filled.
    """

    by_status: StatusCounts
    by_type: dict[str, StatusCounts]
    by_queue: dict[str, StatusCounts]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Throughput:
    """Tasks that reached a final outcome within the last ``window_seconds``.

    ``failed`` counts dead letters only (attempts exhausted or non-retryable); an attempt
    that failed and was scheduled for a retry is not finished and is not counted.
    Cancelled tasks count neither way. ``success_rate`` is ``completed / (completed +
    failed)``, or ``None`` when nothing finished in the window.
    """

    window_seconds: float
    completed: int
    failed: int
    completed_per_second: float
    success_rate: float | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ProcessingTimes:
    """Processing-time percentiles, in seconds, of tasks completed within the window.

    A task's processing time is ``finished_at_utc - processing_started_utc`` of its last
    (successful) attempt. ``sample_size`` is how many completions the percentiles were
    computed over (at most the sample limit, the most recent first); all three
    percentiles are ``None`` when it is zero.
    """

    window_seconds: float
    sample_size: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class QueueStats:
    """The snapshot ``GET /api/queue/stats`` serves; see :func:`queue_stats`."""

    total_tasks: int
    queued_tasks: int
    #: Tasks with status ``leased``: claimed by a worker and being processed.
    processing_tasks: int
    completed_tasks: int
    failed_tasks: int
    cancelled_tasks: int
    oldest_queued_age_seconds: float | None
    by_type: dict[str, StatusCounts]
    by_queue: dict[str, StatusCounts]
    #: The database time the snapshot was taken at.
    measured_at_utc: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the timestamp as ISO 8601) in the API's field names."""
        return {
            "total_tasks": self.total_tasks,
            "queued_tasks": self.queued_tasks,
            "processing_tasks": self.processing_tasks,
            "completed_tasks": self.completed_tasks,
            "failed_tasks": self.failed_tasks,
            "cancelled_tasks": self.cancelled_tasks,
            "oldest_queued_age_seconds": self.oldest_queued_age_seconds,
            "by_type": {name: counts.as_dict() for name, counts in self.by_type.items()},
            "by_queue": {name: counts.as_dict() for name, counts in self.by_queue.items()},
            "measured_at_utc": self.measured_at_utc.isoformat(),
        }


def queue_depth(db: QueueDatabase) -> QueueDepth:
    """Task counts by status, overall and broken down per task type and per queue.

    This counts every row of ``task_queue``, so its cost grows with the finished tasks
    kept: purge them regularly (:func:`prismq.queue.maintenance.purge_finished_tasks`).
    """
    with db.read() as conn:
        return _depth(conn)


def oldest_queued_age_seconds(db: QueueDatabase) -> float | None:
    """How long the longest-waiting *ready* task has been waiting, in seconds.

    Only tasks that are ``queued`` **and due** (``run_after_utc <= now``) count: a task
    delayed into the future, or waiting out a retry backoff, is not backlog. A ready task
    has been waiting since the later of its ``created_at_utc`` and its ``run_after_utc``,
    so the age measures how far the workers are behind, not how long ago a delayed task
    was scheduled. ``None`` when no task is ready.
    """
    with db.read() as conn:
        return _oldest_ready_age(db, conn)[0]


def throughput(db: QueueDatabase, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> Throughput:
    """Completed and failed (dead-lettered) tasks finished in the last ``window_seconds``.

    ``completed_per_second`` divides by the whole window, so it reads low while the queue
    is younger than the window.
    """
    window = _positive_seconds("window_seconds", window_seconds)
    finished = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value)
    query = (
        select(_t.status, func.count())
        .where(_t.status.in_(finished), _t.finished_at_utc >= db.dialect.now_plus(-window))
        .group_by(_t.status)
    )
    with db.read() as conn:
        counts: dict[str, int] = {status: int(n) for status, n in conn.execute(query)}
    completed = counts.get(TaskStatus.COMPLETED.value, 0)
    failed = counts.get(TaskStatus.FAILED.value, 0)
    return Throughput(
        window_seconds=window,
        completed=completed,
        failed=failed,
        completed_per_second=completed / window,
        success_rate=completed / (completed + failed) if completed + failed else None,
    )


def processing_time_percentiles(
    db: QueueDatabase,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    sample_limit: int = DEFAULT_PERCENTILE_SAMPLE_LIMIT,
) -> ProcessingTimes:
    """p50/p95/p99 processing time of tasks completed in the last ``window_seconds``.

    Computed in Python (linear interpolation between closest ranks, numpy's default) over
    the ``sample_limit`` most recent completions, so the cost is bounded however busy the
    queue is and the same code serves every database.
    """
    window = _positive_seconds("window_seconds", window_seconds)
    if isinstance(sample_limit, bool) or not isinstance(sample_limit, int) or sample_limit < 1:
        raise ValueError(f"sample_limit must be a positive integer, got {sample_limit!r}")
    query = (
        select(_t.processing_started_utc, _t.finished_at_utc)
        .where(
            _t.status == TaskStatus.COMPLETED.value,
            _t.finished_at_utc >= db.dialect.now_plus(-window),
            _t.processing_started_utc.is_not(None),
        )
        .order_by(_t.finished_at_utc.desc())
        .limit(sample_limit)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    durations = sorted(
        # Both ends come from the database clock; max() only guards against hand edits.
        max((finished - started).total_seconds(), 0.0)
        for started, finished in rows
        if started is not None and finished is not None
    )
    return ProcessingTimes(
        window_seconds=window,
        sample_size=len(durations),
        p50=_percentile(durations, 0.50),
        p95=_percentile(durations, 0.95),
        p99=_percentile(durations, 0.99),
    )


def queue_stats(db: QueueDatabase) -> QueueStats:
    """Counts by status, per type and per queue, and the backlog age, in one snapshot.

    Everything is read in one read transaction, so the numbers are consistent with each
    other. ``oldest_queued_age_seconds`` is as in :func:`oldest_queued_age_seconds`.
    """
    with db.read() as conn:
        depth = _depth(conn)
        oldest_age, now = _oldest_ready_age(db, conn)
    overall = depth.by_status
    return QueueStats(
        total_tasks=overall.total,
        queued_tasks=overall.queued,
        processing_tasks=overall.leased,
        completed_tasks=overall.completed,
        failed_tasks=overall.failed,
        cancelled_tasks=overall.cancelled,
        oldest_queued_age_seconds=oldest_age,
        by_type=depth.by_type,
        by_queue=depth.by_queue,
        measured_at_utc=now,
    )


def _depth(conn: Connection) -> QueueDepth:
    # One GROUP BY over (queue, type, status) yields all three breakdowns; the number of
    # groups is small (queues x types x 5) whatever the number of tasks.
    rows = conn.execute(
        select(_t.queue, _t.type, _t.status, func.count()).group_by(_t.queue, _t.type, _t.status)
    )
    overall: dict[str, int] = {}
    per_type: dict[str, dict[str, int]] = {}
    per_queue: dict[str, dict[str, int]] = {}
    for queue, task_type, status, n in rows:
        for counts in (
            overall,
            per_type.setdefault(task_type, {}),
            per_queue.setdefault(queue, {}),
        ):
            counts[status] = counts.get(status, 0) + int(n)
    return QueueDepth(
        by_status=_status_counts(overall),
        by_type={name: _status_counts(per_type[name]) for name in sorted(per_type)},
        by_queue={name: _status_counts(per_queue[name]) for name in sorted(per_queue)},
    )


def _status_counts(counts: Mapping[str, int]) -> StatusCounts:
    return StatusCounts(**{status.value: counts.get(status.value, 0) for status in TaskStatus})


def _oldest_ready_age(db: QueueDatabase, conn: Connection) -> tuple[float | None, dt.datetime]:
    """(age of the oldest ready task or None, the database time it was measured at)."""
    now = db.dialect.now()
    ready_since: ColumnElement[dt.datetime] = case(
        (_t.run_after_utc > _t.created_at_utc, _t.run_after_utc), else_=_t.created_at_utc
    )
    oldest = (
        select(func.min(ready_since))
        .where(_t.status == TaskStatus.QUEUED.value, _t.run_after_utc <= now)
        .scalar_subquery()
    )
    # The clock and the minimum in one statement, so both see the same "now".
    row = conn.execute(select(now.label("db_now"), oldest.label("oldest"))).one()
    db_now: dt.datetime = row.db_now
    if row.oldest is None:
        return None, db_now
    return max((db_now - row.oldest).total_seconds(), 0.0), db_now


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks ("type 7"); None for no values."""
    if not sorted_values:
        return None
    rank = fraction * (len(sorted_values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def _positive_seconds(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{field} must be a finite number > 0, got {value!r}")
    return seconds
