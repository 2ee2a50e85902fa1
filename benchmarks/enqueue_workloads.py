"""The producer workloads: ``enqueue_single`` and ``enqueue_batch``, from this one process."""

from __future__ import annotations

import time

from benchmarks.errors import BenchmarkError
from benchmarks.results import Measurement, percentiles_ms
from benchmarks.task_types import NOOP
from prismq.queue import NewTask, QueueDatabase, enqueue, enqueue_many, queue_depth


def enqueue_single(url: str, tasks: int, *, sqlite_synchronous: str) -> Measurement:
    """``tasks`` calls of ``enqueue``, each one committed transaction; p50/p99 of one call."""
    with QueueDatabase(url, sqlite_synchronous=sqlite_synchronous) as db:
        enqueue(db, NOOP)  # opens the connection: not part of any timed call
        durations = []
        started = time.perf_counter()
        for _ in range(tasks):
            before = time.perf_counter()
            enqueue(db, NOOP)
            durations.append(time.perf_counter() - before)
        seconds = time.perf_counter() - started
        _require_queued(db, tasks + 1)
    p50, p99 = percentiles_ms(durations)
    return Measurement(jobs=tasks, seconds=seconds, p50_ms=p50, p99_ms=p99)


def enqueue_batch(url: str, tasks: int, *, batch_size: int, sqlite_synchronous: str) -> Measurement:
    """``tasks`` tasks through ``enqueue_many`` in calls of ``batch_size``, building included."""
    with QueueDatabase(url, sqlite_synchronous=sqlite_synchronous) as db:
        enqueue(db, NOOP)  # opens the connection
        durations = []
        started = time.perf_counter()
        for first in range(0, tasks, batch_size):
            before = time.perf_counter()
            batch = [NewTask(type=NOOP) for _ in range(min(batch_size, tasks - first))]
            enqueue_many(db, batch)
            durations.append(time.perf_counter() - before)
        seconds = time.perf_counter() - started
        _require_queued(db, tasks + 1)
    p50, p99 = percentiles_ms(durations)
    return Measurement(jobs=tasks, seconds=seconds, p50_ms=p50, p99_ms=p99)


def fill_queue(db: QueueDatabase, tasks: int, *, task_type: str = NOOP) -> None:
    """Enqueue ``tasks`` tasks in large batches (untimed preparation of a workload)."""
    chunk = 5_000
    for first in range(0, tasks, chunk):
        enqueue_many(db, [NewTask(type=task_type) for _ in range(min(chunk, tasks - first))])


def _require_queued(db: QueueDatabase, expected: int) -> None:
    counts = queue_depth(db).by_status
    if counts.queued != expected or counts.total != expected:
        raise BenchmarkError(f"expected {expected} queued tasks, found {counts.as_dict()}")
