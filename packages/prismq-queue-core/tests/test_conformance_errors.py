"""Conformance: errors a user can act on when the database is wrong, gone or not migrated.

Runs unchanged on SQLite and PostgreSQL (``PRISMQ_TEST_BACKEND``); the URL tests do not
depend on the backend under test and run on both.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from prismq.queue import (
    DatabaseError,
    DatabaseUnavailableError,
    PrismQError,
    QueueDatabase,
    SchemaNotMigratedError,
    claim_tasks,
    enqueue,
    get_task,
    list_tasks,
    list_workers,
    reclaim_expired_leases,
    register_worker,
)

UNREACHABLE = "postgresql://prismq:s3cret-pw@127.0.0.1:1/prismq"

#: Calls that reach the database, each on the read or the write path.
FIRST_USES: dict[str, Callable[[QueueDatabase], object]] = {
    "enqueue": lambda db: enqueue(db, "t"),
    "get_task": lambda db: get_task(db, 1),
    "list_tasks": list_tasks,
    "claim_tasks": lambda db: claim_tasks(db, "w"),
    "reclaim_expired_leases": reclaim_expired_leases,
    "register_worker": lambda db: register_worker(db, "w"),
    "list_workers": list_workers,
}


def _chain(error: BaseException) -> str:
    """The messages of an error and of every error it was raised from."""
    parts = []
    current: BaseException | None = error
    while current is not None:
        parts.append(str(current))
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("use", list(FIRST_USES))
def test_unreachable_postgresql_fails_on_first_use(use: str) -> None:
    db = QueueDatabase(UNREACHABLE, connect_timeout=3)
    try:
        with pytest.raises(DatabaseUnavailableError) as info:
            FIRST_USES[use](db)
    finally:
        db.close()
    message = str(info.value)
    assert "127.0.0.1:1" in message
    assert "s3cret-pw" not in _chain(info.value)
    assert isinstance(info.value, DatabaseError)
    assert isinstance(info.value, PrismQError)


def test_unreachable_postgresql_ping() -> None:
    with (
        QueueDatabase(UNREACHABLE, connect_timeout=3) as db,
        pytest.raises(DatabaseUnavailableError) as info,
    ):
        db.ping()
    assert "s3cret-pw" not in _chain(info.value)
    assert "s3cret-pw" not in repr(db)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user:s3cret-pw@localhost/prismq",
        "mssql+pyodbc://user:s3cret-pw@host/prismq",
        "oracle://user:s3cret-pw@host/prismq",
    ],
)
def test_unsupported_databases_are_rejected(url: str) -> None:
    with pytest.raises(DatabaseUnavailableError) as info:
        QueueDatabase(url)
    message = str(info.value)
    assert make_url(url).get_backend_name() in message
    assert "sqlite" in message
    assert "postgresql" in message
    assert "s3cret-pw" not in message


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///"])
def test_in_memory_sqlite_is_rejected(url: str) -> None:
    # Every process must open the same database: an in-memory one would be private.
    with pytest.raises(DatabaseUnavailableError) as info:
        QueueDatabase(url)
    assert "file" in str(info.value)


@pytest.mark.parametrize("url", ["not a url", "://nothing", ""])
def test_malformed_urls_are_rejected(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRISMQ_DATABASE_URL", raising=False)
    if not url:
        # "" means "not given": the environment is used, so point it at garbage too.
        monkeypatch.setenv("PRISMQ_DATABASE_URL", "not a url either")
    with pytest.raises(DatabaseUnavailableError):
        QueueDatabase(url)


def test_a_directory_is_not_a_sqlite_database(tmp_path: Path) -> None:
    with (
        QueueDatabase(f"sqlite:///{tmp_path}") as db,
        pytest.raises(DatabaseUnavailableError) as info,
    ):
        get_task(db, 1)
    assert str(tmp_path) in str(info.value)


def test_a_sqlite_file_that_cannot_be_created() -> None:
    with pytest.raises(DatabaseUnavailableError):
        QueueDatabase("sqlite:////proc/prismq-cannot-exist/queue.db")


# --------------------------------------------------------------------------- not migrated


@pytest.fixture(scope="module")
def empty_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the backend under test with no PrismQ schema at all (shared by the
    tests below, which all fail before writing anything)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('unmigrated') / 'never-migrated.db'}"
        return
    server = make_url(
        os.environ.get(
            "PRISMQ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        )
    ).set(drivername="postgresql+psycopg")
    name = f"prismq_test_empty_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.mark.parametrize("use", list(FIRST_USES))
def test_an_unmigrated_database_says_how_to_migrate(empty_database_url: str, use: str) -> None:
    with QueueDatabase(empty_database_url) as db:
        db.ping()  # reachable: the problem is the schema, not the connection
        with pytest.raises(SchemaNotMigratedError) as info:
            FIRST_USES[use](db)
    message = str(info.value)
    assert "prismq db upgrade" in message
    assert isinstance(info.value, DatabaseError)


@pytest.mark.backend("postgresql")
def test_prepared_statements_can_be_turned_off_for_poolers(database_url: str) -> None:
    with QueueDatabase(database_url, prepared_statements=False) as unprepared:
        with unprepared.engine.connect() as conn:
            assert conn.connection.dbapi_connection.prepare_threshold is None  # type: ignore[union-attr]
        # Enough calls of one statement that psycopg would otherwise prepare it.
        task_ids = [enqueue(unprepared, "t").task_id for _ in range(8)]
        assert [get_task(unprepared, task_id).id for task_id in task_ids] == task_ids
    with QueueDatabase(database_url) as prepared, prepared.engine.connect() as conn:
        assert conn.connection.dbapi_connection.prepare_threshold is not None  # type: ignore[union-attr]


@pytest.mark.backend("postgresql")
@pytest.mark.parametrize("keyed", [False, True], ids=["driver_path", "sqlalchemy_path"])
def test_a_pooled_connection_the_server_closed_fails_once_then_is_replaced(
    database_url: str, keyed: bool
) -> None:
    # The server ends the session of the one pooled connection (a restart, a failover, an
    # idle timeout) while it sits in the pool, used moments ago, so not pinged. The next
    # enqueue fails as unavailable, a PrismQ error, and the dead connection leaves the
    # pool: the enqueue after it works on a fresh one. Both ways of running an enqueue.
    with QueueDatabase(database_url, pool_size=1) as db:
        key = iter(f"closed-{uuid.uuid4()}-{n}" for n in range(3)) if keyed else None

        def enqueue_one() -> int:
            return enqueue(db, "t", idempotency_key=next(key) if key else None).task_id

        first = enqueue_one()
        with db.engine.connect() as conn:
            backend_pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        admin = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"))
        try:
            with admin.connect() as conn:
                assert conn.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid}
                ).scalar_one()
        finally:
            admin.dispose()
        with pytest.raises(DatabaseUnavailableError, match="lost the connection"):
            enqueue_one()
        second = enqueue_one()
        assert get_task(db, second).id == second > first


@pytest.mark.backend("sqlite")
def test_opening_a_new_sqlite_file_waits_for_a_lock_another_connection_holds(
    tmp_path: Path,
) -> None:
    # A new file is not in WAL mode yet; switching it needs an exclusive lock, and SQLite
    # refuses at once (without its busy handler) while another connection writes.
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE unrelated (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO unrelated VALUES (1)")
    outcome: list[BaseException | None] = []

    def open_and_ping() -> None:
        try:
            with QueueDatabase(f"sqlite:///{path}", sqlite_busy_timeout_ms=30_000) as db:
                db.ping()
        except BaseException as error:  # handed to the test thread
            outcome.append(error)
        else:
            outcome.append(None)

    opener = threading.Thread(target=open_and_ping)
    opener.start()
    opener.join(0.3)  # the opener is waiting for the lock (or, without the wait, failed)
    holder.execute("COMMIT")
    holder.close()
    opener.join(30)
    assert outcome == [None]
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
