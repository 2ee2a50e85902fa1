"""PostgreSQL through psycopg 3: many hosts, one server.

Claims lock their rows with ``FOR UPDATE SKIP LOCKED`` so concurrent claimers never wait on
each other nor take the same task. Nothing here depends on session state, so the queue
works behind PgBouncer in transaction-pooling mode.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    Interval,
    Select,
    String,
    Table,
    Update,
    bindparam,
    cast,
    create_engine,
    func,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as dialect_insert
from sqlalchemy.engine import URL

from prismq.queue.dialects.base import SqlDialect, UpsertInsert
from prismq.queue.models import task_table

#: Key of the advisory lock that serialises migrators: "PrismQMg" in ASCII, a fixed signed
#: 64-bit value so every PrismQ version and process agrees on it.
MIGRATION_LOCK_KEY = 0x507269736D514D67


class PostgreSQLDialect(SqlDialect):
    """SQL pieces for PostgreSQL 13+ (``gen_random_uuid`` is built in from 13)."""

    name = "postgresql"

    def create_engine(self, url: URL, *, pool_size: int, options: dict[str, Any]) -> Engine:
        connect_args: dict[str, Any] = {"connect_timeout": int(options.get("connect_timeout", 10))}
        if not options.get("prepared_statements", True):
            # A transaction-mode pooler may hand the next statement to another server
            # connection, where a statement prepared on this one does not exist.
            connect_args["prepare_threshold"] = None
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            # A pooled connection may have been cut by a server restart or a proxy.
            pool_pre_ping=True,
            connect_args=connect_args,
        )

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

    def lock_for_claim(self, eligible: Select[Any]) -> Select[Any]:
        return eligible.with_for_update(skip_locked=True)

    def claim_statement(self, eligible: Select[Any], values: dict[str, Any]) -> Update:
        # MATERIALIZED + join, never `id IN (subquery)`: the planner may re-run an IN
        # subquery per row and lease more than n tasks.
        claimed = eligible.cte("claimable").prefix_with("MATERIALIZED")
        return update(task_table).where(task_table.c.id == claimed.c.id).values(values)

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
