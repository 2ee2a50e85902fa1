"""The shipped Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL.

``PRISMQ_TEST_BACKEND`` (``sqlite`` or ``postgresql``) selects the backend; every test here
starts from a fresh, EMPTY database of that backend (the shared ``database_url`` fixture
hands out already-migrated ones, which is not what a migration test needs).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine.interfaces import ReflectedIndex

from prismq.queue import migrate, schema_check
from prismq.queue.database import QueueDatabase
from prismq.queue.errors import DatabaseError, SchemaNotMigratedError
from prismq.queue.models import Base

BACKEND = os.environ.get("PRISMQ_TEST_BACKEND", "sqlite").strip().lower()
PRISMQ_TABLES = frozenset(Base.metadata.tables)
DEADLINE_SECONDS = 60.0

if BACKEND not in {"sqlite", "postgresql"}:
    raise pytest.UsageError(f"PRISMQ_TEST_BACKEND must be sqlite or postgresql, not {BACKEND!r}")


@pytest.fixture
def empty_db(empty_url: str) -> Iterator[QueueDatabase]:
    """A :class:`QueueDatabase` on a fresh, empty database."""
    with QueueDatabase(empty_url) as db:
        yield db


# -- comparing schemas -------------------------------------------------------------------


def _table_names(db: QueueDatabase) -> set[str]:
    with db.read() as conn:
        return set(sa.inspect(conn).get_table_names())


def _plain(value: Any, dialect: sa.Dialect) -> Any:
    """Reflected values made comparable: types compiled, SQL expressions as text."""
    if isinstance(value, sa.types.TypeEngine):
        return value.compile(dialect=dialect)
    if isinstance(value, sa.sql.ClauseElement):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item, dialect) for key, item in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(item, dialect) for item in value]
    return value


def _by_name(items: list[Any], dialect: sa.Dialect) -> list[Any]:
    return sorted((_plain(item, dialect) for item in items), key=lambda item: str(item["name"]))


def schema_snapshot(db: QueueDatabase) -> dict[str, dict[str, Any]]:
    """Everything the database says about the PrismQ tables, as plain comparable data."""
    with db.read() as conn:
        inspector = sa.inspect(conn)
        dialect = conn.dialect
        snapshot = {
            table: {
                "columns": [_plain(column, dialect) for column in inspector.get_columns(table)],
                "primary_key": _plain(inspector.get_pk_constraint(table), dialect),
                "foreign_keys": _by_name(inspector.get_foreign_keys(table), dialect),
                "indexes": _by_name(inspector.get_indexes(table), dialect),
                "unique": _by_name(inspector.get_unique_constraints(table), dialect),
                "checks": _by_name(inspector.get_check_constraints(table), dialect),
            }
            for table in sorted(set(inspector.get_table_names()) & PRISMQ_TABLES)
        }
        if db.dialect_name == "sqlite":
            # SQLite keeps each object's DDL verbatim: compare that too, byte for byte.
            for kind, name, table, ddl in conn.execute(
                sa.text("SELECT type, name, tbl_name, sql FROM sqlite_master")
            ):
                if table in snapshot:
                    snapshot[table].setdefault("ddl", {})[f"{kind} {name}"] = ddl
    return snapshot


def _normalise_predicate(predicate: str) -> str:
    # PostgreSQL gives its canonical form "((status)::text = 'queued'::text)"; drop the casts
    # and parentheses it adds to compare with the models' "status = 'queued'".
    predicate = re.sub(r"::[a-z ]+", "", predicate.lower())
    return " ".join(predicate.replace("(", " ").replace(")", " ").split())


def _index_where(conn: sa.Connection, index: ReflectedIndex) -> str | None:
    if conn.dialect.name == "postgresql":
        where = index["dialect_options"].get("postgresql_where")
        return None if where is None else _normalise_predicate(str(where))
    ddl = conn.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
        {"name": index["name"]},
    ).scalar_one()
    match = re.search(r"\bWHERE\b(.*)$", ddl, flags=re.IGNORECASE | re.DOTALL)
    return None if match is None else _normalise_predicate(match.group(1))


def actual_indexes(db: QueueDatabase) -> dict[str, tuple[str, tuple[str, ...], bool, str | None]]:
    """Each index of the PrismQ tables: table, columns, unique, partial-index predicate."""
    with db.read() as conn:
        inspector = sa.inspect(conn)
        return {
            str(index["name"]): (
                table,
                tuple(str(column) for column in index["column_names"]),
                bool(index["unique"]),
                _index_where(conn, index),
            )
            for table in PRISMQ_TABLES
            for index in inspector.get_indexes(table)
        }


def expected_indexes(dialect: str) -> dict[str, tuple[str, tuple[str, ...], bool, str | None]]:
    """The indexes the models declare, with their predicate for ``dialect``."""
    expected = {}
    for table in Base.metadata.tables.values():
        for index in table.indexes:
            where = index.dialect_options[dialect]["where"]
            expected[str(index.name)] = (
                table.name,
                tuple(column.name for column in index.columns),
                bool(index.unique),
                None if where is None else _normalise_predicate(str(where)),
            )
    return expected


def actual_check_names(db: QueueDatabase) -> set[str]:
    with db.read() as conn:
        inspector = sa.inspect(conn)
        return {
            str(check["name"])
            for table in PRISMQ_TABLES
            for check in inspector.get_check_constraints(table)
        }


def expected_check_names() -> set[str]:
    return {
        str(constraint.name)
        for table in Base.metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, sa.CheckConstraint)
    }


def assert_schema_equals_models(db: QueueDatabase, reference_url: str) -> None:
    """The migrated schema of ``db`` is the models' schema, by every measure we have."""
    with db.read() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "version_table": migrate.VERSION_TABLE,
            },
        )
        assert compare_metadata(context, Base.metadata) == []
    # Autogenerate does not compare partial-index predicates nor check constraints.
    assert actual_indexes(db) == expected_indexes(db.dialect_name)
    assert actual_check_names(db) == expected_check_names() != set()
    # And the whole reflected schema equals what create_all builds from the models.
    with QueueDatabase(reference_url) as reference:
        with reference.write() as conn:
            Base.metadata.create_all(conn)
        assert schema_snapshot(db) == schema_snapshot(reference)


# -- tests -------------------------------------------------------------------------------


def test_upgrade_from_empty_builds_exactly_the_models_schema(
    empty_db: QueueDatabase, new_empty_database: Callable[[], str]
) -> None:
    assert _table_names(empty_db) == set()

    migrate.upgrade(empty_db)

    assert _table_names(empty_db) == PRISMQ_TABLES | {migrate.VERSION_TABLE}
    assert_schema_equals_models(empty_db, new_empty_database())


def test_migrated_schema_enforces_defaults_constraints_and_cascade(
    empty_db: QueueDatabase,
) -> None:
    migrate.upgrade(empty_db)
    now = "2026-01-01 00:00:00.000000"
    insert_task = sa.text(
        "INSERT INTO task_queue (type, payload, compatibility, run_after_utc, created_at_utc,"
        " updated_at_utc) VALUES ('t', '{}', '{}', :now, :now, :now)"
    )
    with empty_db.write() as conn:
        conn.execute(insert_task, {"now": now})
        task = conn.execute(
            sa.text(
                "SELECT id, queue, priority, status, attempts, max_attempts, cancel_requested"
                " FROM task_queue"
            )
        ).one()
        assert tuple(task[1:]) == ("default", 100, "queued", 0, 5, False)
        conn.execute(
            sa.text(
                "INSERT INTO task_logs (task_id, at_utc, level, message)"
                " VALUES (:id, :now, 'info', 'hello')"
            ),
            {"id": task.id, "now": now},
        )
    with empty_db.write() as conn:
        conn.execute(sa.text("DELETE FROM task_queue"))
        assert conn.execute(sa.text("SELECT count(*) FROM task_logs")).scalar_one() == 0

    with empty_db.write() as conn:
        conn.execute(insert_task, {"now": now})
    for bad in ("priority = 0", "priority = 1001", "status = 'running'", "max_attempts = 0"):
        with pytest.raises(DatabaseError):
            _execute(empty_db, f"UPDATE task_queue SET {bad}")


def _execute(db: QueueDatabase, statement: str) -> None:
    with db.write() as conn:
        conn.execute(sa.text(statement))


def test_downgrade_to_base_removes_every_table_and_upgrade_works_again(
    empty_db: QueueDatabase, new_empty_database: Callable[[], str]
) -> None:
    migrate.upgrade(empty_db)

    migrate.downgrade(empty_db, "base")

    # Not even the version table is left behind.
    assert _table_names(empty_db) == set()
    assert migrate.current_revision(empty_db) is None

    migrate.upgrade(empty_db)
    assert migrate.current_revision(empty_db) == migrate.head_revision()
    assert_schema_equals_models(empty_db, new_empty_database())


def test_current_revision_and_check_before_and_after_upgrade(empty_db: QueueDatabase) -> None:
    assert migrate.current_revision(empty_db) is None
    with pytest.raises(SchemaNotMigratedError) as raised:
        migrate.check(empty_db)
    message = str(raised.value)
    assert "no PrismQ schema" in message
    assert f"prismq db upgrade --database-url '{empty_db.display_url}'" in message
    assert repr(migrate.head_revision()) in message

    migrate.upgrade(empty_db)

    assert migrate.current_revision(empty_db) == migrate.head_revision()
    migrate.check(empty_db)


def test_upgrade_is_idempotent(empty_db: QueueDatabase) -> None:
    migrate.upgrade(empty_db)
    migrate.upgrade(empty_db)
    migrate.upgrade(empty_db, migrate.head_revision())

    assert migrate.current_revision(empty_db) == migrate.head_revision()


def test_check_names_both_revisions_when_the_database_is_behind(
    empty_db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate.upgrade(empty_db, "0001")
    head = migrate.head_revision()
    assert head != "0001"

    with pytest.raises(SchemaNotMigratedError) as raised:
        migrate.check(empty_db)

    message = str(raised.value)
    assert f"revision '0001', this code expects {head!r}" in message
    assert f"prismq db upgrade --database-url '{empty_db.display_url}'" in message


def test_database_ahead_of_the_code_is_reported_and_left_alone(empty_db: QueueDatabase) -> None:
    migrate.upgrade(empty_db)
    with empty_db.write() as conn:
        conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999_future'"))

    assert migrate.current_revision(empty_db) == "9999_future"
    for attempt in (
        migrate.check,
        migrate.upgrade,
        lambda db: migrate.downgrade(db, "base"),
    ):
        with pytest.raises(SchemaNotMigratedError, match="code is older than the database"):
            attempt(empty_db)
    assert _table_names(empty_db) == PRISMQ_TABLES | {migrate.VERSION_TABLE}


def test_unknown_target_revision_is_a_migration_error(empty_db: QueueDatabase) -> None:
    migrate.upgrade(empty_db)

    with pytest.raises(migrate.MigrationError, match="'no-such-revision'"):
        migrate.downgrade(empty_db, "no-such-revision")
    with pytest.raises(migrate.MigrationError):
        migrate.upgrade(empty_db, "no-such-revision")

    assert migrate.current_revision(empty_db) == migrate.head_revision()


def test_a_failed_upgrade_leaves_the_database_as_it_was(empty_db: QueueDatabase) -> None:
    # api_tokens is created last: the tables created before it must be rolled back too,
    # which only transactional DDL in one transaction guarantees.
    with empty_db.write() as conn:
        conn.execute(sa.text("CREATE TABLE api_tokens (something INTEGER)"))

    with pytest.raises(DatabaseError):
        migrate.upgrade(empty_db)

    assert _table_names(empty_db) == {"api_tokens"}
    assert migrate.current_revision(empty_db) is None


def test_migrations_are_found_from_any_working_directory(
    empty_db: QueueDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    migrate.upgrade(empty_db)

    assert migrate.current_revision(empty_db) == migrate.head_revision()
    package_dir = Path(migrate.__file__).resolve().parent
    assert package_dir / "migrations" == migrate.MIGRATIONS_DIR
    # Non-Python files must ship too: Alembic needs the template to draft revisions.
    assert (migrate.MIGRATIONS_DIR / "script.py.mako").is_file()


def test_current_revision_does_not_create_a_missing_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with QueueDatabase(f"sqlite:///{path}") as db:
        assert migrate.current_revision(db) is None
        with pytest.raises(SchemaNotMigratedError):
            migrate.check(db)
    assert not path.exists()


# -- concurrency -------------------------------------------------------------------------


def _upgrade_in_child(url: str, barrier: Any, results: Any) -> None:
    """Child process: wait for every sibling, then all migrate the same database at once."""
    try:
        with QueueDatabase(url) as db:
            barrier.wait(timeout=DEADLINE_SECONDS)
            migrate.upgrade(db)
        results.put((os.getpid(), None))
    except BaseException as error:
        results.put((os.getpid(), f"{type(error).__name__}: {error}"))
        raise


@pytest.mark.multiprocess
def test_concurrent_upgrades_from_several_processes_all_succeed(
    empty_url: str, new_empty_database: Callable[[], str]
) -> None:
    processes_count = 3
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes_count)
    results = context.Queue()
    processes = [
        context.Process(target=_upgrade_in_child, args=(empty_url, barrier, results))
        for _ in range(processes_count)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=DEADLINE_SECONDS * 2) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=DEADLINE_SECONDS)
            if process.is_alive():
                process.kill()

    assert [error for _, error in outcomes] == [None] * processes_count
    assert [process.exitcode for process in processes] == [0] * processes_count
    with QueueDatabase(empty_url) as db:
        assert migrate.current_revision(db) == migrate.head_revision()
        assert_schema_equals_models(db, new_empty_database())


def _postgresql_upgrade_waits_for_the_advisory_lock(empty_db: QueueDatabase) -> None:
    errors: list[BaseException] = []

    def run_upgrade() -> None:
        try:
            migrate.upgrade(empty_db)
        except BaseException as error:
            errors.append(error)

    count_advisory_locks = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = :granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with QueueDatabase(empty_db.display_url) as holder, holder.engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": migrate.MIGRATION_LOCK_KEY}
        )
        migrator = threading.Thread(target=run_upgrade, daemon=True)
        migrator.start()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while conn.execute(count_advisory_locks, {"granted": False}).scalar_one() != 1:
            assert time.monotonic() < deadline, "the migrator never queued for the lock"
            assert migrator.is_alive(), f"the migrator did not wait: {errors}"
            time.sleep(0.01)
        # Queued behind the lock, so it has not touched the schema yet.
        assert migrate.current_revision(empty_db) is None
        transaction.commit()

        migrator.join(timeout=DEADLINE_SECONDS)
        assert not migrator.is_alive()
        assert errors == []
        assert migrate.current_revision(empty_db) == migrate.head_revision()
        # Transaction-scoped: nothing is left held on the pooled connection.
        assert conn.execute(count_advisory_locks, {"granted": True}).scalar_one() == 0


def _sqlite_upgrade_needs_the_write_lock(empty_db: QueueDatabase) -> None:
    empty_url = empty_db.display_url
    path = sa.make_url(empty_url).database
    assert path is not None
    with QueueDatabase(empty_url, sqlite_busy_timeout_ms=100) as db:
        db.ping()  # creates the file in WAL mode
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(DatabaseError, match="locked"):
                migrate.upgrade(db)
            assert migrate.current_revision(db) is None
        finally:
            holder.rollback()
            holder.close()

        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()


def test_upgrade_is_serialised_by_the_backends_migration_lock(empty_db: QueueDatabase) -> None:
    """The same guarantee on each backend, through that backend's own lock: an upgrade
    does not touch the schema while another migrator holds the migration lock."""
    checks = {
        "postgresql": _postgresql_upgrade_waits_for_the_advisory_lock,
        "sqlite": _sqlite_upgrade_needs_the_write_lock,
    }
    checks[empty_db.dialect_name](empty_db)


def test_the_shipped_revision_list_is_alembics() -> None:
    # schema_check answers without Alembic from its own list; it must be Alembic's.
    walked = [script.revision for script in migrate._script_directory().walk_revisions()]
    assert tuple(reversed(walked)) == schema_check.SHIPPED_REVISIONS
    assert migrate.head_revision() == schema_check.HEAD_REVISION


def test_checking_the_schema_does_not_import_alembic() -> None:
    probe = (
        "import sys, prismq.queue.schema_check;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
