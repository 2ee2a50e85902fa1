"""The PgQueuer worker of the benchmarks: one no-op entrypoint, PgQueuer's defaults otherwise.

Started by ``benchmarks/peer_pgqueuer.py`` as its own process::

    python -m benchmarks.peer_apps.pgqueuer_app

which does what ``pgq run benchmarks.peer_apps.pgqueuer_app:factory --batch-size 10
--log-level WARNING`` does once it has parsed its arguments: PgQueuer's logging set up at
WARNING, then ``pgqueuer.run(factory, batch_size=10)`` on the event loop ``pgq`` picks
(uvloop when installed). ``pgq run`` itself cannot be used: with typer 0.29, PgQueuer
1.6.0's ``--log-level`` option reaches its logging set-up as a string where an enum is
expected, and every ``pgq run`` fails at start (``'str' object has no attribute 'name'``).

Settings come from the environment:

- ``BENCH_PGQUEUER_DSN``: the database, as a libpq URL (asyncpg connects with it).
- ``BENCH_PGQUEUER_STAMPS`` (latency only): a file to which the handler appends
  ``"<job id> <time.time() at handler start>"``, one line per job, since PgQueuer keeps no
  result of a job.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TextIO

import asyncpg  # type: ignore[import-untyped]
import pgqueuer
from pgqueuer import PgQueuer
from pgqueuer.adapters.cli.cli import asyncio_run
from pgqueuer.core import logconfig
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job

from benchmarks.task_types import NOOP

DSN_VARIABLE = "BENCH_PGQUEUER_DSN"
STAMPS_VARIABLE = "BENCH_PGQUEUER_STAMPS"
#: The batch size the page's figures were measured with (PgQueuer's default too).
BATCH_SIZE = 10

Handler = Callable[[Job], Awaitable[None]]


async def noop(job: Job) -> None:
    """Do nothing: the no-op job of the throughput workloads."""


def stamping(stamps: TextIO) -> Handler:
    """A handler that records when it started, then returns at once."""

    async def stamp(job: Job) -> None:
        started = time.time()
        stamps.write(f"{job.id} {started!r}\n")
        # Flushed at once: no stamp waits in a buffer on how the worker ends.
        stamps.flush()

    return stamp


@contextlib.asynccontextmanager
async def factory() -> AsyncIterator[PgQueuer]:
    """What ``pgqueuer.run`` runs: PgQueuer on one asyncpg connection, one entrypoint."""
    stamps_path = os.environ.get(STAMPS_VARIABLE)
    connection = await asyncpg.connect(dsn=os.environ[DSN_VARIABLE])
    try:
        with contextlib.ExitStack() as files:
            pgq = PgQueuer(AsyncpgDriver(connection))
            handler: Handler = noop
            if stamps_path:
                handler = stamping(files.enter_context(open(stamps_path, "a", encoding="ascii")))
            pgq.entrypoint(NOOP)(handler)
            yield pgq
    finally:
        await connection.close()


def main() -> None:
    """Run the worker until SIGTERM or SIGINT, as ``pgq run`` does."""
    logconfig.setup_fancy_logger(logconfig.LogLevel.WARNING)
    asyncio_run(pgqueuer.run(factory, batch_size=BATCH_SIZE))


if __name__ == "__main__":
    main()
