"""Request and response bodies of the REST API.

Requests refuse unknown fields (``extra="forbid"``); their field types and checks are in
:mod:`prismq.api.field_types`. Responses are built from the core's records.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from prismq.api.field_types import (
    MAX_API_BATCH_SIZE,
    MAX_DELAY_SECONDS,
    Compatibility,
    IdempotencyKey,
    JsonInteger,
    JsonObject,
    QueueName,
    TaskTypeName,
    rfc3339_text,
)
from prismq.queue import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    MAX_PRIORITY,
    MIN_PRIORITY,
    NewTask,
    QueueStats,
    StatusCounts,
    TaskLogRecord,
    TaskRecord,
    TaskStatus,
    WorkerRecord,
)
from prismq.queue.validation import MAX_ATTEMPTS_LIMIT


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")


class EnqueueRequest(_Request):
    """A task to put on the queue."""

    model_config = ConfigDict(
        json_schema_extra={
            # Not both schedules: run_after_utc and delay_seconds may not both be non-null.
            "not": {
                "required": ["run_after_utc", "delay_seconds"],
                "properties": {
                    "run_after_utc": {"type": "string"},
                    "delay_seconds": {"type": "number"},
                },
            }
        }
    )

    type: TaskTypeName = Field(description="Which handler runs the task.")
    queue: QueueName = Field(default=DEFAULT_QUEUE, description="The queue it waits in.")
    priority: JsonInteger = Field(
        default=DEFAULT_PRIORITY,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="Lower runs first.",
    )
    payload: JsonObject = Field(default_factory=dict, description="The handler's input.")
    compatibility: Compatibility = Field(
        default_factory=dict,
        description="Capabilities a worker needs to run the task: scalar values only.",
    )
    max_attempts: JsonInteger = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        ge=1,
        le=MAX_ATTEMPTS_LIMIT,
        description="Runs before the task is dead-lettered (`failed`).",
    )
    run_after_utc: Annotated[AwareDatetime | None, BeforeValidator(rfc3339_text)] = Field(
        default=None, description="Not before this time (with a UTC offset)."
    )
    delay_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DELAY_SECONDS,
        allow_inf_nan=False,
        strict=True,
        description="Not before this many seconds from now; not with `run_after_utc`.",
    )
    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="Enqueueing again with the same key returns the existing task.",
    )

    @field_validator("run_after_utc")
    @classmethod
    def _in_utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        try:
            return value.astimezone(dt.timezone.utc)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None

    @field_validator("delay_seconds")
    @classmethod
    def _not_with_run_after(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("run_after_utc") is not None:
            raise ValueError("give run_after_utc or delay_seconds, not both")
        return value

    def to_new_task(self) -> NewTask:
        """The core's description of this task."""
        return NewTask(
            type=self.type,
            payload=self.payload,
            queue=self.queue,
            priority=self.priority,
            compatibility=self.compatibility,
            max_attempts=self.max_attempts,
            run_after_utc=self.run_after_utc,
            delay_seconds=self.delay_seconds,
            idempotency_key=self.idempotency_key,
        )


class BatchEnqueueRequest(_Request):
    """Tasks to put on the queue together: all of them or none."""

    tasks: list[EnqueueRequest] = Field(min_length=1, max_length=MAX_API_BATCH_SIZE)


class _Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EnqueueResponse(_Response):
    """The task an enqueue created, or found by its idempotency key."""

    task_id: int
    status: TaskStatus
    created_at_utc: dt.datetime
    message: str


class BatchEnqueueResponse(_Response):
    """Ids of the enqueued tasks, in the order they were given."""

    task_ids: list[int]


class TaskOut(_Response):
    """A task: every stored field but its lease token."""

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
    result: Any = Field(description="The handler's JSON result, once completed.")
    progress: Any = Field(description="The last JSON progress the handler reported.")
    cancel_requested: bool
    idempotency_key: str | None
    created_at_utc: dt.datetime
    updated_at_utc: dt.datetime

    @classmethod
    def from_record(cls, record: TaskRecord) -> TaskOut:
        """From the core's record."""
        return cls.model_validate(record)


class TaskPageOut(_Response):
    """A page of tasks, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[TaskOut]
    next_cursor: str | None


class TaskLogOut(_Response):
    """A log line a handler wrote for its task."""

    id: int
    task_id: int
    at_utc: dt.datetime
    level: str
    message: str
    details: dict[str, Any] | None

    @classmethod
    def from_record(cls, record: TaskLogRecord) -> TaskLogOut:
        """From the core's record."""
        return cls.model_validate(record)


class TaskLogPageOut(_Response):
    """A task's log lines, oldest first; pass ``next_after_id`` as ``after_id`` for more."""

    task_id: int
    items: list[TaskLogOut]
    next_after_id: int | None


class CancelResponse(_Response):
    """What a cancel did: ``cancelled`` at once, or ``cancel_requested`` of a running task."""

    task_id: int
    status: Literal["cancelled", "cancel_requested"]
    message: str


class StatusCountsOut(_Response):
    """Tasks in each status, and their total."""

    queued: int
    leased: int
    completed: int
    failed: int
    cancelled: int
    total: int

    @classmethod
    def from_counts(cls, counts: StatusCounts) -> StatusCountsOut:
        """From the core's counts."""
        return cls.model_validate(counts)


class StatsOut(_Response):
    """The queue at a glance; ``processing_tasks`` are the ``leased`` ones."""

    total_tasks: int
    queued_tasks: int
    processing_tasks: int
    completed_tasks: int
    failed_tasks: int
    cancelled_tasks: int
    oldest_queued_age_seconds: float | None = Field(
        description="How long the oldest ready task has waited; null when none is ready."
    )
    by_type: dict[str, StatusCountsOut]
    by_queue: dict[str, StatusCountsOut]
    measured_at_utc: dt.datetime

    @classmethod
    def from_stats(cls, stats: QueueStats) -> StatsOut:
        """From the core's snapshot (nested counts are read by attribute, ``total`` too)."""
        return cls.model_validate(stats)


class WorkerState(str, enum.Enum):
    """``active``: heartbeating; ``stale``: silent too long; ``stopped``: shut down cleanly."""

    ACTIVE = "active"
    STALE = "stale"
    STOPPED = "stopped"

    @classmethod
    def of(cls, worker: WorkerRecord) -> WorkerState:
        """The state of a registered worker."""
        if worker.stopped_at_utc is not None:
            return cls.STOPPED
        return cls.STALE if worker.is_stale else cls.ACTIVE


class WorkerOut(_Response):
    """A registered worker and how fresh its heartbeat is (on the database's clock)."""

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
    state: WorkerState

    @classmethod
    def from_record(cls, worker: WorkerRecord) -> WorkerOut:
        """From the core's record."""
        return cls(
            worker_id=worker.worker_id,
            hostname=worker.hostname,
            pid=worker.pid,
            capabilities=worker.capabilities,
            queues=worker.queues,
            strategy=worker.strategy,
            concurrency=worker.concurrency,
            started_at_utc=worker.started_at_utc,
            heartbeat_utc=worker.heartbeat_utc,
            stopped_at_utc=worker.stopped_at_utc,
            heartbeat_age_seconds=worker.heartbeat_age_seconds,
            state=WorkerState.of(worker),
        )


class WorkerListOut(_Response):
    """Every registered worker, by id."""

    items: list[WorkerOut]


class HealthOut(_Response):
    """The process is up."""

    status: Literal["ok"] = "ok"


class ReadyOut(_Response):
    """The database answers and is migrated to the schema this service expects."""

    status: Literal["ready"] = "ready"
    schema_revision: str
