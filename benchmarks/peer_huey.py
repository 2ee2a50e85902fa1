"""Huey 3.5.4 on the benchmark page's workloads: its own API, its own consumer program.

The tasks are enqueued from this process by calling the task (``noop()``), Huey's one way to
enqueue: one ``BEGIN EXCLUSIVE`` transaction with one INSERT, committed, per call. Huey
has no bulk API, so ``enqueue_batch`` is the same call, timed in groups of the batch size.

The consumers run as their own processes, started the normal Huey way::

    huey_consumer benchmarks.peer_apps.huey_app.huey -w 4 -k thread -q

(4 worker threads, ``-q``: logging at WARNING, every other setting Huey's default, its
polling back-off included). They stop on SIGINT, Huey's graceful signal, and must then
exit 0. Storage: ``SqliteHuey(fsync=True)``, WAL (Huey's default) and ``synchronous=FULL``.

Huey deletes a task from its queue table when a worker dequeues it, before running it, so
an empty queue does not mean the tasks are done. A task counts as completed when its
result is in the database too: the no-op task returns a value (its start time), which Huey
stores as a row of its result table. Every task's result is checked after each workload.

``benchmarks.peer_apps.huey_app`` (which imports huey) is imported where it is used, so
that this module loads where huey is not installed and :func:`available` can say so.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from benchmarks.durability import sqlite_durability
from benchmarks.errors import BenchmarkError
from benchmarks.processes import LoggedProcess, started, stop_all
from benchmarks.results import (
    Measurement,
    batch_sizes,
    fixed_schedule,
    percentiles_ms,
    progress,
    timed_steps,
)
from benchmarks.sizes import WorkloadSizes
from benchmarks.task_counts import poll_until
from benchmarks.worker_workloads import STARTUP_TIMEOUT_SECONDS
from benchmarks.workers import ROOT

SYSTEM = "huey"
DESCRIPTION = "Huey 3.5.4 (4 threads)"
REQUIREMENTS = ("huey==3.5.4",)
WORKLOADS = ("enqueue_single", "enqueue_batch", "drain", "drain_2w", "latency", "idle_cpu")

APP = "benchmarks.peer_apps.huey_app.huey"
#: ``-q`` sets the ``huey`` logger to WARNING (without it: INFO, with ``-v``: DEBUG).
CONSUMER_FLAGS = ("-w", "4", "-k", "thread", "-q")

#: A line the consumer logs at ERROR or above, or a traceback: a task or a thread failed.
_LOG_FAILURE = re.compile(r"^\[[^]]*\] (ERROR|CRITICAL):|^Traceback ", re.MULTILINE)
_consumer_numbers = itertools.count(1)


def available() -> bool:
    """Whether huey can be imported here."""
    return importlib.util.find_spec("huey") is not None


def durability(url: str) -> str:
    """E.g. ``"sqlite WAL synchronous=FULL on ext4"``, read through Huey's own connection.

    ``journal_mode`` is the file's (WAL is kept in the file); ``synchronous`` is the level
    Huey's storage set on the connection it opened.
    """
    path = _database_path(url)
    with _HueyClient(path) as client:
        return sqlite_durability(client.pragma, str(path))


def measure(workload: str, url: str, sizes: WorkloadSizes, log_dir: Path) -> Measurement:
    """Run ``workload`` once on the fresh SQLite file of ``url``."""
    path = _database_path(url)
    if workload == "enqueue_single":
        return _enqueue_single(path, sizes.enqueue_single)
    if workload == "enqueue_batch":
        return _enqueue_batch(path, sizes.enqueue_batch, sizes.batch_size)
    if workload in {"drain", "drain_2w"}:
        return _drain(
            path, sizes.drain, consumers=2 if workload == "drain_2w" else 1, log_dir=log_dir
        )
    if workload == "latency":
        return _latency(path, sizes, log_dir=log_dir)
    if workload == "idle_cpu":
        return _idle_cpu(path, sizes, log_dir=log_dir)
    raise BenchmarkError(f"{SYSTEM} has no workload {workload!r}")


def _database_path(url: str) -> Path:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BenchmarkError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise BenchmarkError(f"{SYSTEM} runs on an SQLite file, not {url!r}")
    return Path(parsed.database)


# --- The harness's side of Huey ------------------------------------------------------------


class _HueyClient:
    """A Huey instance on the database file, through Huey's API, with typed results."""

    def __init__(self, path: Path) -> None:
        from benchmarks.peer_apps.huey_app import create_task  # noqa: PLC0415 - needs huey

        self._task: Any = create_task(str(path))
        self._huey: Any = self._task.huey

    def __enter__(self) -> _HueyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._huey.storage.close()

    @property
    def queue_name(self) -> str:
        """The ``queue`` column value of this instance's rows."""
        return str(self._huey.name)

    def enqueue(self) -> str:
        """Call the task: Huey enqueues it in one committed transaction. Its task id."""
        return str(self._task().id)

    def pending_count(self) -> int:
        """Tasks in Huey's queue (not yet dequeued by a worker)."""
        return int(self._huey.pending_count())

    def results(self) -> dict[str, object]:
        """Every stored result by task id, deserialized as Huey's ``Result`` does."""
        raw: dict[str, bytes] = self._huey.all_results()
        return {key: self._huey.serializer.deserialize(value) for key, value in raw.items()}

    def pragma(self, name: str) -> object:
        """One PRAGMA, read on the connection Huey's storage opened (and configured)."""
        row: tuple[object, ...] = self._huey.storage.conn.execute(f"PRAGMA {name}").fetchone()
        return row[0]


def _enqueue_single(path: Path, tasks: int) -> Measurement:
    """``tasks`` calls of the task, each one committed transaction; p50/p99 of one call."""
    with _HueyClient(path) as client:
        client.enqueue()  # opens Huey's connection: not part of any timed call
        measured = timed_steps(tasks, (client.enqueue for _ in range(tasks)))
        _require_pending(client, tasks + 1)
    return measured


def _enqueue_batch(path: Path, tasks: int, batch_size: int) -> Measurement:
    """``tasks`` calls of the task (no bulk API), timed in groups of ``batch_size``."""
    with _HueyClient(path) as client:
        client.enqueue()  # opens Huey's connection

        def enqueue_group(size: int) -> None:
            for _ in range(size):
                client.enqueue()

        steps = (functools.partial(enqueue_group, size) for size in batch_sizes(tasks, batch_size))
        measured = timed_steps(tasks, steps)
        _require_pending(client, tasks + 1)
    return measured


def _require_pending(client: _HueyClient, expected: int) -> None:
    pending = client.pending_count()
    if pending != expected:
        raise BenchmarkError(f"expected {expected} tasks in Huey's queue, found {pending}")


# --- What the database says ----------------------------------------------------------------


class _TaskTables:
    """Reads Huey's tables on a connection of its own (the harness's poll, every 50 ms)."""

    def __init__(self, path: Path, queue_name: str) -> None:
        # Autocommit: each poll reads the newest committed state.
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._queue_name = queue_name

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def counts(self) -> tuple[int, int]:
        """(tasks still queued, results stored), in one read transaction."""
        row = self._conn.execute(
            "SELECT (SELECT count(*) FROM task WHERE queue = ?),"
            " (SELECT count(*) FROM kv WHERE queue = ?)",
            (self._queue_name, self._queue_name),
        ).fetchone()
        return int(row[0]), int(row[1])

    def all_done(self, completed: int) -> bool:
        """No task queued, and ``completed`` results stored (one per task run).

        At least ``completed``: a surplus ends the wait too, and fails the exact check of
        :func:`_require_results` that follows, rather than the wait's timeout.
        """
        queued, results = self.counts()
        return queued == 0 and results >= completed


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[_HueyClient, _TaskTables]]:
    with _HueyClient(path) as client:
        tables = _TaskTables(path, client.queue_name)
        try:
            tables.counts()  # the poller's connection is open before any clock starts
            yield client, tables
        finally:
            tables.close()


def _wait_all_done(
    tables: _TaskTables, completed: int, consumers: Sequence[_Consumer], *, timeout: float
) -> float:
    """Poll until no task is queued and ``completed`` results are stored; when it held."""

    def done() -> bool:
        for consumer in consumers:
            consumer.ensure_running()
        return tables.all_done(completed)

    return poll_until(
        done,
        workers=(),
        timeout_seconds=timeout,
        waiting_for=f"{len(consumers)} Huey consumer(s) to complete {completed} tasks",
    )


def _require_results(client: _HueyClient, task_ids: Sequence[str]) -> dict[str, float]:
    """Each task's stored start time; fails unless every task, and nothing else, has one."""
    results = client.results()
    if results.keys() != set(task_ids):
        missing = len(set(task_ids) - results.keys())
        unknown = len(results.keys() - set(task_ids))
        raise BenchmarkError(
            f"expected a result for each of {len(task_ids)} tasks: {missing} missing,"
            f" {unknown} unexpected"
        )
    started = {key: value for key, value in results.items() if isinstance(value, float)}
    if len(started) != len(results):
        failed = next(value for value in results.values() if not isinstance(value, float))
        raise BenchmarkError(f"a task did not return its start time: {failed!r}")
    return started


# --- Consumer processes --------------------------------------------------------------------


def _consumer_program() -> str:
    beside_python = Path(sys.executable).with_name("huey_consumer")
    if not beside_python.is_file():
        raise BenchmarkError(f"huey_consumer not found beside {sys.executable}: install huey")
    return str(beside_python)


def _consumer_environment(path: Path) -> dict[str, str]:
    from benchmarks.peer_apps.huey_app import DATABASE_VARIABLE  # noqa: PLC0415 - needs huey

    env = dict(os.environ)
    env[DATABASE_VARIABLE] = str(path)
    # The application module lives in this repository, not in an installed package.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class _Consumer(LoggedProcess):
    """One ``huey_consumer`` process, stopped by SIGINT (Huey's graceful signal: its
    workers finish their task, then the consumer exits). A line it logs at ERROR or above
    fails the run, since Huey logs a task's or a thread's failure and goes on."""

    kind = "consumer"

    def __init__(self, path: Path, *, log_dir: Path) -> None:
        super().__init__(
            [_consumer_program(), APP, *CONSUMER_FLAGS],
            name=f"huey-{os.getpid()}-{next(_consumer_numbers)}",
            log_dir=log_dir,
            cwd=ROOT,
            env=_consumer_environment(path),
            stop_signal=signal.SIGINT,
        )

    def ensure_running(self) -> None:
        """Raise if the consumer has exited, or logged an error."""
        super().ensure_running()
        self._require_clean_log()

    def wait_stopped(self) -> None:
        """Wait for the exit :meth:`send_stop` asked for; require status 0 and no error logged."""
        super().wait_stopped()
        self._require_clean_log()

    def handles_signals(self) -> bool:
        """Whether the consumer has installed its signal handlers (it has started).

        Until then a SIGINT would raise KeyboardInterrupt wherever the consumer is (its
        imports, say) rather than stop it gracefully. Huey sets its handlers for SIGTERM,
        SIGINT, then SIGHUP once its threads run; Python alone leaves SIGHUP at its
        default, so a caught SIGHUP means all three are Huey's.
        """
        self.ensure_running()
        status = Path(f"/proc/{self.pid}/status").read_text(encoding="ascii")
        caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
        mask = int(caught.split()[1], 16)
        return bool(mask >> (signal.SIGHUP - 1) & 1)

    def _require_clean_log(self) -> None:
        # At WARNING the log stays empty while all goes well: skip reading it then.
        if self.log_path.stat().st_size == 0:
            return
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        if _LOG_FAILURE.search(text):
            raise BenchmarkError(f"consumer {self.name} logged an error{self.log_tail()}")


def _started_consumers(
    path: Path, count: int, *, log_dir: Path
) -> contextlib.AbstractContextManager[list[_Consumer]]:
    """Start ``count`` consumers; whatever happens, none outlives the block."""
    return started(lambda _: _Consumer(path, log_dir=log_dir), count)


def _stop_consumers(consumers: Sequence[_Consumer]) -> None:
    """SIGINT every consumer once it has started, then require each to exit 0."""
    poll_until(
        lambda: all(consumer.handles_signals() for consumer in consumers),
        workers=(),
        timeout_seconds=STARTUP_TIMEOUT_SECONDS,
        waiting_for="every Huey consumer to install its signal handlers",
    )
    stop_all(consumers)


# --- The workloads with consumers ----------------------------------------------------------


def _drain(path: Path, tasks: int, *, consumers: int, log_dir: Path) -> Measurement:
    """Time ``consumers`` fresh consumer processes completing ``tasks`` queued no-op tasks.

    The clock starts just before the first consumer is spawned (start-up included) and
    stops at the first poll that finds no task queued and every result stored.
    ``first_done_s``: from the clock's start to the earliest handler start (a no-op
    returns at once), how much of the figure is start-up.
    """
    with _opened(path) as (client, tables):
        progress(f"huey: enqueueing {tasks:,} tasks (not timed)")
        task_ids = [client.enqueue() for _ in range(tasks)]
        started, started_wall = time.perf_counter(), time.time()
        with _started_consumers(path, consumers, log_dir=log_dir) as running:
            finished = _wait_all_done(
                tables, tasks, running, timeout=STARTUP_TIMEOUT_SECONDS + tasks / 20
            )
            results = _require_results(client, task_ids)
            _stop_consumers(running)
    first_started = min(results.values())
    return Measurement(
        jobs=tasks, seconds=finished - started, extra={"first_done_s": first_started - started_wall}
    )


def _warm_up(client: _HueyClient, tables: _TaskTables, consumers: Sequence[_Consumer]) -> str:
    """Wait until the consumer runs: one task enqueued and completed. The task's id."""
    task_id = client.enqueue()
    _wait_all_done(tables, 1, consumers, timeout=STARTUP_TIMEOUT_SECONDS)
    return task_id


def _latency(path: Path, sizes: WorkloadSizes, *, log_dir: Path) -> Measurement:
    """One idle consumer; tasks enqueued one at a time on a fixed schedule.

    A task's latency is the time its handler started (its result) minus the time just
    before the call that enqueued it, both ``time.time()`` on this machine.
    """
    tasks = sizes.latency_tasks
    with _opened(path) as (client, tables), _started_consumers(path, 1, log_dir=log_dir) as running:
        warm_up_id = _warm_up(client, tables, running)
        time.sleep(sizes.latency_idle_seconds)
        sent_at, seconds = _enqueue_on_schedule(client, tasks, sizes.latency_interval_seconds)
        _wait_all_done(tables, tasks + 1, running, timeout=STARTUP_TIMEOUT_SECONDS)
        results = _require_results(client, [warm_up_id, *sent_at])
        _stop_consumers(running)
    latencies = [results[task_id] - sent for task_id, sent in sent_at.items()]
    if min(latencies) < 0:
        raise BenchmarkError("a handler started before its task was enqueued: clocks disagree")
    p50, p99 = percentiles_ms(latencies)
    return Measurement(jobs=tasks, seconds=seconds, p50_ms=p50, p99_ms=p99)


def _enqueue_on_schedule(
    client: _HueyClient, tasks: int, interval: float
) -> tuple[dict[str, float], float]:
    """Enqueue ``tasks`` tasks, the n-th at start + n * ``interval``.

    The time just before each call (``time.time()``) by task id, and the seconds it took.
    """
    sent_at: dict[str, float] = {}
    schedule_start = time.perf_counter()
    for pause in fixed_schedule(tasks, interval):
        time.sleep(pause)
        before = time.time()
        sent_at[client.enqueue()] = before
    return sent_at, time.perf_counter() - schedule_start


def _idle_cpu(path: Path, sizes: WorkloadSizes, *, log_dir: Path) -> Measurement:
    """CPU an idle consumer uses (Huey's default polling), in % of one core."""
    with _opened(path) as (client, tables), _started_consumers(path, 1, log_dir=log_dir) as running:
        consumer = running[0]
        warm_up_id = _warm_up(client, tables, running)
        time.sleep(sizes.idle_cpu_settle_seconds)
        cpu_before, wall_before = consumer.cpu_seconds(), time.perf_counter()
        time.sleep(sizes.idle_cpu_seconds)
        cpu_after, wall_after = consumer.cpu_seconds(), time.perf_counter()
        _require_results(client, [warm_up_id])
        _stop_consumers(running)
    wall = wall_after - wall_before
    percent = 100 * (cpu_after - cpu_before) / wall
    return Measurement(jobs=0, seconds=wall, extra={"cpu_percent": percent})
