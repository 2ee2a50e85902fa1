"""The producer workloads: ``enqueue_single`` and ``enqueue_batch``, from this one process."""

from __future__ import annotations

import functools

from benchmarks.errors import BenchmarkError
from benchmarks.results import Measurement, batch_sizes, timed_steps
from benchmarks.task_types import NOOP
from prismq.queue import NewTask, QueueDatabase, enqueue, enqueue_many, queue_depth


def enqueue_single(url: str, tasks: int, *, sqlite_synchronous: str) -> Measurement:
    """``tasks`` calls of ``enqueue``, each one committed transaction; p50/p99 of one call."""
    with QueueDatabase(url, sqlite_synchronous=sqlite_synchronous) as db:
        enqueue(db, NOOP)  # opens the connection: not part of any timed call
        measured = timed_steps(tasks, (lambda: enqueue(db, NOOP) for _ in range(tasks)))
        _require_queued(db, tasks + 1)
    return measured


def enqueue_batch(url: str, tasks: int, *, batch_size: int, sqlite_synchronous: str) -> Measurement:
    """``tasks`` tasks through ``enqueue_many`` in calls of ``batch_size``, building included."""
    with QueueDatabase(url, sqlite_synchronous=sqlite_synchronous) as db:
        enqueue(db, NOOP)  # opens the connection

        def enqueue_batch_of(size: int) -> None:
            enqueue_many(db, [NewTask(type=NOOP) for _ in range(size)])

        steps = (
            functools.partial(enqueue_batch_of, size) for size in batch_sizes(tasks, batch_size)
        )
        measured = timed_steps(tasks, steps)
        _require_queued(db, tasks + 1)
    return measured


def fill_queue(db: QueueDatabase, tasks: int, *, task_type: str = NOOP) -> None:
    """Enqueue ``tasks`` tasks in large batches (untimed preparation of a workload)."""
    chunk = 5_000
    for first in range(0, tasks, chunk):
        enqueue_many(db, [NewTask(type=task_type) for _ in range(min(chunk, tasks - first))])


def _require_queued(db: QueueDatabase, expected: int) -> None:
    counts = queue_depth(db).by_status
    if counts.queued != expected or counts.total != expected:
        raise BenchmarkError(f"expected {expected} queued tasks, found {counts.as_dict()}")
