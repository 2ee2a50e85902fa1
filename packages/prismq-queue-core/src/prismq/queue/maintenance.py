"""Keeping the database small and healthy: purging old rows, housekeeping, integrity.

Run these from a scheduled job (``prismq maintenance purge --older-than-days 30`` and
``prismq maintenance optimize``, e.g. nightly). Purges delete in batches of their own
transactions, so a large purge never holds the write lock (SQLite) or a huge set of row
locks (PostgreSQL) for long, and workers keep claiming while it runs. Ages are measured
on the database clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Table, and_, delete, or_, select

from prismq.queue.database import QueueDatabase
from prismq.queue.status import TERMINAL_STATUSES, TaskStatus
from prismq.queue.tables import task_log_table, task_table, worker_table

__all__ = [
    "DEFAULT_PURGE_BATCH_SIZE",
    "MAX_PURGE_BATCH_SIZE",
    "MaintenanceReport",
    "integrity_check",
    "optimize",
    "purge_finished_tasks",
    "purge_stopped_workers",
    "purge_task_logs",
    "refresh_stale_statistics",
]

#: Rows deleted per transaction by the purges.
DEFAULT_PURGE_BATCH_SIZE = 5000
#: Largest batch accepted: one batch is one transaction, and it should stay short.
MAX_PURGE_BATCH_SIZE = 100_000

_SECONDS_PER_DAY = 86_400.0
_FINISHED = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MaintenanceReport:
    """What :func:`optimize` did: the backend, one line per operation, and how long it took."""

    backend: str
    operations: tuple[str, ...]
    elapsed_seconds: float


def purge_finished_tasks(
    db: QueueDatabase,
    older_than_days: float,
    statuses: Iterable[TaskStatus | str] = _FINISHED,
    batch_size: int = DEFAULT_PURGE_BATCH_SIZE,
) -> int:
    """Delete tasks in ``statuses`` that finished more than ``older_than_days`` ago.

    ``statuses`` may only name final statuses (completed, failed, cancelled): queued and
    running tasks are never purged. The tasks' log lines are deleted with them (the
    foreign key cascades). Their idempotency keys are forgotten, so the same key can
    enqueue a new task afterwards. Returns the number of tasks deleted.
    """
    wanted = _final_statuses(statuses)
    cutoff = _cutoff(db, older_than_days)
    return _delete_in_batches(
        db,
        task_table,
        task_table.c.id,
        and_(task_table.c.status.in_(wanted), task_table.c.finished_at_utc < cutoff),
        _batch_size(batch_size),
    )


def purge_task_logs(
    db: QueueDatabase, older_than_days: float, batch_size: int = DEFAULT_PURGE_BATCH_SIZE
) -> int:
    """Delete log lines written more than ``older_than_days`` ago, whatever their task.

    Returns the number of log lines deleted. (Logs of purged tasks go with their task
    already; this trims the logs of tasks that are kept, e.g. long-kept dead letters.)
    """
    cutoff = _cutoff(db, older_than_days)
    return _delete_in_batches(
        db,
        task_log_table,
        task_log_table.c.id,
        task_log_table.c.at_utc < cutoff,
        _batch_size(batch_size),
    )


def purge_stopped_workers(
    db: QueueDatabase, older_than_days: float, batch_size: int = DEFAULT_PURGE_BATCH_SIZE
) -> int:
    """Delete the rows of workers gone for more than ``older_than_days``.

    A worker is gone when it stopped cleanly before the cutoff, or never said it stopped
    (it crashed or was killed) and its last heartbeat is older than the cutoff. A worker
    that registers again later simply gets a new row. Returns the number deleted.
    """
    cutoff = _cutoff(db, older_than_days)
    w = worker_table.c
    gone = or_(
        w.stopped_at_utc < cutoff,
        and_(w.stopped_at_utc.is_(None), w.heartbeat_utc < cutoff),
    )
    return _delete_in_batches(db, worker_table, w.worker_id, gone, _batch_size(batch_size))


def optimize(db: QueueDatabase) -> MaintenanceReport:
    """Run the database's housekeeping and report what was done.

    SQLite: ``ANALYZE``, ``VACUUM`` (rewrites the file, returning the space of purged rows
    to the file system; it needs free disk space about the size of the database and
    waits for the write lock like any writer), then ``PRAGMA wal_checkpoint(TRUNCATE)``.
    PostgreSQL: ``VACUUM (ANALYZE)`` of the PrismQ tables (not ``VACUUM FULL``: it does not
    lock the tables and runs beside the workers).
    """
    started = time.monotonic()
    with db.translating_errors():
        operations = db.dialect.optimize(db.engine)
    return MaintenanceReport(
        backend=db.dialect_name,
        operations=tuple(operations),
        elapsed_seconds=time.monotonic() - started,
    )


def refresh_stale_statistics(db: QueueDatabase) -> bool:
    """Re-analyze the task table if it outgrew its planner statistics; True if it did.

    Claims are planned from statistics; on PostgreSQL a table that was empty at its last
    analyze and then filled by a burst is planned as if still empty (sorting every
    queued task on every claim) until autovacuum catches up. Workers call this when they
    start. It never waits for another session's analyze of the table (another worker
    starting, autovacuum): it returns False then, that session's statistics being on
    their way. A no-op on SQLite.
    """
    with db.translating_errors():
        return db.dialect.refresh_stale_statistics(db.engine)


def integrity_check(db: QueueDatabase) -> list[str]:
    """The problems the database's own consistency check finds; ``[]`` when healthy.

    SQLite: ``PRAGMA integrity_check`` (its ``ok`` becomes ``[]``) and ``PRAGMA
    foreign_key_check``; it reads the whole file, so expect it to take a while on a big
    database (it does not block the workers). PostgreSQL has no equivalent built in (the
    ``amcheck`` extension is the nearest, and needs a superuser): only that the server
    answers is checked, and the result is always ``[]``.
    """
    with db.translating_errors():
        return db.dialect.integrity_problems(db.engine)


def _delete_in_batches(
    db: QueueDatabase,
    table: Table,
    key: ColumnElement[object],
    condition: ColumnElement[bool],
    batch_size: int,
) -> int:
    deleted = 0
    while True:
        batch = select(key).where(condition).limit(batch_size).scalar_subquery()
        with db.write() as conn:
            # The condition is repeated on the DELETE itself: on PostgreSQL a row changed
            # since the subquery's snapshot (e.g. a failed task retried meanwhile) is then
            # re-checked and kept.
            count = conn.execute(delete(table).where(key.in_(batch), condition)).rowcount
        deleted += count
        # A short batch means nothing matched beyond it; rows that finish meanwhile are
        # newer than the cutoff, so the loop always ends.
        if count < batch_size:
            return deleted


def _cutoff(db: QueueDatabase, older_than_days: float) -> dt.datetime:
    """The database time ``older_than_days`` ago, read once so every batch agrees on it."""
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, (int, float)):
        raise ValueError(f"older_than_days must be a number, got {older_than_days!r}")
    days = float(older_than_days)
    if not math.isfinite(days) or days < 0:
        raise ValueError(f"older_than_days must be a finite number >= 0, got {older_than_days!r}")
    with db.read() as conn:
        cutoff: dt.datetime = conn.execute(
            select(db.dialect.now_plus(-days * _SECONDS_PER_DAY))
        ).scalar_one()
    return cutoff


def _final_statuses(statuses: Iterable[TaskStatus | str]) -> list[str]:
    if isinstance(statuses, str):
        statuses = [statuses]  # one status, not an iterable of characters
    wanted: list[str] = []
    for value in statuses:
        try:
            status = TaskStatus(value)
        except ValueError:
            raise ValueError(f"unknown task status {value!r}") from None
        if status not in TERMINAL_STATUSES:
            raise ValueError(
                f"status {status.value!r} cannot be purged: only finished tasks"
                " (completed, failed, cancelled) are"
            )
        wanted.append(status.value)
    if not wanted:
        raise ValueError("statuses must name at least one of completed, failed, cancelled")
    return wanted


def _batch_size(batch_size: int) -> int:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_PURGE_BATCH_SIZE
    ):
        raise ValueError(
            f"batch_size must be an integer from 1 to {MAX_PURGE_BATCH_SIZE}, got {batch_size!r}"
        )
    return batch_size
