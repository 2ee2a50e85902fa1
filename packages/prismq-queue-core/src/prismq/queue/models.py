"""SQLAlchemy 2.0 ORM classes of the queue's tables.

The tables themselves are declared with SQLAlchemy Core in :mod:`prismq.queue.tables`, which
PrismQ's own queries use; the classes here map the same tables for applications that query
them through the ORM (for instance with :meth:`prismq.queue.QueueDatabase.session`).
Importing this module loads SQLAlchemy's ORM, which nothing else in PrismQ needs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped

from prismq.queue.tables import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PRIORITY,
    MAX_QUEUE_LENGTH,
    MAX_TYPE_LENGTH,
    MIN_PRIORITY,
    NAMING_CONVENTION,
    UTCDateTime,
    api_token_table,
    metadata,
    task_log_table,
    task_table,
    worker_table,
)

# The names below were first published here; they stay importable from this module.
__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PRIORITY",
    "DEFAULT_QUEUE",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_PRIORITY",
    "MAX_QUEUE_LENGTH",
    "MAX_TYPE_LENGTH",
    "MIN_PRIORITY",
    "NAMING_CONVENTION",
    "ApiTokenRow",
    "Base",
    "TaskLogRow",
    "TaskRow",
    "UTCDateTime",
    "WorkerRow",
    "api_token_table",
    "task_log_table",
    "task_table",
    "worker_table",
]


class Base(DeclarativeBase):
    """Declarative base of all PrismQ tables."""

    metadata = metadata


class TaskRow(Base):
    """One task: what to run, where it is in its lifecycle, and who holds its lease."""

    __table__ = task_table

    id: Mapped[int]
    queue: Mapped[str]
    type: Mapped[str]
    priority: Mapped[int]
    payload: Mapped[dict[str, Any]]
    compatibility: Mapped[dict[str, Any]]
    status: Mapped[str]
    attempts: Mapped[int]
    max_attempts: Mapped[int]
    run_after_utc: Mapped[dt.datetime]
    lease_until_utc: Mapped[dt.datetime | None]
    lease_token: Mapped[str | None]
    locked_by: Mapped[str | None]
    reserved_at_utc: Mapped[dt.datetime | None]
    processing_started_utc: Mapped[dt.datetime | None]
    finished_at_utc: Mapped[dt.datetime | None]
    error_message: Mapped[str | None]
    result: Mapped[Any | None]
    progress: Mapped[Any | None]
    cancel_requested: Mapped[bool]
    idempotency_key: Mapped[str | None]
    created_at_utc: Mapped[dt.datetime]
    updated_at_utc: Mapped[dt.datetime]


class WorkerRow(Base):
    """A worker process, its capabilities and its last heartbeat."""

    __table__ = worker_table

    worker_id: Mapped[str]
    hostname: Mapped[str | None]
    pid: Mapped[int | None]
    capabilities: Mapped[dict[str, Any]]
    queues: Mapped[list[str]]
    strategy: Mapped[str]
    concurrency: Mapped[int]
    started_at_utc: Mapped[dt.datetime]
    heartbeat_utc: Mapped[dt.datetime]
    stopped_at_utc: Mapped[dt.datetime | None]


class TaskLogRow(Base):
    """A log line a handler wrote for its task."""

    __table__ = task_log_table

    id: Mapped[int]
    task_id: Mapped[int]
    at_utc: Mapped[dt.datetime]
    level: Mapped[str]
    message: Mapped[str]
    details: Mapped[dict[str, Any] | None]


class ApiTokenRow(Base):
    """An API bearer token: only its hash is stored."""

    __table__ = api_token_table

    id: Mapped[int]
    name: Mapped[str]
    token_hash: Mapped[str]
    scopes: Mapped[list[str]]
    created_at_utc: Mapped[dt.datetime]
    revoked_at_utc: Mapped[dt.datetime | None]
