"""SQLite online backup and restore; PostgreSQL points at pg_dump / pg_restore.

The SQLite tests are marked ``backend("sqlite")`` and the PostgreSQL test
``backend("postgresql")``: each runs (and is deselected elsewhere) in its own backend's run.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance_support import count_tasks, poll_until
from sqlalchemy import select

from prismq.queue import (
    BackupError,
    NewTask,
    QueueDatabase,
    backup_sqlite,
    enqueue,
    enqueue_many,
    integrity_check,
    migrate,
    restore_sqlite,
)
from prismq.queue.models import task_table


@pytest.fixture
def sqlite_db(db: QueueDatabase, backend: str) -> QueueDatabase:
    assert backend == "sqlite", "only for tests marked backend('sqlite')"
    return db


def task_ids(db: QueueDatabase) -> list[int]:
    with db.read() as conn:
        return list(conn.execute(select(task_table.c.id).order_by(task_table.c.id)).scalars())


class Enqueuer(threading.Thread):
    """Keeps enqueuing one task at a time until stopped, counting what it committed."""

    def __init__(self, db: QueueDatabase) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.committed = 0
        self.error: BaseException | None = None
        self._stop_requested = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_requested.is_set():
                enqueue(self.db, "during-backup", {"n": self.committed})
                self.committed += 1
        except BaseException as error:  # reported by stop()
            self.error = error

    def stop(self) -> None:
        self._stop_requested.set()
        self.join(timeout=30)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error


@pytest.fixture
def enqueuer(sqlite_db: QueueDatabase) -> Iterator[Enqueuer]:
    thread = Enqueuer(QueueDatabase(str(sqlite_db.url)))
    yield thread
    if thread.is_alive():
        thread.stop()
    thread.db.close()


@pytest.mark.backend("sqlite")
def test_backup_while_writing_restores_a_consistent_snapshot(
    sqlite_db: QueueDatabase, enqueuer: Enqueuer, tmp_path: Path
) -> None:
    before = enqueue_many(sqlite_db, [NewTask(type="before", payload={"i": i}) for i in range(50)])
    enqueuer.start()
    poll_until(lambda: enqueuer.committed >= 20, what="the writer to get going")

    backup_path = backup_sqlite(sqlite_db, tmp_path / "backup.db")
    committed_at_backup_end = enqueuer.committed
    poll_until(lambda: enqueuer.committed >= committed_at_backup_end + 20, what="more writes")
    enqueuer.stop()

    restored_url = f"sqlite:///{tmp_path / 'fresh' / 'restored.db'}"
    restored_path = restore_sqlite(restored_url, backup_path)
    assert restored_path == tmp_path / "fresh" / "restored.db"
    with QueueDatabase(restored_url) as restored:
        ids = task_ids(restored)
        assert integrity_check(restored) == []
        migrate.check(restored)  # a PrismQ database at the expected schema revision
    # Everything committed before the backup started is there ...
    assert set(before) <= set(ids)
    # ... and the writes during the backup form a gap-free prefix: one consistent snapshot.
    assert ids == list(range(1, len(ids) + 1))
    # (+1: a task may commit before the snapshot yet be counted just after it was read.)
    assert len(before) + 20 <= len(ids) <= len(before) + committed_at_backup_end + 1
    # The live database went on meanwhile.
    assert count_tasks(sqlite_db) == len(before) + enqueuer.committed > len(ids)


@pytest.mark.backend("sqlite")
def test_restore_replaces_the_content_of_a_live_database_object(
    sqlite_db: QueueDatabase, tmp_path: Path
) -> None:
    kept = enqueue(sqlite_db, "kept").task_id
    backup_path = backup_sqlite(sqlite_db, tmp_path / "backup.db")
    enqueue(sqlite_db, "after-backup")

    assert restore_sqlite(sqlite_db, backup_path) == Path(sqlite_db.url.database or "")

    assert task_ids(sqlite_db) == [kept]
    assert integrity_check(sqlite_db) == []
    # The restored database is in WAL mode again, as PrismQ runs SQLite.
    with sqlite3.connect(sqlite_db.url.database or "") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.backend("sqlite")
def test_backup_is_a_self_contained_file(sqlite_db: QueueDatabase, tmp_path: Path) -> None:
    enqueue(sqlite_db, "t")
    backups = tmp_path / "backups"
    backups.mkdir()
    backup_path = backup_sqlite(sqlite_db, backups / "backup.db")
    # No -wal/-shm companions, no leftover temporary file.
    assert sorted(path.name for path in backups.iterdir()) == ["backup.db"]
    conn = sqlite3.connect(f"{backup_path.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("SELECT count(*) FROM task_queue").fetchone() == (1,)
    finally:
        conn.close()


@pytest.mark.backend("sqlite")
def test_backup_refuses_to_overwrite_unless_asked(sqlite_db: QueueDatabase, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    target = backups / "backup.db"
    target.write_bytes(b"precious")
    with pytest.raises(BackupError, match="already exists"):
        backup_sqlite(sqlite_db, target)
    assert target.read_bytes() == b"precious"

    enqueue(sqlite_db, "t")
    assert backup_sqlite(sqlite_db, target, overwrite=True) == target
    assert not [path for path in backups.iterdir() if path.name.endswith(".partial")]
    with QueueDatabase(f"sqlite:///{target}") as copy:
        assert count_tasks(copy) == 1


@pytest.mark.backend("sqlite")
def test_backup_refuses_bad_targets(sqlite_db: QueueDatabase, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        backup_sqlite(sqlite_db, tmp_path / "missing-dir" / "backup.db")
    with pytest.raises(BackupError, match="cannot back up"):
        backup_sqlite(sqlite_db, tmp_path, overwrite=True)
    with pytest.raises(BackupError, match="cannot back up"):
        backup_sqlite(sqlite_db, sqlite_db.url.database or "", overwrite=True)


@pytest.mark.backend("sqlite")
def test_backup_of_a_missing_database_file_fails(backend: str, tmp_path: Path) -> None:
    with (
        QueueDatabase(f"sqlite:///{tmp_path / 'never-created.db'}") as db,
        pytest.raises(BackupError, match="does not exist"),
    ):
        backup_sqlite(db, tmp_path / "backup.db")
    assert not (tmp_path / "backup.db").exists()


@pytest.mark.backend("sqlite")
def test_restore_refuses_what_is_not_a_prismq_backup(
    sqlite_db: QueueDatabase, tmp_path: Path
) -> None:
    task_id = enqueue(sqlite_db, "still-here").task_id
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello, this is not a database\n" * 100)
    other_sqlite = tmp_path / "other.db"
    with sqlite3.connect(other_sqlite) as conn:
        conn.execute("CREATE TABLE task_queue (id INTEGER PRIMARY KEY)")

    with pytest.raises(BackupError, match="does not exist"):
        restore_sqlite(sqlite_db, tmp_path / "missing.db")
    with pytest.raises(BackupError, match="not a usable SQLite database"):
        restore_sqlite(sqlite_db, not_sqlite)
    with pytest.raises(BackupError, match=r"not a PrismQ database.*prismq_alembic_version"):
        restore_sqlite(sqlite_db, other_sqlite)
    with pytest.raises(BackupError, match="onto itself"):
        restore_sqlite(sqlite_db, sqlite_db.url.database or "")

    assert task_ids(sqlite_db) == [task_id]


@pytest.mark.backend("sqlite")
def test_restore_refuses_a_damaged_backup(sqlite_db: QueueDatabase, tmp_path: Path) -> None:
    enqueue_many(sqlite_db, [NewTask(type="t", payload={"blob": "x" * 500}) for _ in range(2000)])
    backup_path = backup_sqlite(sqlite_db, tmp_path / "backup.db")
    size = backup_path.stat().st_size
    with backup_path.open("r+b") as file:
        file.seek(size // 2 // 4096 * 4096)
        file.write(b"\xff" * 4096 * 4)
    target = f"sqlite:///{tmp_path / 'target.db'}"

    with pytest.raises(BackupError, match=r"integrity|malformed|not a usable"):
        restore_sqlite(target, backup_path)
    assert not (tmp_path / "target.db").exists()


@pytest.mark.backend("postgresql")
def test_postgresql_points_at_pg_dump(db: QueueDatabase, backend: str, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite(db, tmp_path / "backup.db")
    with pytest.raises(BackupError, match="pg_restore"):
        restore_sqlite(db, tmp_path / "backup.db")
    with pytest.raises(BackupError, match="pg_restore"):
        restore_sqlite(str(db.url), tmp_path / "backup.db")
    assert not (tmp_path / "backup.db").exists()
