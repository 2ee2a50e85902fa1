"""What the database says about the tasks: polled while workers run, checked after."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import func, select

from benchmarks.errors import BenchmarkError
from benchmarks.workers import WorkerProcess
from prismq.queue import QueueDatabase, TaskStatus, queue_depth
from prismq.queue.models import task_table

#: How often a running workload asks the database how far the workers got.
POLL_SECONDS = 0.050

_t = task_table.c
_COUNT_UNFINISHED = (
    select(func.count())
    .select_from(task_table)
    .where(_t.status.in_([TaskStatus.QUEUED.value, TaskStatus.LEASED.value]))
)
_COUNT_COMPLETED = (
    select(func.count()).select_from(task_table).where(_t.status == TaskStatus.COMPLETED.value)
)


def count_unfinished(db: QueueDatabase) -> int:
    """Tasks still queued or leased (one cheap COUNT on the status index)."""
    with db.read() as conn:
        return int(conn.execute(_COUNT_UNFINISHED).scalar_one())


def count_completed(db: QueueDatabase) -> int:
    """Tasks completed so far."""
    with db.read() as conn:
        return int(conn.execute(_COUNT_COMPLETED).scalar_one())


def first_finished_at(db: QueueDatabase) -> float | None:
    """When the first task finished, as a POSIX timestamp (None: none has)."""
    with db.read() as conn:
        first = conn.execute(select(func.min(_t.finished_at_utc))).scalar_one()
    return None if first is None else float(first.timestamp())


def poll_until(
    done: Callable[[], bool],
    *,
    workers: Sequence[WorkerProcess],
    timeout_seconds: float,
    waiting_for: str,
) -> float:
    """Check ``done()`` every 50 ms; returns ``time.perf_counter()`` when it first held.

    Fails fast when a worker dies, and after ``timeout_seconds``.
    """
    deadline = time.perf_counter() + timeout_seconds
    while True:
        if done():
            return time.perf_counter()
        for worker in workers:
            worker.ensure_running()
        if time.perf_counter() > deadline:
            raise BenchmarkError(f"gave up after {timeout_seconds:.0f} s waiting for {waiting_for}")
        time.sleep(POLL_SECONDS)


def require_all_completed(db: QueueDatabase, expected: int) -> None:
    """Every one of the ``expected`` tasks is ``completed``: nothing else counts."""
    counts = queue_depth(db).by_status
    if counts.completed != expected or counts.total != expected:
        raise BenchmarkError(
            f"expected {expected} completed tasks, the database holds {counts.as_dict()}"
        )


def results_of(db: QueueDatabase, task_ids: Collection[int]) -> dict[int, Any]:
    """The stored results of completed tasks, by id (missing: not completed)."""
    query = select(_t.id, _t.result).where(
        _t.id.in_(list(task_ids)), _t.status == TaskStatus.COMPLETED.value
    )
    with db.read() as conn:
        return {int(task_id): result for task_id, result in conn.execute(query)}
