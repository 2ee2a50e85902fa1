"""Maintenance: purging old tasks, logs and workers; optimize; integrity check.

Runs on SQLite and PostgreSQL (``PRISMQ_TEST_BACKEND``); the few checks of what only one
database has are marked so.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conformance_support import count_logs, count_tasks, db_now
from sqlalchemy import event, func, select, text, update

from prismq.queue import (
    NewTask,
    QueueDatabase,
    TaskStatus,
    claim_tasks,
    complete,
    enqueue,
    enqueue_many,
    fail,
    get_task,
    integrity_check,
    list_workers,
    log,
    mark_worker_stopped,
    optimize,
    purge_finished_tasks,
    purge_stopped_workers,
    purge_task_logs,
    refresh_stale_statistics,
    register_worker,
    request_cancel,
)
from prismq.queue.models import task_log_table, task_table, worker_table

DAY = dt.timedelta(days=1)


def finished(db: QueueDatabase, outcome: str, n: int = 1, *, key: str | None = None) -> list[int]:
    """``n`` tasks taken through the public API to completed, failed or cancelled."""
    if key is not None:
        ids = [enqueue(db, "t", idempotency_key=key).task_id]
    else:
        ids = enqueue_many(db, [NewTask(type="t") for _ in range(n)])
    if outcome == "cancelled":
        for task_id in ids:
            request_cancel(db, task_id)
        return ids
    claimed = claim_tasks(db, "maintenance-worker", len(ids), strategy="lifo")
    assert sorted(task.id for task in claimed) == sorted(ids)
    for task in claimed:
        if outcome == "completed":
            complete(db, task.id, task.lease_token)
        else:
            fail(db, task.id, task.lease_token, "boom", retryable=False)
    return ids


def age(db: QueueDatabase, table: Any, key: Any, keys: list[Any], **ago: dt.timedelta) -> None:
    """Set timestamp columns of some rows to that long before the database's now."""
    now = db_now(db)
    with db.write() as conn:
        conn.execute(
            update(table)
            .where(key.in_(keys))
            .values({column: now - delta for column, delta in ago.items()})
        )


def age_tasks(db: QueueDatabase, ids: list[int], finished_ago: dt.timedelta) -> None:
    age(db, task_table, task_table.c.id, ids, finished_at_utc=finished_ago)


def existing_ids(db: QueueDatabase) -> set[int]:
    with db.read() as conn:
        return set(conn.execute(select(task_table.c.id)).scalars())


def logs_of(db: QueueDatabase, task_ids: list[int]) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(task_log_table)
                .where(task_log_table.c.task_id.in_(task_ids))
            ).scalar_one()
        )


@pytest.fixture
def delete_statements(db: QueueDatabase) -> Iterator[list[str]]:
    """The DELETE statements the engine runs while the test does."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        statement: str = args[2]
        if statement.lstrip().upper().startswith("DELETE"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


# -- purge_finished_tasks ----------------------------------------------------------------


def test_purge_deletes_only_tasks_finished_before_the_cutoff_and_their_logs(
    db: QueueDatabase,
) -> None:
    old = finished(db, "completed", 2) + finished(db, "failed") + finished(db, "cancelled")
    recent = finished(db, "completed") + finished(db, "failed")
    queued = enqueue(db, "t").task_id
    leased = enqueue(db, "t").task_id
    assert [task.id for task in claim_tasks(db, "w", 1, strategy="lifo")] == [leased]
    assert get_task(db, leased).status is TaskStatus.LEASED
    for task_id in [*old, *recent, queued, leased]:
        log(db, task_id, "a line")
        log(db, task_id, "another line")
    age_tasks(db, old, 3 * DAY)
    age_tasks(db, recent, DAY / 2)
    # Unfinished tasks are never purged, however old they are.
    age(db, task_table, task_table.c.id, [queued, leased], created_at_utc=30 * DAY)

    assert purge_finished_tasks(db, older_than_days=1) == 4

    assert existing_ids(db) == {*recent, queued, leased}
    # ON DELETE CASCADE took the purged tasks' logs (on SQLite: foreign_keys is on).
    assert logs_of(db, old) == 0
    assert count_logs(db) == 2 * 4


def test_purge_can_be_limited_to_some_statuses(db: QueueDatabase) -> None:
    completed = finished(db, "completed")
    failed = finished(db, "failed")
    cancelled = finished(db, "cancelled")
    age_tasks(db, completed + failed + cancelled, 2 * DAY)

    assert purge_finished_tasks(db, 1, statuses=[TaskStatus.COMPLETED]) == 1
    assert existing_ids(db) == {*failed, *cancelled}
    assert purge_finished_tasks(db, 1, statuses="cancelled") == 1
    assert existing_ids(db) == set(failed)
    assert purge_finished_tasks(db, 1) == 1
    assert existing_ids(db) == set()


def test_purge_deletes_in_batches_of_their_own(
    db: QueueDatabase, delete_statements: list[str]
) -> None:
    old = finished(db, "completed", 12)
    age_tasks(db, old, 2 * DAY)

    assert purge_finished_tasks(db, 1, batch_size=5) == 12

    assert existing_ids(db) == set()
    assert len(delete_statements) == 3  # 5 + 5 + 2


def test_purge_with_nothing_to_delete_returns_zero(db: QueueDatabase) -> None:
    finished(db, "completed")
    assert purge_finished_tasks(db, 1) == 0
    assert count_tasks(db) == 1
    # Zero days: everything finished before now.
    assert purge_finished_tasks(db, 0) == 1


def test_purged_idempotency_key_can_be_used_again(db: QueueDatabase) -> None:
    [first] = finished(db, "completed", key="invoice-7")
    age_tasks(db, [first], 10 * DAY)
    assert purge_finished_tasks(db, 7) == 1

    again = enqueue(db, "t", idempotency_key="invoice-7")
    assert again.created
    assert again.task.status is TaskStatus.QUEUED


@pytest.mark.parametrize(
    "statuses", [["queued"], ["leased"], ["completed", "leased"], ["nope"], []]
)
def test_purge_refuses_unfinished_or_unknown_statuses(
    db: QueueDatabase, statuses: list[str]
) -> None:
    queued = enqueue(db, "t").task_id
    with pytest.raises(ValueError, match="status"):
        purge_finished_tasks(db, 0, statuses=statuses)
    assert existing_ids(db) == {queued}


@pytest.mark.parametrize("days", [-1, float("nan"), float("inf"), "7", True])
def test_purges_refuse_bad_ages(db: QueueDatabase, days: Any) -> None:
    for purge in (purge_finished_tasks, purge_task_logs, purge_stopped_workers):
        with pytest.raises(ValueError, match="older_than_days"):
            purge(db, days)


@pytest.mark.parametrize("batch_size", [0, -1, 10**9, 2.5, True])
def test_purge_refuses_bad_batch_sizes(db: QueueDatabase, batch_size: Any) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        purge_finished_tasks(db, 1, batch_size=batch_size)


# -- purge_task_logs / purge_stopped_workers ---------------------------------------------


def test_purge_task_logs_deletes_old_lines_of_kept_tasks(
    db: QueueDatabase, delete_statements: list[str]
) -> None:
    task_id = enqueue(db, "t").task_id
    old_lines = [log(db, task_id, f"old {i}") for i in range(3)]
    recent_line = log(db, task_id, "recent")
    age(db, task_log_table, task_log_table.c.id, old_lines, at_utc=2 * DAY)

    assert purge_task_logs(db, 1, batch_size=2) == 3

    with db.read() as conn:
        assert list(conn.execute(select(task_log_table.c.id)).scalars()) == [recent_line]
    assert existing_ids(db) == {task_id}
    assert len(delete_statements) == 2  # 2 + 1


def test_purge_stopped_workers_keeps_live_and_recently_stopped_ones(db: QueueDatabase) -> None:
    for worker_id in ("stopped-long-ago", "stopped-recently", "crashed-long-ago", "alive"):
        register_worker(db, worker_id)
    mark_worker_stopped(db, "stopped-long-ago")
    mark_worker_stopped(db, "stopped-recently")
    w = worker_table.c
    age(db, worker_table, w.worker_id, ["stopped-long-ago"], stopped_at_utc=10 * DAY)
    age(db, worker_table, w.worker_id, ["stopped-recently"], stopped_at_utc=DAY / 2)
    age(db, worker_table, w.worker_id, ["crashed-long-ago"], heartbeat_utc=10 * DAY)
    # Stopped recently, even though its last heartbeat was long before.
    age(db, worker_table, w.worker_id, ["stopped-recently"], heartbeat_utc=10 * DAY)

    assert purge_stopped_workers(db, 1) == 2

    assert {worker.worker_id for worker in list_workers(db)} == {"stopped-recently", "alive"}


# -- optimize / integrity_check ----------------------------------------------------------


def test_optimize_reports_what_it_ran(db: QueueDatabase, backend: str) -> None:
    finished(db, "completed", 3)
    report = optimize(db)
    assert report.backend == backend
    assert report.elapsed_seconds >= 0
    if backend == "sqlite":
        assert report.operations[:2] == ("ANALYZE", "VACUUM")
        assert report.operations[2].startswith("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        assert len(report.operations) == 1
        assert report.operations[0].startswith("VACUUM (ANALYZE) ")
        for table in ("task_queue", "task_logs", "workers", "api_tokens"):
            assert table in report.operations[0]
    # The database is as usable as before.
    assert count_tasks(db) == 3
    assert integrity_check(db) == []


@pytest.mark.backend("sqlite")
def test_sqlite_optimize_returns_purged_space_and_empties_the_wal(
    db: QueueDatabase, backend: str
) -> None:
    path = Path(db.url.database or "")
    ids = enqueue_many(db, [NewTask(type="t", payload={"blob": "x" * 2000}) for _ in range(500)])
    for task_id in ids:
        request_cancel(db, task_id)
    optimize(db)
    full_size = path.stat().st_size
    assert purge_finished_tasks(db, 0) == 500

    report = optimize(db)

    assert path.stat().st_size < full_size / 4
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert "incomplete" not in report.operations[-1]
    assert integrity_check(db) == []


@pytest.mark.backend("postgresql")
def test_postgresql_optimize_vacuums_and_analyzes_the_tables(
    db: QueueDatabase, backend: str
) -> None:
    finished(db, "completed", 3)
    optimize(db)
    with db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, last_vacuum, last_analyze FROM pg_stat_user_tables"
                " WHERE relname IN ('task_queue', 'task_logs', 'workers', 'api_tokens')"
            )
        ).all()
    assert len(rows) == 4
    assert all(row.last_vacuum is not None and row.last_analyze is not None for row in rows)


def _analyze_now(db: QueueDatabase) -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE task_queue")


def _burst(db: QueueDatabase) -> None:
    # Far past the size the statistics were taken at: 6,000 rows fill over 100 pages.
    for _ in range(3):
        enqueue_many(db, [NewTask(type="burst", payload={"pad": "x" * 40})] * 2_000)


@pytest.mark.backend("postgresql")
def test_postgresql_statistics_are_refreshed_after_a_burst_and_only_then(
    db: QueueDatabase, backend: str
) -> None:
    _analyze_now(db)
    assert refresh_stale_statistics(db) is False
    _burst(db)
    assert refresh_stale_statistics(db) is True
    with db.read() as conn:
        tuples = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'task_queue'::regclass")
        ).scalar_one()
    assert tuples >= 5_000  # the planner now knows the table's size (an estimate)
    assert refresh_stale_statistics(db) is False


@pytest.mark.backend("postgresql")
def test_postgresql_statistics_refresh_never_waits_for_another_analyze(
    db: QueueDatabase, backend: str
) -> None:
    # Workers that start together must not queue behind each other's ANALYZE (nor behind
    # autovacuum's): the one that finds the table's analyze lock taken goes on at once.
    _analyze_now(db)
    _burst(db)
    outcome: list[bool] = []
    with db.engine.connect() as holder:
        holder.exec_driver_sql("LOCK TABLE task_queue IN SHARE UPDATE EXCLUSIVE MODE")
        refresher = threading.Thread(target=lambda: outcome.append(refresh_stale_statistics(db)))
        refresher.start()
        refresher.join(timeout=10)
        waited = refresher.is_alive()
        holder.rollback()
    refresher.join(timeout=10)
    assert not waited, "the refresh waited for the lock instead of skipping"
    assert outcome == [False]  # skipped: the statistics are still stale
    assert refresh_stale_statistics(db) is True  # once the lock is free it analyzes


@pytest.mark.backend("sqlite")
def test_sqlite_has_no_statistics_to_refresh(db: QueueDatabase, backend: str) -> None:
    _burst(db)
    assert refresh_stale_statistics(db) is False


def test_integrity_check_of_a_healthy_database_is_empty(db: QueueDatabase) -> None:
    finished(db, "completed", 2)
    assert integrity_check(db) == []


@pytest.mark.backend("sqlite")
def test_sqlite_integrity_check_reports_dangling_foreign_keys(
    db: QueueDatabase, backend: str
) -> None:
    task_id = enqueue(db, "t").task_id
    # A connection without PrismQ's settings (foreign_keys off, SQLite's default).
    raw = sqlite3.connect(db.url.database or "")
    try:
        with raw:
            raw.execute(
                "INSERT INTO task_logs (task_id, at_utc, level, message)"
                " VALUES (?, '2024-01-01 00:00:00.000000', 'info', 'orphan')",
                (task_id + 1000,),
            )
    finally:
        raw.close()

    assert integrity_check(db) == ["task_logs row 1: no matching row in task_queue"]


@pytest.mark.backend("sqlite")
def test_sqlite_integrity_check_reports_a_damaged_file(db: QueueDatabase, backend: str) -> None:
    enqueue_many(db, [NewTask(type="t", payload={"blob": "x" * 500}) for _ in range(2000)])
    optimize(db)  # everything in the main file, the WAL empty
    db.close()
    path = Path(db.url.database or "")
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(size // 2 // 4096 * 4096)
        file.write(b"\xff" * 4096 * 4)

    problems = integrity_check(db)

    assert problems
    assert any("malformed" in problem or "corrupt" in problem for problem in problems)
