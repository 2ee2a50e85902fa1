"""PgQueuer 1.6.0 on the benchmark page's workloads, measured on this machine in the same run.

Everything goes through PgQueuer's own code at its defaults, except the two settings the
page's figures were measured with: ``batch_size`` 10 (also PgQueuer's default) and WARNING
logging.

- Schema: ``Queries.install()`` with ``durability=durable`` (what ``pgq install`` runs by
  default: every table logged), untimed, into the empty scratch database.
- Producer: ``Queries(AsyncpgDriver(connection)).enqueue(...)`` on one asyncpg connection in
  this process; a scalar call inserts one job, a call with lists inserts many, each call
  one statement and so one committed transaction.
- Workers: ``python -m benchmarks.peer_apps.pgqueuer_app``, one process each: what ``pgq
  run ...:factory --batch-size 10 --log-level WARNING`` runs (``pgqueuer.run``), without
  the command line that fails in 1.6.0 here (see the app). Stopped with SIGTERM (PgQueuer's
  graceful stop), each must exit 0.
- Completion: PgQueuer deletes a finished job from its queue table and, in the same
  statement, logs it in ``pgqueuer_log`` (status ``successful``); the log rows are kept. Its
  workers buffer these writes (up to ``batch_size`` jobs or 0.1 s), and a job stays in the
  queue table until its write commits, so an empty queue table means every job's completion
  is committed. A run counts only when the log holds exactly one ``queued``, one ``picked``
  and one ``successful`` row per job (each written by PgQueuer as the job went through).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy import make_url

from benchmarks.durability import postgres_durability
from benchmarks.errors import BenchmarkError
from benchmarks.processes import LoggedProcess, started, stop_all
from benchmarks.results import Measurement, batch_sizes, fixed_schedule, percentiles_ms
from benchmarks.scratch import connect_postgres, libpq_url, shown
from benchmarks.sizes import WorkloadSizes
from benchmarks.task_counts import poll_until
from benchmarks.task_types import NOOP
from benchmarks.worker_workloads import STARTUP_TIMEOUT_SECONDS
from benchmarks.workers import ROOT

if TYPE_CHECKING:
    from pgqueuer import Queries

SYSTEM = "pgqueuer"
DESCRIPTION = "PgQueuer 1.6.0 (asyncpg, batch 10)"
REQUIREMENTS = ("pgqueuer[asyncpg]==1.6.0",)
WORKLOADS = ("enqueue_single", "enqueue_batch", "drain", "drain_2w", "latency", "idle_cpu")

#: The worker program (batch size 10, WARNING logging: see the module).
WORKER_MODULE = "benchmarks.peer_apps.pgqueuer_app"
#: The variables ``benchmarks/peer_apps/pgqueuer_app.py`` reads its settings from.
_DSN_VARIABLE = "BENCH_PGQUEUER_DSN"
_STAMPS_VARIABLE = "BENCH_PGQUEUER_STAMPS"
#: PgQueuer's default object names (``measure`` refuses PGQUEUER_* variables renaming them).
_QUEUE_TABLE = "pgqueuer"
_LOG_TABLE = "pgqueuer_log"
_TABLES = ("pgqueuer", "pgqueuer_log", "pgqueuer_schedules", "pgqueuer_statistics")
_FILL_CHUNK = 5_000
_worker_numbers = itertools.count(1)


def available() -> bool:
    """Whether PgQueuer and asyncpg can be imported here."""
    try:
        for name in ("pgqueuer", "asyncpg"):
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def durability(url: str) -> str:
    """The server's durability settings and the persistence of PgQueuer's tables in ``url``."""
    with connect_postgres(url) as conn:
        server = postgres_durability(lambda name: _scalar(conn, f"SHOW {name}"))
        rows = conn.execute(
            "SELECT relname, relpersistence FROM pg_class"
            " WHERE relkind = 'r' AND relname = ANY(%s) AND pg_table_is_visible(oid)",
            (list(_TABLES),),
        ).fetchall()
    persistence = {str(name): str(kind) for name, kind in rows}
    missing = [table for table in _TABLES if table not in persistence]
    if missing:
        raise BenchmarkError(f"PgQueuer's schema is not installed in {shown(url)}: no {missing}")
    unlogged = sorted(table for table, kind in persistence.items() if kind != "p")
    if unlogged:
        return f"{server}, PgQueuer tables NOT logged: {', '.join(unlogged)}"
    return f"{server}, PgQueuer durability=durable (all {len(_TABLES)} tables logged)"


def measure(workload: str, url: str, sizes: WorkloadSizes, log_dir: Path) -> Measurement:
    """Run ``workload`` once on ``url``, an empty scratch database."""
    if workload not in WORKLOADS:
        raise BenchmarkError(f"{SYSTEM} has no workload {workload!r}")
    _require_default_settings()
    dsn = libpq_url(url)
    asyncio.run(_install(dsn))
    if workload == "enqueue_single":
        return _enqueue_single(url, dsn, sizes.enqueue_single)
    if workload == "enqueue_batch":
        return _enqueue_batch(url, dsn, sizes.enqueue_batch, sizes.batch_size)
    if workload in ("drain", "drain_2w"):
        workers = 2 if workload == "drain_2w" else 1
        return _drain(url, dsn, sizes.drain, workers=workers, log_dir=log_dir)
    if workload == "latency":
        return _latency(url, dsn, sizes, log_dir)
    return _idle_cpu(url, dsn, sizes, log_dir)


def _require_default_settings() -> None:
    # PGQUEUER_* variables rename PgQueuer's tables or change its settings, in this process
    # and in its workers: the figures would no longer be PgQueuer's defaults.
    overriding = sorted(name for name in os.environ if name.startswith("PGQUEUER_"))
    if overriding:
        raise BenchmarkError(f"unset {', '.join(overriding)}: PgQueuer runs at its defaults")


# --- The producer side: asyncpg, as PgQueuer's documentation enqueues ---


@contextlib.asynccontextmanager
async def _queries(dsn: str) -> AsyncIterator[Queries]:
    """PgQueuer's ``Queries`` over one asyncpg connection, closed afterwards."""
    # Imported here, not above: the harness loads this module where PgQueuer is not installed.
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415
    from pgqueuer import Queries  # noqa: PLC0415
    from pgqueuer.db import AsyncpgDriver  # noqa: PLC0415

    try:
        connection = await asyncpg.connect(dsn=dsn)
    except (OSError, asyncpg.PostgresError) as error:
        raise BenchmarkError(f"cannot connect to PostgreSQL at {shown(dsn)}: {error}") from None
    try:
        yield Queries(AsyncpgDriver(connection))
    finally:
        await connection.close()


async def _install(dsn: str) -> None:
    """PgQueuer's schema, as ``pgq install`` creates it at its default durability."""
    from pgqueuer import Queries  # noqa: PLC0415 - not installed everywhere (see _queries)
    from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment  # noqa: PLC0415
    from pgqueuer.domain.settings import DBSettings, Durability  # noqa: PLC0415

    async with _queries(dsn) as queries:
        settings = DBSettings(durability=Durability.durable)
        installer = Queries(queries.driver, qbe=QueryBuilderEnvironment(settings))
        # Like ``pgq install``: never over an existing installation (a run needs an empty one).
        if await installer.schema_is_installed():
            raise BenchmarkError("PgQueuer's schema is already in the scratch database")
        await installer.install()


async def _enqueue_many(queries: Queries, jobs: int) -> None:
    """One bulk call: ``jobs`` no-op jobs (the lists built inside the call's time)."""
    payloads: list[bytes | None] = [None] * jobs
    await queries.enqueue([NOOP] * jobs, payloads, [0] * jobs)


async def _fill(dsn: str, jobs: int) -> None:
    """Queue ``jobs`` no-op jobs in large bulk calls (untimed preparation)."""
    async with _queries(dsn) as queries:
        for size in batch_sizes(jobs, _FILL_CHUNK):
            await _enqueue_many(queries, size)


async def _timed_calls(jobs: int, calls: Iterable[Callable[[], Awaitable[object]]]) -> Measurement:
    """Await each call in turn: ``jobs`` over the total time, and p50/p99 of one call.

    :func:`benchmarks.results.timed_steps` for coroutines: each call is timed inside one
    running event loop, as an application awaits it.
    """
    durations = []
    started = time.perf_counter()
    for call in calls:
        before = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - before)
    seconds = time.perf_counter() - started
    p50, p99 = percentiles_ms(durations)
    return Measurement(jobs=jobs, seconds=seconds, p50_ms=p50, p99_ms=p99)


async def _timed_single(dsn: str, jobs: int) -> Measurement:
    async with _queries(dsn) as queries:
        await queries.enqueue(NOOP, None)  # prepares the statement: not part of any timed call
        return await _timed_calls(jobs, (lambda: queries.enqueue(NOOP, None) for _ in range(jobs)))


async def _timed_batches(dsn: str, jobs: int, batch_size: int) -> Measurement:
    async with _queries(dsn) as queries:
        await queries.enqueue(NOOP, None)  # prepares the statement: not part of any timed call
        calls = (
            lambda size=size: _enqueue_many(queries, size) for size in batch_sizes(jobs, batch_size)
        )
        return await _timed_calls(jobs, calls)


def _enqueue_single(url: str, dsn: str, jobs: int) -> Measurement:
    """``jobs`` calls of ``Queries.enqueue``, one job and one committed transaction each."""
    measured = asyncio.run(_timed_single(dsn, jobs))
    with connect_postgres(url) as conn:
        _require_queued(conn, jobs + 1)
    return measured


def _enqueue_batch(url: str, dsn: str, jobs: int, batch_size: int) -> Measurement:
    """``jobs`` jobs through ``Queries.enqueue`` with lists, ``batch_size`` a call."""
    measured = asyncio.run(_timed_batches(dsn, jobs, batch_size))
    with connect_postgres(url) as conn:
        _require_queued(conn, jobs + 1)
    return measured


# --- What the database says (psycopg, autocommit): polled while workers run, checked after ---

_Connection = psycopg.Connection[tuple[object, ...]]


def _scalar(conn: _Connection, query: str) -> object:
    row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def _counts_by_status(conn: _Connection, table: str) -> dict[str, int]:
    rows = conn.execute(f"SELECT status::text, count(*) FROM {table} GROUP BY status").fetchall()
    return {str(status): _integer(count) for status, count in rows}


def _integer(value: object) -> int:
    if not isinstance(value, int):
        raise BenchmarkError(f"expected a count from PostgreSQL, got {value!r}")
    return value


def _queue_is_empty(conn: _Connection) -> bool:
    """No job left in PgQueuer's queue table: every job's completion is committed."""
    return _scalar(conn, f"SELECT NOT EXISTS (SELECT 1 FROM {_QUEUE_TABLE})") is True


def _successful(conn: _Connection) -> int:
    return _integer(_scalar(conn, f"SELECT count(*) FROM {_LOG_TABLE} WHERE status = 'successful'"))


def _first_success_at(conn: _Connection) -> float | None:
    """When the first job's completion was logged, as a POSIX timestamp (None: none was)."""
    first = _scalar(
        conn,
        f"SELECT extract(epoch FROM min(created))::float8 FROM {_LOG_TABLE}"
        " WHERE status = 'successful'",
    )
    return first if isinstance(first, float) else None


def _connected(conn: _Connection) -> set[str]:
    """The ``application_name`` of every session on this database."""
    rows = conn.execute(
        "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
    ).fetchall()
    return {str(name) for (name,) in rows}


def _require_queued(conn: _Connection, expected: int) -> None:
    queue = _counts_by_status(conn, _QUEUE_TABLE)
    if queue != {"queued": expected}:
        raise BenchmarkError(f"expected {expected} queued PgQueuer jobs, found {queue}")


def _require_all_successful(conn: _Connection, expected: int) -> None:
    """Every job left the queue, logged queued, picked and successful once: nothing else."""
    queue = _counts_by_status(conn, _QUEUE_TABLE)
    log = _counts_by_status(conn, _LOG_TABLE)
    if queue or log != {"queued": expected, "picked": expected, "successful": expected}:
        raise BenchmarkError(
            f"expected {expected} PgQueuer jobs logged successful and none left queued;"
            f" the queue table holds {queue}, its log {log}"
        )


# --- The worker processes ---


class _Worker(LoggedProcess):
    """One PgQueuer worker process; stopped by SIGTERM (PgQueuer's graceful stop: it stops
    dequeuing, finishes its jobs, flushes its buffers and exits)."""

    def __init__(self, name: str, dsn: str, *, log_dir: Path, stamps: Path | None) -> None:
        super().__init__(
            [sys.executable, "-m", WORKER_MODULE],
            name=name,
            log_dir=log_dir,
            cwd=ROOT,
            env=_worker_environment(_named(dsn, name), stamps),
        )


def _named(dsn: str, name: str) -> str:
    """``dsn`` with ``application_name=name``: tells when the worker has connected."""
    named = make_url(dsn).update_query_dict({"application_name": name})
    return named.render_as_string(hide_password=False)


def _worker_environment(dsn: str, stamps: Path | None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != _STAMPS_VARIABLE}
    # The worker app lives in this repository, not in an installed package.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env[_DSN_VARIABLE] = dsn
    if stamps is not None:
        env[_STAMPS_VARIABLE] = str(stamps)
    return env


def _started_workers(
    dsn: str, count: int, *, log_dir: Path, stamps: Path | None = None
) -> contextlib.AbstractContextManager[list[_Worker]]:
    """Start ``count`` workers; whatever happens, none outlives the block."""
    batch = f"pgqueuer-{os.getpid()}-{next(_worker_numbers)}"
    return started(
        lambda number: _Worker(f"{batch}-w{number}", dsn, log_dir=log_dir, stamps=stamps),
        count,
    )


def _all_running(workers: Sequence[_Worker]) -> bool:
    """True, or a :class:`BenchmarkError` naming a worker that died (with its log)."""
    for worker in workers:
        worker.ensure_running()
    return True


def _poll(
    done: Callable[[], bool], workers: Sequence[_Worker], *, timeout: float, waiting_for: str
) -> float:
    """:func:`~benchmarks.task_counts.poll_until` (every 50 ms), failing fast on a dead worker."""
    return poll_until(
        lambda: _all_running(workers) and done(),
        workers=(),
        timeout_seconds=timeout,
        waiting_for=waiting_for,
    )


def _stop(conn: _Connection, workers: Sequence[_Worker]) -> None:
    """SIGTERM the workers once each has connected; each must then exit 0.

    ``pgqueuer.run`` takes over SIGTERM before it opens the worker's connection: a worker
    signalled earlier would still be importing, and die of Python's default handling.
    """
    names = {worker.name for worker in workers}
    _poll(
        lambda: names <= _connected(conn),
        workers,
        timeout=STARTUP_TIMEOUT_SECONDS,
        waiting_for="every worker to connect",
    )
    stop_all(workers)


def _warm_up(conn: _Connection, workers: Sequence[_Worker], enqueued: int) -> None:
    """Wait until ``enqueued`` jobs are logged successful: the worker runs."""
    _poll(
        lambda: _successful(conn) >= enqueued,
        workers,
        timeout=STARTUP_TIMEOUT_SECONDS,
        waiting_for="the warm-up job",
    )


# --- The workloads that run workers ---


def _drain(url: str, dsn: str, jobs: int, *, workers: int, log_dir: Path) -> Measurement:
    """Time ``workers`` fresh PgQueuer worker processes completing ``jobs`` queued no-op jobs.

    The clock starts just before the first worker is spawned (start-up included) and stops
    at the first poll that finds PgQueuer's queue table empty. ``first_done_s``: from the
    clock's start to the first completion logged.
    """
    asyncio.run(_fill(dsn, jobs))
    with connect_postgres(url) as conn:
        _queue_is_empty(conn)  # the poller's connection is open before the clock starts
        started, started_wall = time.perf_counter(), time.time()
        with _started_workers(dsn, workers, log_dir=log_dir) as running:
            finished = _poll(
                lambda: _queue_is_empty(conn),
                running,
                timeout=STARTUP_TIMEOUT_SECONDS + jobs / 20,
                waiting_for=f"{workers} PgQueuer worker(s) to finish {jobs} jobs",
            )
            _require_all_successful(conn, jobs)
            _stop(conn, running)
        first_done = _first_success_at(conn)
    extra = {} if first_done is None else {"first_done_s": first_done - started_wall}
    return Measurement(jobs=jobs, seconds=finished - started, extra=extra)


async def _enqueue_on_schedule(
    dsn: str, sizes: WorkloadSizes, warm_up: Callable[[], None]
) -> tuple[dict[int, float], float]:
    """The latency jobs, each sent at its time on one connection; when each was sent.

    The warm-up job goes through the same connection, so that the first timed call finds
    it open and its statement prepared.
    """
    async with _queries(dsn) as queries:
        await queries.enqueue(NOOP, None)
        # Nothing else runs on this event loop: blocking it while polling delays nothing.
        warm_up()
        await asyncio.sleep(sizes.latency_idle_seconds)
        sent_at: dict[int, float] = {}
        schedule_start = time.perf_counter()
        for pause in fixed_schedule(sizes.latency_tasks, sizes.latency_interval_seconds):
            await asyncio.sleep(pause)
            before = time.time()
            (job_id,) = await queries.enqueue(NOOP, None)
            sent_at[int(job_id)] = before
        return sent_at, time.perf_counter() - schedule_start


def _read_stamps(path: Path) -> dict[int, float]:
    """The handler's ``"<job id> <start time>"`` lines, by job id."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except OSError as error:
        raise BenchmarkError(f"the latency worker's stamps cannot be read: {error}") from None
    stamps = {}
    for line in lines:
        job_id, started = line.split()
        stamps[int(job_id)] = float(started)
    return stamps


def _latency(url: str, dsn: str, sizes: WorkloadSizes, log_dir: Path) -> Measurement:
    """One idle worker; jobs enqueued one at a time on a fixed schedule.

    A job's latency is the ``time.time()`` its handler started (written to a stamps file)
    minus the ``time.time()`` just before its ``enqueue`` call.
    """
    jobs = sizes.latency_tasks
    stamps_path = log_dir / f"pgqueuer-{os.getpid()}-{next(_worker_numbers)}.stamps"
    stamps_path.unlink(missing_ok=True)
    try:
        with (
            connect_postgres(url) as conn,
            _started_workers(dsn, 1, log_dir=log_dir, stamps=stamps_path) as running,
        ):
            sent_at, seconds = asyncio.run(
                _enqueue_on_schedule(dsn, sizes, lambda: _warm_up(conn, running, 1))
            )
            _poll(
                lambda: _queue_is_empty(conn),
                running,
                timeout=STARTUP_TIMEOUT_SECONDS,
                waiting_for=f"the PgQueuer worker to run {jobs} latency jobs",
            )
            _require_all_successful(conn, jobs + 1)
            _stop(conn, running)
        started_at = _read_stamps(stamps_path)
    finally:
        stamps_path.unlink(missing_ok=True)
    unstamped = sent_at.keys() - started_at.keys()
    if unstamped:
        raise BenchmarkError(f"{len(unstamped)} latency jobs completed without a stamp")
    latencies = [started_at[job_id] - sent for job_id, sent in sent_at.items()]
    if min(latencies) < 0:
        raise BenchmarkError("a handler started before its job was enqueued: clocks disagree")
    p50, p99 = percentiles_ms(latencies)
    return Measurement(jobs=jobs, seconds=seconds, p50_ms=p50, p99_ms=p99)


async def _enqueue_one(dsn: str) -> None:
    async with _queries(dsn) as queries:
        await queries.enqueue(NOOP, None)


def _idle_cpu(url: str, dsn: str, sizes: WorkloadSizes, log_dir: Path) -> Measurement:
    """CPU an idle worker uses (PgQueuer's default timeouts), in % of one core."""
    with (
        connect_postgres(url) as conn,
        _started_workers(dsn, 1, log_dir=log_dir) as running,
    ):
        worker = running[0]
        asyncio.run(_enqueue_one(dsn))
        _warm_up(conn, running, 1)
        time.sleep(sizes.idle_cpu_settle_seconds)
        cpu_before, wall_before = worker.cpu_seconds(), time.perf_counter()
        time.sleep(sizes.idle_cpu_seconds)
        cpu_after, wall_after = worker.cpu_seconds(), time.perf_counter()
        _require_all_successful(conn, 1)
        _stop(conn, running)
    wall = wall_after - wall_before
    percent = 100 * (cpu_after - cpu_before) / wall
    return Measurement(jobs=0, seconds=wall, extra={"cpu_percent": percent})
