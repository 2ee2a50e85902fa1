"""PostgreSQL through psycopg 3: many hosts, one server.

Claims lock their rows with ``FOR UPDATE SKIP LOCKED`` so concurrent claimers never wait on
each other nor take the same task. Nothing here depends on session state, so the queue
works behind PgBouncer in transaction-pooling mode.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Float,
    FromClause,
    Integer,
    Interval,
    Select,
    String,
    Table,
    Update,
    bindparam,
    cast,
    column,
    create_engine,
    func,
    literal_column,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as dialect_insert
from sqlalchemy.engine import URL

from prismq.queue.dialects.base import SqlDialect, T, UpsertInsert
from prismq.queue.dialects.pool_ping import ping_connections_idle_for
from prismq.queue.tables import UTCDateTime, task_table

#: Key of the advisory lock that serialises migrators: "PrismQMg" in ASCII, a fixed signed
#: 64-bit value so every PrismQ version and process agrees on it.
MIGRATION_LOCK_KEY = 0x507269736D514D67


#: CTE names, also spelled out in the statements' array reads.
_CLAIMABLE = "claimable"
_BATCH = "completion_batch"
#: Pages a task table must have grown by, past twice its analyzed size, to be re-analyzed.
_STALE_STATISTICS_MIN_PAGES = 64
_TABLE_SIZE_VS_STATISTICS = text(
    "SELECT relpages AS analyzed_pages,"
    " pg_relation_size(oid) / current_setting('block_size')::bigint AS pages"
    " FROM pg_class WHERE oid = 'task_queue'::regclass"
)


def _statistics_stale(conn: Connection) -> bool:
    row = conn.execute(_TABLE_SIZE_VS_STATISTICS).one()
    return bool(row.pages >= 2 * max(row.analyzed_pages, 0) + _STALE_STATISTICS_MIN_PAGES)


#: A pooled connection unused for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


class PostgreSQLDialect(SqlDialect):
    """SQL pieces for PostgreSQL 13+ (``gen_random_uuid`` is built in from 13)."""

    name = "postgresql"
    autocommit_single_statements = True

    def create_engine(self, url: URL, *, pool_size: int, options: dict[str, Any]) -> Engine:
        connect_args: dict[str, Any] = {"connect_timeout": int(options.get("connect_timeout", 10))}
        if not options.get("prepared_statements", True):
            # A transaction-mode pooler may hand the next statement to another server
            # connection, where a statement prepared on this one does not exist.
            connect_args["prepare_threshold"] = None
        engine = create_engine(
            url, pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args
        )
        ping_connections_idle_for(engine, PING_AFTER_IDLE_SECONDS)
        return engine

    @contextlib.contextmanager
    def driver_autocommit(self, driver_connection: Any) -> Iterator[None]:
        driver_connection.autocommit = True
        try:
            yield
        finally:
            if not driver_connection.broken:
                driver_connection.autocommit = False  # as the pool expects

    def driver_connection_broken(self, driver_connection: Any) -> bool:
        return bool(driver_connection.broken)

    def now(self) -> ColumnElement[dt.datetime]:
        # The statement's start, not the transaction's (now()): a task enqueued late in a
        # caller's long transaction is stamped when it was enqueued, as on SQLite.
        return func.statement_timestamp()

    def now_plus_param(self, offset: BindParameter[Any]) -> ColumnElement[dt.datetime]:
        return func.statement_timestamp() + type_coerce(offset, Interval())

    def offset(self, seconds: float) -> dt.timedelta:
        return dt.timedelta(seconds=seconds)

    def new_lease_token(self) -> ColumnElement[str]:
        return cast(func.gen_random_uuid(), String)

    def weighted_random_key(self, priority: ColumnElement[int]) -> ColumnElement[float]:
        return -func.ln(1.0 - func.random()) * priority

    def capability_match(self) -> ColumnElement[bool]:
        # Every key the task requires must be offered with an equal (jsonb) value.
        return text(
            "(task_queue.compatibility = '{}'::jsonb OR NOT EXISTS ("
            " SELECT 1 FROM jsonb_each(task_queue.compatibility) AS required"
            " WHERE (CAST(:capabilities AS jsonb) -> required.key)"
            " IS DISTINCT FROM required.value))"
        ).bindparams(bindparam("capabilities", type_=String))  # type: ignore[return-value]

    def refresh_stale_statistics(self, engine: Engine) -> bool:
        # Judged by size, not by the statistics collector's change counters, which other
        # backends flush up to a second late: a table that has grown well past the size
        # its statistics were taken at (a fresh table filled by a burst) is re-analyzed,
        # as autovacuum would within a minute or so.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if not _statistics_stale(conn):
                return False
            # SKIP_LOCKED: when another session holds the table's analyze lock (workers
            # starting together, autovacuum), go on at once instead of waiting to repeat
            # its work. Whether the statistics are now fresh says which happened.
            conn.exec_driver_sql("ANALYZE (SKIP_LOCKED) task_queue")
            return not _statistics_stale(conn)

    def lock_migrations(self, conn: Connection) -> None:
        # Transaction-scoped, so it is released at commit/rollback even behind a
        # transaction-pooling proxy, and never leaks onto a pooled connection.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})

    def lock_idempotency_keys(self, conn: Connection, keys: Collection[str]) -> None:
        # Transaction-scoped advisory locks (fine behind PgBouncer), always taken in the
        # same order, so batches that share keys queue up instead of deadlocking. unnest
        # yields the array in order, so the locks are taken in that order.
        lock_ids = sorted({_advisory_lock_id(key) for key in keys})
        if lock_ids:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ids AS bigint[])) AS k"),
                {"ids": lock_ids},
            )

    def not_an_index_path(self, column: ColumnElement[T]) -> ColumnElement[T]:
        # An expression is not the indexed column; `|| ''` leaves a text value unchanged.
        return type_coerce(column.concat(""), column.type)

    def completion_rows(self) -> FromClause:
        rows = text(
            "SELECT b.id, b.token, CAST(b.result AS jsonb) AS result"
            " FROM jsonb_to_recordset(CAST(:batch AS jsonb))"
            " AS b(id bigint, token text, result text)"
        ).bindparams(bindparam("batch", type_=String))
        return rows.columns(
            column("id", BigInteger), column("token", String), column("result", JSONB)
        ).cte(_BATCH)

    def new_task_rows(self) -> FromClause:
        # ROWS FROM, because WITH ORDINALITY cannot follow a column definition list.
        rows = text(
            "SELECT r.n, r.type, r.queue, r.priority, r.payload, r.compatibility,"
            " r.max_attempts, r.run_after, r.delay"
            " FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb)) AS (type text,"
            " queue text, priority integer, payload jsonb, compatibility jsonb,"
            " max_attempts integer, run_after timestamptz, delay float8))"
            " WITH ORDINALITY AS r(type, queue, priority, payload, compatibility,"
            " max_attempts, run_after, delay, n)"
        ).bindparams(bindparam("rows", type_=String))
        return rows.columns(
            column("n", BigInteger),
            column("type", String),
            column("queue", String),
            column("priority", Integer),
            column("payload", JSONB),
            column("compatibility", JSONB),
            column("max_attempts", Integer),
            column("run_after", UTCDateTime()),
            column("delay", Float),
        ).subquery("new_tasks")

    def run_after_text(self, moment: dt.datetime) -> str:
        return moment.astimezone(dt.timezone.utc).isoformat()

    def now_plus_seconds(self, seconds: ColumnElement[float]) -> ColumnElement[dt.datetime]:
        return type_coerce(
            func.statement_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, seconds),
            UTCDateTime(),
        )

    def completion_targets(self, rows: FromClause) -> ColumnElement[bool]:
        # As in the claim: the ids as one array (an init plan) keep the update on the
        # primary key, whatever a generic plan guesses of the batch's size.
        return task_table.c.id == func.any(literal_column("ARRAY(SELECT id FROM completion_batch)"))

    def lock_for_claim(self, eligible: Select[Any]) -> Select[Any]:
        return eligible.with_for_update(skip_locked=True)

    def claim_statement(self, eligible: Select[Any], values: dict[str, Any]) -> Update:
        # MATERIALIZED, never `id IN (subquery)`: the planner may re-run an IN subquery
        # per row and lease more than n tasks. The claimed ids are then read as one array
        # (an init plan, run once), not joined: a prepared statement's generic plan guesses
        # LIMIT $n at a tenth of the table and hash-joins it, scanning every row, finished
        # ones included, on every claim; `id = ANY(array)` is always read by primary key.
        claimed = eligible.cte(_CLAIMABLE).prefix_with("MATERIALIZED")
        claimed_ids: ColumnElement[Any] = literal_column("ARRAY(SELECT id FROM claimable)")
        return (
            update(task_table)
            .add_cte(claimed)
            .where(task_table.c.id == func.any(claimed_ids))
            .values(values)
        )

    def upsert_insert(self, table: Table) -> UpsertInsert:
        return dialect_insert(table)

    def optimize(self, engine: Engine) -> list[str]:
        # Every PrismQ table (the metadata the models share), quoted as the server needs.
        quote = engine.dialect.identifier_preparer.quote
        tables = ", ".join(quote(table.name) for table in task_table.metadata.sorted_tables)
        statement = f"VACUUM (ANALYZE) {tables}"
        # VACUUM refuses to run inside a transaction block: autocommit for this one
        # connection (the pool resets its isolation level when it is returned).
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(statement)
        return [statement]

    def integrity_problems(self, engine: Engine) -> list[str]:
        # PostgreSQL has no counterpart of SQLite's integrity_check: the server keeps its
        # own files consistent (WAL, checksums if enabled); deeper checks need the amcheck
        # extension and a superuser. Reaching the server is all that is checked here.
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return []


def _advisory_lock_id(idempotency_key: str) -> int:
    """A signed 64-bit advisory lock id for an idempotency key (collisions only serialise)."""
    digest = hashlib.blake2b(
        idempotency_key.encode(), digest_size=8, person=b"prismq-idem"
    ).digest()
    return int.from_bytes(digest, "big", signed=True)
