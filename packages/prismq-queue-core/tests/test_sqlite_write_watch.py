"""SQLite's listener sleeps until the database file is written to, where it can (Linux).

The waits of ``test_notifications`` run through this path already; these tests check what
is particular to it: which writes wake it, that it survives the WAL being deleted and made
again, and that the timer it falls back to still works.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from prismq.queue import QueueDatabase, enqueue
from prismq.queue.notifications import SQLiteTaskListener, TaskListener, open_task_listener
from prismq.queue.notifications import sqlite as sqlite_listener
from prismq.queue.notifications.file_changes import watch_writes

pytestmark = pytest.mark.backend("sqlite")

ON_LINUX = sys.platform.startswith("linux")
WAIT_SECONDS = 10.0


def _enqueue_in_another_process(url: str, delay: float, committed_at: Any) -> None:
    with QueueDatabase(url) as db:
        db.ping()  # connected: the delay below is the only wait before the commit
        time.sleep(delay)
        enqueue(db, "t")
        committed_at.value = time.time()


def _woken_after_commit(listener: TaskListener, url: str) -> float:
    """Seconds from another process's commit to the end of the listener's wait."""
    context = multiprocessing.get_context("spawn")
    committed_at = context.Value("d", 0.0)
    child = context.Process(target=_enqueue_in_another_process, args=(url, 0.5, committed_at))
    child.start()
    try:
        assert listener.wait(WAIT_SECONDS) is True
        woken_at = time.time()
    finally:
        child.join(30)
    assert child.exitcode == 0
    return woken_at - committed_at.value


@pytest.fixture
def long_backstop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a write (or with the watch broken) the wait would now last 5 s: a prompt
    # wake-up can only have come from the watch.
    if ON_LINUX:
        monkeypatch.setattr(sqlite_listener, "WATCHED_POLL_INTERVAL_SECONDS", 5.0)


def _database_path(db: QueueDatabase) -> Path:
    assert db.url.database
    return Path(db.url.database)


def test_the_listener_watches_for_writes_where_the_platform_allows(db: QueueDatabase) -> None:
    with open_task_listener(db) as listener:
        assert isinstance(listener, SQLiteTaskListener)
        assert listener.watching_writes is ON_LINUX


@pytest.mark.skipif(not ON_LINUX, reason="inotify is Linux's")
def test_the_watch_reports_writes_to_the_database_and_its_wal_only(
    db: QueueDatabase, tmp_path: Path
) -> None:
    path = _database_path(db)
    watch = watch_writes(str(path))
    assert watch is not None
    try:
        (path.parent / "unrelated.txt").write_text("not the database")
        assert watch.drain() is False
        enqueue(db, "t")  # a commit: the WAL is written
        assert watch.drain() is True
        assert watch.drain() is False  # drained
    finally:
        watch.close()


@pytest.mark.usefixtures("long_backstop")
def test_a_quiet_listener_is_woken_by_a_commit_from_another_process(db: QueueDatabase) -> None:
    with open_task_listener(db) as listener:
        listener.wait(1.2)  # quiet for over a second: the idle regime
        assert _woken_after_commit(listener, str(db.url)) < 1.0


@pytest.mark.usefixtures("long_backstop")
def test_a_wal_deleted_and_made_again_still_wakes_the_listener(database_url: str) -> None:
    # SQLite deletes the WAL when its last connection closes; a watch on the file itself
    # would then go silent. The directory is watched instead.
    with QueueDatabase(database_url) as db:
        enqueue(db, "t")
    wal = Path(f"{make_url(database_url).database}-wal")
    assert not wal.exists()
    with QueueDatabase(database_url) as db, open_task_listener(db) as listener:
        assert listener.watching_writes is ON_LINUX  # the file may not exist: no matter
        listener.wait(0.05)
        assert _woken_after_commit(listener, database_url) < 1.0


def test_without_a_watch_the_listener_checks_on_a_timer(db: QueueDatabase) -> None:
    listener = SQLiteTaskListener(db.url, use_write_watch=False)
    listener.start()
    try:
        assert listener.watching_writes is False
        assert listener.wait(0.1) is False
        enqueue(db, "t")
        started = time.monotonic()
        assert listener.wait(WAIT_SECONDS) is True
        assert time.monotonic() - started < 1.0
    finally:
        listener.close()


def test_a_closed_listener_can_wait_again(db: QueueDatabase) -> None:
    # A failed start closes the listener and leaves the next wait to try again.
    with open_task_listener(db) as listener:
        listener.close()
        assert listener.wait(0.05) is False
        enqueue(db, "t")
        assert listener.wait(WAIT_SECONDS) is True
        assert listener.watching_writes is ON_LINUX


def test_a_watch_that_cannot_be_had_is_not_tried_at_every_wait(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def unavailable(path: str) -> None:
        attempts.append(path)

    monkeypatch.setattr(sqlite_listener, "watch_writes", unavailable)
    with open_task_listener(db) as listener:
        for _ in range(3):
            assert listener.wait(0.01) is False
        assert listener.watching_writes is False
        enqueue(db, "t")
        assert listener.wait(WAIT_SECONDS) is True  # on the timer
        assert len(attempts) == 1
        listener.close()
        listener.wait(0.01)
        assert len(attempts) == 2  # tried again after a close
