"""The Huey application of the benchmarks: SQLite storage and one no-op task, Huey's defaults.

Its consumer is started by ``benchmarks/peer_huey.py`` as its own process, the way Huey runs
one::

    huey_consumer benchmarks.peer_apps.huey_app.huey -w 4 -k thread -q

with the database file in ``BENCH_HUEY_DATABASE``. The harness enqueues through an instance
of its own on the same file, made by :func:`create_task`, so that both sides share one
storage configuration and one task name (Huey names a task by its module and function).

The storage is ``SqliteStorage`` with its default ``journal_mode="wal"`` and ``fsync=True``,
which makes it run ``PRAGMA synchronous=2`` (FULL) on each connection it opens; everything
else is Huey's default (results stored, ``store_none=False``, pickle, no compression).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from huey import SqliteHuey  # type: ignore[import-untyped]

DATABASE_VARIABLE = "BENCH_HUEY_DATABASE"


def noop() -> float:
    """Return at once, with the time the handler started (``time.time()``).

    Huey stores a task's return value as a row of its result table, unless it is ``None``;
    a task it dequeued leaves its queue table before it runs, so that row is the only
    trace in the database of the task's completion. The value itself is the handler's
    start time, read by the pickup-latency workload.
    """
    return time.time()


def create_task(database_path: str) -> Any:
    """The task ``noop`` of a new Huey instance on ``database_path`` (``.huey``: the instance).

    Opening the instance creates Huey's tables in the file if they are missing.
    """
    huey = SqliteHuey(filename=database_path, fsync=True)
    return huey.task()(noop)


@functools.cache
def _consumer_huey() -> Any:
    path = os.environ.get(DATABASE_VARIABLE)
    if not path:
        raise RuntimeError(f"{DATABASE_VARIABLE} must name the SQLite file of the Huey queue")
    return create_task(path).huey


def __getattr__(name: str) -> Any:
    """``huey``: the consumer's instance, on the file named by ``BENCH_HUEY_DATABASE``.

    Made on first access rather than at import, because the harness imports this module
    for :func:`create_task` with no such variable, and an instance opens its database.
    """
    if name == "huey":
        return _consumer_huey()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
