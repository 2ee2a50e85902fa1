"""SQLite: one file shared by the processes of one host.

Writers are serialised by SQLite itself; PrismQ opens every write transaction with
``BEGIN IMMEDIATE`` so that a transaction that reads and then writes takes the write lock
up front (pysqlite's deferred ``BEGIN`` would fail such a transaction with "database is
locked" when another writer got in between). WAL lets readers run beside the writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import random
import sqlite3
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Float,
    FromClause,
    Integer,
    Select,
    Table,
    Update,
    bindparam,
    column,
    create_engine,
    event,
    exc,
    func,
    literal,
    literal_column,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects.sqlite import insert as dialect_insert
from sqlalchemy.engine import URL
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import String

from prismq.queue.dialects.base import SqlDialect, T, UpsertInsert
from prismq.queue.errors import DatabaseUnavailableError
from prismq.queue.tables import UTCDateTime, task_table

#: Execution option naming the BEGIN mode of a transaction ("IMMEDIATE" or "DEFERRED").
BEGIN_MODE_OPTION = "prismq_sqlite_begin"

# Same fixed-width text as UTCDateTime stores: %f is "SS.SSS", padded to microseconds.
_NOW_FORMAT = "%Y-%m-%d %H:%M:%f"


def _weighted_key(priority: int) -> float:
    # 1 - random() lies in (0, 1], so the logarithm is always defined.
    return -math.log(1.0 - random.random()) * priority


def _configure_connection(
    dbapi_connection: sqlite3.Connection, synchronous: str, busy_timeout_ms: int
) -> None:
    # PrismQ issues BEGIN itself (see module docstring); the driver must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        _enable_wal(cursor, busy_timeout_ms)
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
    dbapi_connection.create_function("prismq_weighted_key", 1, _weighted_key)


def _enable_wal(cursor: sqlite3.Cursor, busy_timeout_ms: int) -> None:
    """Switch the database to WAL, waiting up to the busy timeout for other connections.

    Moving a database that is not in WAL yet (a new file) into WAL needs an exclusive lock,
    and SQLite answers "database is locked" at once, without calling the busy handler,
    while another connection holds any lock on it: exactly what happens when several
    processes open a new database together. So wait here as ``busy_timeout`` would.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        else:
            return


class SQLiteDialect(SqlDialect):
    """SQL pieces for SQLite 3.35+ (RETURNING)."""

    name = "sqlite"
    probe_before_claim = True

    def create_engine(self, url: URL, *, pool_size: int, options: dict[str, Any]) -> Engine:
        synchronous = str(options.get("sqlite_synchronous", "NORMAL")).upper()
        if synchronous not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError(
                f"sqlite_synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}"
            )
        busy_timeout_ms = int(options.get("sqlite_busy_timeout_ms", 30_000))
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=False,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _: ConnectionPoolEntry) -> None:
            _configure_connection(dbapi_connection, synchronous, busy_timeout_ms)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get(BEGIN_MODE_OPTION, "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextlib.contextmanager
    def driver_autocommit(self, driver_connection: Any) -> Iterator[None]:
        # Always so: the driver never sends BEGIN (isolation_level None, see
        # _configure_connection). A single writing statement takes the write lock as it
        # starts, waiting up to busy_timeout like BEGIN IMMEDIATE, and commits as it ends.
        if driver_connection.in_transaction:
            raise RuntimeError("a pooled SQLite connection was handed out in a transaction")
        yield

    def now(self) -> ColumnElement[dt.datetime]:
        stamp = func.strftime(_NOW_FORMAT, "now", type_=String).concat(literal("000"))
        return type_coerce(stamp, UTCDateTime())

    def now_plus_param(self, offset: BindParameter[Any]) -> ColumnElement[dt.datetime]:
        stamp = func.strftime(_NOW_FORMAT, "now", offset, type_=String).concat(literal("000"))
        return type_coerce(stamp, UTCDateTime())

    def offset(self, seconds: float) -> str:
        # An SQLite date modifier, e.g. "+30.000000 seconds".
        return f"{float(seconds):+.6f} seconds"

    def new_lease_token(self) -> ColumnElement[str]:
        return func.lower(func.hex(func.randomblob(16)), type_=String)

    def weighted_random_key(self, priority: ColumnElement[int]) -> ColumnElement[float]:
        return func.prismq_weighted_key(priority)

    def capability_match(self) -> ColumnElement[bool]:
        # Every key the task requires must be offered with an equal value: numbers by value
        # (1 matches 1.0, as in jsonb), anything else by JSON type and value (true is not 1).
        return text(
            "(task_queue.compatibility = '{}' OR NOT EXISTS ("
            " SELECT 1 FROM json_each(task_queue.compatibility) AS required"
            " WHERE NOT EXISTS ("
            "  SELECT 1 FROM json_each(:capabilities) AS offered"
            "  WHERE offered.key = required.key AND ("
            "   (offered.type IN ('integer', 'real') AND required.type IN ('integer', 'real')"
            "    AND offered.value = required.value)"
            "   OR (offered.type = required.type AND offered.value IS required.value)))))"
        ).bindparams(bindparam("capabilities", type_=String))  # type: ignore[return-value]

    def lock_migrations(self, conn: Connection) -> None:
        # Every write transaction begins with BEGIN IMMEDIATE: it already holds the one
        # write lock, taken before the current revision is read.
        return

    def prepare_location(self, url: URL) -> None:
        if url.database:
            folder = Path(url.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseUnavailableError(
                    f"cannot create the folder of {url.render_as_string(hide_password=True)}:"
                    f" {error.strerror or error}"
                ) from None

    def lock_idempotency_keys(self, conn: Connection, keys: Collection[str]) -> None:
        # BEGIN IMMEDIATE already serialises every writer.
        return

    def not_an_index_path(self, column: ColumnElement[T]) -> ColumnElement[T]:
        # SQLite plans without statistics until ANALYZE: an equality on an indexed column
        # wins even when it keeps every row and forces a sort. A unary + makes the term
        # unusable for an index (https://sqlite.org/optoverview.html#disqualifying_where_clause_terms).
        table = getattr(column, "table", None)
        name = getattr(column, "name", None)
        if table is None or name is None:
            return column
        return literal_column(f"+{table.name}.{name}", column.type)

    def new_task_rows(self) -> FromClause:
        rows = text(
            "SELECT key AS n, json_extract(value, '$.type') AS type,"
            " json_extract(value, '$.queue') AS queue,"
            " json_extract(value, '$.priority') AS priority,"
            " json_extract(value, '$.payload') AS payload,"
            " json_extract(value, '$.compatibility') AS compatibility,"
            " json_extract(value, '$.max_attempts') AS max_attempts,"
            " json_extract(value, '$.run_after') AS run_after,"
            " json_extract(value, '$.delay') AS delay FROM json_each(:rows)"
        ).bindparams(bindparam("rows", type_=String))
        # JSON and time columns hold text on SQLite: the values go in as they are.
        return rows.columns(
            column("n", Integer),
            column("type", String),
            column("queue", String),
            column("priority", Integer),
            column("payload", String),
            column("compatibility", String),
            column("max_attempts", Integer),
            column("run_after", String),
            column("delay", Float),
        ).subquery("new_tasks")

    def run_after_text(self, moment: dt.datetime) -> str:
        # The fixed-width text UTCDateTime stores, so it compares in order with the rest.
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")

    def now_plus_seconds(self, seconds: ColumnElement[float]) -> ColumnElement[dt.datetime]:
        modifier = func.printf("%+.6f seconds", seconds, type_=String)
        stamp = func.strftime(_NOW_FORMAT, "now", modifier, type_=String).concat(literal("000"))
        return type_coerce(stamp, UTCDateTime())

    def completion_rows(self) -> FromClause:
        # JSON columns hold JSON text on SQLite: the encoded result is stored as it is.
        rows = text(
            "SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.token') AS token,"
            " json_extract(value, '$.result') AS result FROM json_each(:batch)"
        ).bindparams(bindparam("batch", type_=String))
        return rows.columns(
            column("id", Integer), column("token", String), column("result", String)
        ).subquery("batch")

    def lock_for_claim(self, eligible: Select[Any]) -> Select[Any]:
        # BEGIN IMMEDIATE already holds the database's single write lock.
        return eligible

    def claim_statement(self, eligible: Select[Any], values: dict[str, Any]) -> Update:
        return (
            update(task_table).where(task_table.c.id.in_(eligible.scalar_subquery())).values(values)
        )

    def upsert_insert(self, table: Table) -> UpsertInsert:
        return dialect_insert(table)

    def optimize(self, engine: Engine) -> list[str]:
        # ANALYZE refreshes the planner's statistics; VACUUM rebuilds the file without the
        # pages freed by deleted rows; VACUUM goes through the WAL, so a TRUNCATE checkpoint
        # comes last to copy it into the database file and shrink it back to zero bytes.
        done: list[str] = []
        with _AutocommitConnection(engine) as driver:
            for statement in ("ANALYZE", "VACUUM"):
                driver.execute(statement)
                done.append(statement)
            checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)"
            busy, wal_frames, checkpointed = driver.execute(checkpoint)[0]
        if busy:
            done.append(f"{checkpoint}: incomplete, other connections were using the WAL")
        elif wal_frames < 0:
            done.append(f"{checkpoint}: skipped, the database is not in WAL mode")
        else:
            done.append(f"{checkpoint}: {checkpointed} frames written back, WAL truncated")
        return done

    def integrity_problems(self, engine: Engine) -> list[str]:
        problems: list[str] = []
        with _AutocommitConnection(engine) as driver:
            for statement in ("PRAGMA integrity_check", "PRAGMA foreign_key_check"):
                try:
                    rows = driver.execute(statement)
                except exc.DatabaseError as error:
                    # SQLITE_CORRUPT / SQLITE_NOTADB (plain sqlite3.DatabaseError, unlike
                    # "locked", an OperationalError): the damage is the check's answer.
                    if type(error.orig) is not sqlite3.DatabaseError:
                        raise
                    problems.append(f"{statement}: {error.orig}")
                    continue
                if statement == "PRAGMA integrity_check":
                    problems += [str(row[0]) for row in rows if row != ("ok",)]
                else:
                    # integrity_check ignores foreign keys, e.g. logs of a deleted task
                    # written while foreign_keys was off; foreign_key_check finds them.
                    problems += [
                        f"{table} row {rowid}: no matching row in {parent}"
                        for table, rowid, parent, _ in rows
                    ]
        return problems


class _AutocommitConnection:
    """A pooled driver connection used in autocommit mode, for statements like VACUUM.

    VACUUM fails inside a transaction, and the engine's "begin" listener above issues
    BEGIN even under ``isolation_level="AUTOCOMMIT"``. The driver connection itself has
    ``isolation_level = None`` (see ``_configure_connection``), i.e. autocommit, so each
    statement run on it directly is its own transaction. Driver errors are re-raised as
    SQLAlchemy ``DBAPIError`` so callers translate them like any other.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __enter__(self) -> _AutocommitConnection:
        self._pooled = self._engine.raw_connection()
        driver = self._pooled.driver_connection
        if not isinstance(driver, sqlite3.Connection):  # pragma: no cover - pysqlite only
            self._pooled.close()
            raise TypeError(f"expected a sqlite3 connection, got {type(driver).__name__}")
        self._driver = driver
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pooled.close()

    def execute(self, statement: str) -> list[tuple[Any, ...]]:
        try:
            return self._driver.execute(statement).fetchall()
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(statement, None, error, sqlite3.Error) from error
