"""The scale study (``--scale``): how PrismQ's figures move with the size of the work.

- queue depth: claim latency (``claim_tasks(n=1)`` + ``complete``, one at a time) and the
  throughput of one worker draining a slice, with many tasks queued;
- worker processes: the drain of the standard workload with 1, 2, 4, 8 workers;
- completed rows kept: claim latency with many completed tasks left in the table, against
  the same claims on a table without them.

Large queues are filled by one ``INSERT ... SELECT`` (see :mod:`benchmarks.fill`), then
``prismq.queue.optimize`` runs (ANALYZE, as a maintained database would have).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from benchmarks.durability import prismq_durability
from benchmarks.errors import BenchmarkError
from benchmarks.fill import fill_method, fill_tasks
from benchmarks.results import SYSTEM_PRISMQ, Measurement, ResultWriter, percentiles_ms, progress
from benchmarks.scale_report import write_scale_report
from benchmarks.settings import BenchSettings
from benchmarks.suite import Case, run_case
from benchmarks.task_counts import count_completed, poll_until
from benchmarks.task_types import NOOP
from benchmarks.worker_workloads import STARTUP_TIMEOUT_SECONDS, drain, stop_started
from benchmarks.workers import WORKER_SQLITE_SYNCHRONOUS, started_workers
from prismq.queue import QueueDatabase, TaskStatus, claim_tasks, complete, optimize, queue_depth

CLAIMER_ID = "bench-claimer"


def claim_latencies(db: QueueDatabase, claims: int) -> list[float]:
    """Seconds of each of ``claims`` rounds of ``claim_tasks(n=1)`` + ``complete``."""
    samples = []
    for _ in range(claims):
        before = time.perf_counter()
        claimed = claim_tasks(db, CLAIMER_ID, n=1, task_types=[NOOP])
        if len(claimed) != 1:
            raise BenchmarkError(f"a claim returned {len(claimed)} tasks, expected 1")
        complete(db, claimed[0].id, claimed[0].lease_token)
        samples.append(time.perf_counter() - before)
    return samples


def _prepared(db: QueueDatabase, *, queued: int, completed: int = 0) -> None:
    fill_tasks(db, completed, status=TaskStatus.COMPLETED)
    fill_tasks(db, queued, status=TaskStatus.QUEUED)
    optimize(db)


def _depth_run(url: str, depth: int, settings: BenchSettings) -> Measurement:
    """Claim latency on a queue of ``depth`` tasks, then one worker's steady drain rate.

    The rate is counted from the worker's first completion (start-up excluded) over a
    slice of at most half the queue, so the queue stays deep while it is measured.
    """
    sizes = settings.scale_sizes
    with QueueDatabase(url) as db:
        _prepared(db, queued=depth)
        samples = claim_latencies(db, sizes.claims)
        target = min(sizes.depth_drain, (depth - sizes.claims) // 2)
        completed = [count_completed(db)]

        def reached(goal: int) -> bool:
            completed.append(count_completed(db))
            return completed[-1] >= goal

        with started_workers(url, 1, settings.flags, log_dir=settings.log_dir) as running:
            started = poll_until(
                lambda: reached(completed[0] + 1),
                workers=running,
                timeout_seconds=STARTUP_TIMEOUT_SECONDS,
                waiting_for="the worker's first task",
            )
            first = completed[-1]
            finished = poll_until(
                lambda: reached(first + target),
                workers=running,
                timeout_seconds=STARTUP_TIMEOUT_SECONDS + target / 20,
                waiting_for=f"one worker to complete {target} of {depth} queued tasks",
            )
            stop_started(db, running)
        counts = queue_depth(db).by_status
        if counts.queued + counts.completed != depth or counts.completed < first + target:
            raise BenchmarkError(f"after the drain at depth {depth}: {counts.as_dict()}")
    p50, p99 = percentiles_ms(samples)
    return Measurement(
        jobs=completed[-1] - first, seconds=finished - started, p50_ms=p50, p99_ms=p99
    )


def _completed_rows_run(url: str, rows: int, settings: BenchSettings) -> Measurement:
    sizes = settings.scale_sizes
    with QueueDatabase(url) as db:
        _prepared(db, queued=sizes.queued_beside_completed, completed=rows)
        started = time.perf_counter()
        samples = claim_latencies(db, sizes.claims)
        seconds = time.perf_counter() - started
    p50, p99 = percentiles_ms(samples)
    return Measurement(jobs=sizes.claims, seconds=seconds, p50_ms=p50, p99_ms=p99)


def _point(
    backend: str,
    workload: str,
    measure: Callable[[str], Measurement],
    settings: BenchSettings,
    context: dict[str, Any],
) -> dict[str, Any]:
    sqlite = {"sqlite_synchronous": WORKER_SQLITE_SYNCHRONOUS} if backend == "sqlite" else {}
    case = Case(
        system=SYSTEM_PRISMQ,
        workload=workload,
        measure=measure,
        durability=prismq_durability,
        context={**context, **sqlite},
    )
    return run_case(case, backend, settings)


def run_scale(
    backends: Collection[str],
    settings: BenchSettings,
    writer: ResultWriter,
    *,
    report_dir: Path,
    plot_path: Path,
) -> None:
    """Every point of the scale study on ``backends``; then the table and the plot."""
    sizes = settings.scale_sizes
    records: list[dict[str, Any]] = []

    def emit(record: dict[str, Any]) -> None:
        records.append(record)
        writer.write(record)

    base_settings = settings
    for backend in backends:
        settings = base_settings.for_backend(backend)
        for depth in sizes.queue_depths[backend]:
            emit(
                _point(
                    backend,
                    "scale_depth",
                    functools.partial(_depth_run, depth=depth, settings=settings),
                    settings,
                    {
                        "queued": depth,
                        "fill": fill_method(backend),
                        **settings.worker_context(1),
                    },
                )
            )
        for processes in sizes.worker_counts:
            emit(
                _point(
                    backend,
                    "scale_workers",
                    functools.partial(
                        drain,
                        tasks=sizes.workers_drain,
                        workers=processes,
                        flags=settings.flags,
                        log_dir=settings.log_dir,
                    ),
                    settings,
                    {"fill": "enqueue_many", **settings.worker_context(processes)},
                )
            )
        for rows in (0, sizes.completed_rows[backend]):
            emit(
                _point(
                    backend,
                    "scale_completed_rows",
                    functools.partial(_completed_rows_run, rows=rows, settings=settings),
                    settings,
                    {
                        "completed_rows": rows,
                        "queued": sizes.queued_beside_completed,
                        "fill": fill_method(backend),
                    },
                )
            )
    report_dir.mkdir(parents=True, exist_ok=True)
    write_scale_report(records, report_dir / "scale.md", plot_path)
    progress(f"wrote {report_dir / 'scale.md'} and {plot_path}")
