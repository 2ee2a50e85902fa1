"""The workloads that run real ``prismq-worker`` processes: drain, latency and idle CPU."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.enqueue_workloads import fill_queue
from benchmarks.errors import BenchmarkError
from benchmarks.results import Measurement, fixed_schedule, percentiles_ms
from benchmarks.task_counts import (
    count_completed,
    count_unfinished,
    first_finished_at,
    poll_until,
    require_all_completed,
    results_of,
)
from benchmarks.task_types import NOOP, STAMP
from benchmarks.workers import WorkerFlags, WorkerProcess, started_workers, stop_all
from prismq.queue import QueueDatabase, enqueue, list_workers

#: Longest wait for a worker to start and run its first task.
STARTUP_TIMEOUT_SECONDS = 60.0


def drain(
    url: str,
    tasks: int,
    *,
    workers: int,
    flags: WorkerFlags,
    log_dir: Path,
    program: Sequence[str] | None = None,
    on_started: Callable[[Sequence[WorkerProcess]], None] | None = None,
) -> Measurement:
    """Time ``workers`` fresh processes completing ``tasks`` queued no-op tasks.

    The clock starts just before the first worker is spawned (start-up included) and stops
    at the first poll that finds no task queued or leased. ``first_done_s`` says how much
    of that was start-up: the time from the clock's start to the first task finished.
    ``on_started`` is called with the workers as soon as they are spawned (a profiler
    attaches there).
    """
    with QueueDatabase(url) as db:
        fill_queue(db, tasks)
        count_unfinished(db)  # the poller's connection is open before the clock starts
        started, started_wall = time.perf_counter(), time.time()
        with started_workers(url, workers, flags, log_dir=log_dir, program=program) as running:
            if on_started is not None:
                on_started(running)
            finished = poll_until(
                lambda: count_unfinished(db) == 0,
                workers=running,
                timeout_seconds=STARTUP_TIMEOUT_SECONDS + tasks / 20,
                waiting_for=f"{workers} worker(s) to finish {tasks} tasks",
            )
            require_all_completed(db, tasks)
            stop_started(db, running)
        first_done = first_finished_at(db)
    extra = {} if first_done is None else {"first_done_s": first_done - started_wall}
    return Measurement(jobs=tasks, seconds=finished - started, extra=extra)


def stop_started(db: QueueDatabase, workers: Sequence[WorkerProcess]) -> None:
    """SIGTERM the workers once each has registered itself; each must then exit 0.

    A worker signalled while it still imports its modules has not started yet (nor taken
    over SIGTERM): stopping it then would test Python's default signal handling, not the
    worker's graceful stop.
    """
    expected = {worker.worker_id for worker in workers}
    poll_until(
        lambda: expected <= {record.worker_id for record in list_workers(db)},
        workers=workers,
        timeout_seconds=STARTUP_TIMEOUT_SECONDS,
        waiting_for="every worker to register",
    )
    stop_all(workers)


def warm_up(db: QueueDatabase, workers: Sequence[WorkerProcess]) -> None:
    """Wait until the workers run: one task enqueued and completed."""
    before = count_completed(db)
    enqueue(db, NOOP)
    poll_until(
        lambda: count_completed(db) > before,
        workers=workers,
        timeout_seconds=STARTUP_TIMEOUT_SECONDS,
        waiting_for="the warm-up task",
    )


def pickup_latency(
    url: str,
    tasks: int,
    *,
    interval_seconds: float,
    idle_seconds: float,
    flags: WorkerFlags,
    log_dir: Path,
) -> Measurement:
    """One idle worker; ``tasks`` tasks enqueued one at a time on a fixed schedule.

    A task's latency is the wall-clock time its handler started (its result) minus the
    time just before its ``enqueue`` call, both ``time.time()`` on this machine.
    """
    with QueueDatabase(url) as db, started_workers(url, 1, flags, log_dir=log_dir) as running:
        warm_up(db, running)
        time.sleep(idle_seconds)
        sent_at: dict[int, float] = {}
        schedule_start = time.perf_counter()
        for pause in fixed_schedule(tasks, interval_seconds):
            time.sleep(pause)
            before = time.time()
            sent_at[enqueue(db, STAMP).task_id] = before
        seconds = time.perf_counter() - schedule_start
        poll_until(
            lambda: count_unfinished(db) == 0,
            workers=running,
            timeout_seconds=STARTUP_TIMEOUT_SECONDS,
            waiting_for=f"the worker to run {tasks} latency tasks",
        )
        require_all_completed(db, tasks + 1)
        results = results_of(db, sent_at)
        stop_started(db, running)
    latencies = [results[task_id]["started_at"] - sent for task_id, sent in sent_at.items()]
    if min(latencies) < 0:
        raise BenchmarkError("a handler started before its task was enqueued: clocks disagree")
    p50, p99 = percentiles_ms(latencies)
    return Measurement(jobs=tasks, seconds=seconds, p50_ms=p50, p99_ms=p99)


def idle_cpu(
    url: str, *, seconds: float, settle_seconds: float, flags: WorkerFlags, log_dir: Path
) -> Measurement:
    """CPU an idle worker uses (default poll settings), in % of one core."""
    with QueueDatabase(url) as db, started_workers(url, 1, flags, log_dir=log_dir) as running:
        worker = running[0]
        warm_up(db, running)
        time.sleep(settle_seconds)
        cpu_before, wall_before = worker.cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        cpu_after, wall_after = worker.cpu_seconds(), time.perf_counter()
        stop_started(db, running)
    wall = wall_after - wall_before
    percent = 100 * (cpu_after - cpu_before) / wall
    return Measurement(jobs=0, seconds=wall, extra={"cpu_percent": percent})
