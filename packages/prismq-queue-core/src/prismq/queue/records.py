"""Frozen value objects the public API returns."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from prismq.queue.status import TaskStatus


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TaskRecord:
    """A task as stored, without its lease token (which only the lease holder gets)."""

    id: int
    queue: str
    type: str
    priority: int
    payload: dict[str, Any]
    compatibility: dict[str, Any]
    status: TaskStatus
    attempts: int
    max_attempts: int
    run_after_utc: dt.datetime
    lease_until_utc: dt.datetime | None
    locked_by: str | None
    reserved_at_utc: dt.datetime | None
    processing_started_utc: dt.datetime | None
    finished_at_utc: dt.datetime | None
    error_message: str | None
    result: Any | None
    progress: Any | None
    cancel_requested: bool
    idempotency_key: str | None
    created_at_utc: dt.datetime
    updated_at_utc: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> TaskRecord:
        """Build from a result row of ``task_queue`` (extra columns are ignored)."""
        values = {field.name: row[field.name] for field in dataclasses.fields(cls)}
        values["status"] = TaskStatus(values["status"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        return cls(**values)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class EnqueueResult:
    """What ``enqueue`` did: ``created`` is False when an idempotency key matched."""

    task: TaskRecord
    created: bool

    @property
    def task_id(self) -> int:
        """The id of the new or existing task."""
        return self.task.id


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ClaimedTask:
    """A task leased to a worker: the token must be presented to complete, fail or renew."""

    id: int
    type: str
    queue: str
    priority: int
    payload: dict[str, Any]
    compatibility: dict[str, Any]
    attempt: int
    max_attempts: int
    lease_token: str
    lease_until_utc: dt.datetime
    created_at_utc: dt.datetime


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LeaseRenewal:
    """Outcome of renewing a batch of leases."""

    renewed: frozenset[int]
    lost: frozenset[int]
    cancel_requested: frozenset[int]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TaskPage:
    """One page of ``list_tasks``: pass ``next_cursor`` back to get the next one."""

    items: list[TaskRecord]
    next_cursor: str | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TaskLogRecord:
    """A log line of a task."""

    id: int
    task_id: int
    at_utc: dt.datetime
    level: str
    message: str
    details: dict[str, Any] | None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class WorkerRecord:
    """A registered worker and how fresh its heartbeat is."""

    worker_id: str
    hostname: str | None
    pid: int | None
    capabilities: dict[str, Any]
    queues: list[str]
    strategy: str
    concurrency: int
    started_at_utc: dt.datetime
    heartbeat_utc: dt.datetime
    stopped_at_utc: dt.datetime | None
    heartbeat_age_seconds: float
    is_stale: bool

    @property
    def is_active(self) -> bool:
        """Running and heartbeating."""
        return self.stopped_at_utc is None and not self.is_stale


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Completion:
    """One task to complete in :func:`~prismq.queue.complete_many`."""

    task_id: int
    lease_token: str
    result: Any = None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class CompletionReport:
    """Outcome of :func:`~prismq.queue.complete_many`.

    ``finished`` maps each task whose lease still held to its final status (``COMPLETED``,
    or ``CANCELLED`` after a cancel request); ``lost`` holds the tasks whose lease did not.
    """

    finished: dict[int, TaskStatus]
    lost: frozenset[int]
