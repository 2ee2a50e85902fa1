"""SQLAlchemy 2.0 models of the queue's tables.

The Alembic migrations in :mod:`prismq.queue.migrations` build exactly this schema; a test
compares the two on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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


# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one.
_BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of all PrismQ tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in TaskStatus)


class TaskRow(Base):
    """One task: what to run, where it is in its lifecycle, and who holds its lease."""

    __tablename__ = "task_queue"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(
        String(MAX_QUEUE_LENGTH), nullable=False, server_default=DEFAULT_QUEUE
    )
    type: Mapped[str] = mapped_column(String(MAX_TYPE_LENGTH), nullable=False)
    priority: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text(str(DEFAULT_PRIORITY))
    )
    payload: Mapped[dict[str, Any]] = mapped_column(_json_type(), nullable=False)
    compatibility: Mapped[dict[str, Any]] = mapped_column(_json_type(), nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=TaskStatus.QUEUED.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text(str(DEFAULT_MAX_ATTEMPTS))
    )
    run_after_utc: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    lease_until_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(64))
    locked_by: Mapped[str | None] = mapped_column(String(200))
    reserved_at_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    processing_started_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    error_message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any | None] = mapped_column(_json_type())
    progress: Mapped[Any | None] = mapped_column(_json_type())
    cancel_requested: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(MAX_IDEMPOTENCY_KEY_LENGTH))
    created_at_utc: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at_utc: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status"),
        CheckConstraint(f"priority BETWEEN {MIN_PRIORITY} AND {MAX_PRIORITY}", name="priority"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        # Unique among existing rows: a key is remembered until its task is purged.
        Index("uq_task_queue_idempotency_key", "idempotency_key", unique=True),
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
        # The reclaim: leased rows by lease expiry.
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
        {"sqlite_autoincrement": True},
    )


class WorkerRow(Base):
    """A worker process, its capabilities and its last heartbeat."""

    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    capabilities: Mapped[dict[str, Any]] = mapped_column(_json_type(), nullable=False)
    queues: Mapped[list[str]] = mapped_column(_json_type(), nullable=False)
    strategy: Mapped[str] = mapped_column(String(32), nullable=False)
    concurrency: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    started_at_utc: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    heartbeat_utc: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    stopped_at_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_workers_heartbeat_utc", "heartbeat_utc"),)


class TaskLogRow(Base):
    """A log line a handler wrote for its task."""

    __tablename__ = "task_logs"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("task_queue.id", ondelete="CASCADE"), nullable=False
    )
    at_utc: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    details: Mapped[dict[str, Any] | None] = mapped_column(_json_type())

    __table_args__ = (
        Index("ix_task_logs_task_id_id", "task_id", "id"),
        {"sqlite_autoincrement": True},
    )


class ApiTokenRow(Base):
    """An API bearer token: only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(128), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(_json_type(), nullable=False)
    created_at_utc: Mapped[dt.datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at_utc: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("uq_api_tokens_token_hash", "token_hash", unique=True),)


# The Core-level tables, typed as such (the ORM declares __table__ as a FromClause).
task_table = cast(Table, TaskRow.__table__)
worker_table = cast(Table, WorkerRow.__table__)
task_log_table = cast(Table, TaskLogRow.__table__)
api_token_table = cast(Table, ApiTokenRow.__table__)
