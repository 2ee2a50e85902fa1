"""The queue's tables, declared with SQLAlchemy Core.

Every query in PrismQ is built on these :class:`~sqlalchemy.Table` objects. The ORM classes
of :mod:`prismq.queue.models` are mapped onto the same tables for applications that want
them; declaring the tables here keeps SQLAlchemy's ORM out of processes that never use it,
such as a worker, whose start-up is part of every drain.

The Alembic migrations in :mod:`prismq.queue.migrations` build exactly this schema; a test
compares the two on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from prismq.queue.status import TaskStatus

#: Longest task type, queue name and idempotency key accepted.
MAX_TYPE_LENGTH = 200
MAX_QUEUE_LENGTH = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 200
MIN_PRIORITY = 1
MAX_PRIORITY = 1000
DEFAULT_PRIORITY = 100
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_QUEUE = "default"

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The schema of all PrismQ tables.
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``. SQLite has no datetime type: values are stored as
    fixed-width ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text, the same shape the SQLite dialect's
    ``now()`` expression produces, so comparisons in SQL order chronologically. Naive
    datetimes handed in are taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _json_type() -> TypeEngine[Any]:
    # JSONB on PostgreSQL: capability matching compares values per key, which jsonb does
    # structurally (key order and whitespace do not matter).
    return JSON().with_variant(JSONB(), "postgresql")


def _id_column() -> Column[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one.
    id_type = BigInteger().with_variant(Integer(), "sqlite")
    return Column("id", id_type, primary_key=True, autoincrement=True)


# The predicate of the idempotency key's unique index: an ``ON CONFLICT`` on the key must
# repeat it (see prismq.queue.enqueue) for the database to infer the index.
_IDEMPOTENCY_KEY_GIVEN = "idempotency_key IS NOT NULL"

_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in TaskStatus)

#: One task: what to run, where it is in its lifecycle, and who holds its lease.
task_table = Table(
    "task_queue",
    metadata,
    _id_column(),
    Column("queue", String(MAX_QUEUE_LENGTH), nullable=False, server_default=DEFAULT_QUEUE),
    Column("type", String(MAX_TYPE_LENGTH), nullable=False),
    Column("priority", Integer, nullable=False, server_default=text(str(DEFAULT_PRIORITY))),
    Column("payload", _json_type(), nullable=False),
    Column("compatibility", _json_type(), nullable=False),
    Column("status", String(16), nullable=False, server_default=TaskStatus.QUEUED.value),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False, server_default=text(str(DEFAULT_MAX_ATTEMPTS))),
    Column("run_after_utc", UTCDateTime(), nullable=False),
    Column("lease_until_utc", UTCDateTime()),
    Column("lease_token", String(64)),
    Column("locked_by", String(200)),
    Column("reserved_at_utc", UTCDateTime()),
    Column("processing_started_utc", UTCDateTime()),
    Column("finished_at_utc", UTCDateTime()),
    Column("error_message", Text),
    Column("result", _json_type()),
    Column("progress", _json_type()),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("idempotency_key", String(MAX_IDEMPOTENCY_KEY_LENGTH)),
    Column("created_at_utc", UTCDateTime(), nullable=False),
    Column("updated_at_utc", UTCDateTime(), nullable=False),
    CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
    CheckConstraint(f"priority BETWEEN {MIN_PRIORITY} AND {MAX_PRIORITY}", name="priority"),
    CheckConstraint("max_attempts >= 1", name="max_attempts"),
    # Unique among existing rows: a key is remembered until its task is purged. Partial:
    # a task without a key has no entry, none to write on its enqueue, claim and finish.
    Index(
        "uq_task_queue_idempotency_key",
        "idempotency_key",
        unique=True,
        postgresql_where=text(_IDEMPOTENCY_KEY_GIVEN),
        sqlite_where=text(_IDEMPOTENCY_KEY_GIVEN),
    ),
    # The claim: only queued rows, in the orders the strategies read them.
    Index(
        "ix_task_queue_ready_priority",
        "queue",
        "priority",
        "id",
        postgresql_where=text("status = 'queued'"),
        sqlite_where=text("status = 'queued'"),
    ),
    Index(
        "ix_task_queue_ready_fifo",
        "queue",
        "id",
        postgresql_where=text("status = 'queued'"),
        sqlite_where=text("status = 'queued'"),
    ),
    # PRIORITY for a worker that serves every queue (the default; FIFO and LIFO read
    # ix_task_queue_status_id). Status leads so SQLite's planner prefers it to sorting.
    Index(
        "ix_task_queue_ready_any_priority",
        "status",
        "priority",
        "id",
        postgresql_where=text("status = 'queued'"),
        sqlite_where=text("status = 'queued'"),
    ),
    # The reclaim: leased rows by lease expiry.
    Index(
        "ix_task_queue_lease_expiry",
        "lease_until_utc",
        postgresql_where=text("status = 'leased'"),
        sqlite_where=text("status = 'leased'"),
    ),
    # Listing and counting by status / type, newest first.
    Index("ix_task_queue_status_id", "status", "id"),
    Index("ix_task_queue_type_status", "type", "status"),
    # Metrics windows and purges read finished tasks by when they finished; tasks not
    # finished have no entry (none to write on enqueue or claim).
    Index(
        "ix_task_queue_finished",
        "finished_at_utc",
        "status",
        postgresql_where=text("finished_at_utc IS NOT NULL"),
        sqlite_where=text("finished_at_utc IS NOT NULL"),
    ),
    # Ids are visible to clients: never hand out a purged task's id again.
    sqlite_autoincrement=True,
)

#: A worker process, its capabilities and its last heartbeat.
worker_table = Table(
    "workers",
    metadata,
    Column("worker_id", String(200), primary_key=True),
    Column("hostname", String(255)),
    Column("pid", Integer),
    Column("capabilities", _json_type(), nullable=False),
    Column("queues", _json_type(), nullable=False),
    Column("strategy", String(32), nullable=False),
    Column("concurrency", Integer, nullable=False, server_default=text("1")),
    Column("started_at_utc", UTCDateTime(), nullable=False),
    Column("heartbeat_utc", UTCDateTime(), nullable=False),
    Column("stopped_at_utc", UTCDateTime()),
    Index("ix_workers_heartbeat_utc", "heartbeat_utc"),
)

#: A log line a handler wrote for its task.
task_log_table = Table(
    "task_logs",
    metadata,
    _id_column(),
    Column(
        "task_id",
        BigInteger,
        ForeignKey("task_queue.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at_utc", UTCDateTime(), nullable=False),
    Column("level", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", _json_type()),
    Index("ix_task_logs_task_id_id", "task_id", "id"),
    sqlite_autoincrement=True,
)

#: An API bearer token: only its hash is stored.
api_token_table = Table(
    "api_tokens",
    metadata,
    _id_column(),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(128), nullable=False),
    Column("scopes", _json_type(), nullable=False),
    Column("created_at_utc", UTCDateTime(), nullable=False),
    Column("revoked_at_utc", UTCDateTime()),
    Index("uq_api_tokens_token_hash", "token_hash", unique=True),
)
