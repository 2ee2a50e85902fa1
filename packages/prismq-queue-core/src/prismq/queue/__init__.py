"""PrismQ queue core: the SQL-backed task queue shared by the API and the workers.

Open a :class:`QueueDatabase` (SQLite by default, PostgreSQL by URL), migrate it with
``prismq db upgrade`` (or :func:`prismq.queue.migrate.upgrade`), then use the lifecycle
functions: :func:`enqueue`, :func:`claim_tasks`, :func:`complete`, :func:`fail`, ...
"""

from prismq.queue.__about__ import __version__
from prismq.queue.backoff import DEFAULT_RETRY_POLICY, RetryPolicy
from prismq.queue.backup import backup_sqlite, restore_sqlite
from prismq.queue.cancellation import cancel, request_cancel, retry_failed
from prismq.queue.claim import (
    DEFAULT_LEASE_SECONDS,
    MAX_CLAIM_BATCH,
    claim_tasks,
    seconds_until_next_due,
)
from prismq.queue.completion import complete, complete_many, fail
from prismq.queue.database import QueueDatabase
from prismq.queue.enqueue import MAX_BATCH_SIZE, NewTask, enqueue, enqueue_many
from prismq.queue.errors import (
    BackupError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidPayloadError,
    InvalidPriorityError,
    InvalidStateTransitionError,
    InvalidTaskError,
    LeaseLostError,
    MigrationError,
    PrismQError,
    SchemaNotMigratedError,
    TaskNotFoundError,
    UnknownStrategyError,
)
from prismq.queue.leases import (
    ReclaimResult,
    reclaim_expired_leases,
    release,
    renew_lease,
    renew_leases,
    set_progress,
)
from prismq.queue.maintenance import (
    MaintenanceReport,
    integrity_check,
    optimize,
    purge_finished_tasks,
    purge_stopped_workers,
    purge_task_logs,
    refresh_stale_statistics,
)
from prismq.queue.metrics import (
    ProcessingTimes,
    QueueDepth,
    QueueStats,
    StatusCounts,
    Throughput,
    oldest_queued_age_seconds,
    processing_time_percentiles,
    queue_depth,
    queue_stats,
    throughput,
)
from prismq.queue.queries import get_task, list_tasks
from prismq.queue.records import (
    ClaimedTask,
    Completion,
    CompletionReport,
    EnqueueResult,
    LeaseRenewal,
    TaskLogRecord,
    TaskPage,
    TaskRecord,
    WorkerRecord,
)
from prismq.queue.status import TERMINAL_STATUSES, TaskStatus
from prismq.queue.strategies import WEIGHTED_RANDOM_WINDOW, SchedulingStrategy
from prismq.queue.tables import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    MAX_PRIORITY,
    MIN_PRIORITY,
)
from prismq.queue.task_logs import get_task_logs, log
from prismq.queue.workers import (
    heartbeat,
    list_stale_workers,
    list_workers,
    mark_worker_stopped,
    register_worker,
)

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PRIORITY",
    "DEFAULT_QUEUE",
    "DEFAULT_RETRY_POLICY",
    "MAX_BATCH_SIZE",
    "MAX_CLAIM_BATCH",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "TERMINAL_STATUSES",
    "WEIGHTED_RANDOM_WINDOW",
    "BackupError",
    "ClaimedTask",
    "Completion",
    "CompletionReport",
    "DatabaseError",
    "DatabaseUnavailableError",
    "EnqueueResult",
    "InvalidPayloadError",
    "InvalidPriorityError",
    "InvalidStateTransitionError",
    "InvalidTaskError",
    "LeaseLostError",
    "LeaseRenewal",
    "MaintenanceReport",
    "MigrationError",
    "NewTask",
    "PrismQError",
    "ProcessingTimes",
    "QueueDatabase",
    "QueueDepth",
    "QueueStats",
    "ReclaimResult",
    "RetryPolicy",
    "SchedulingStrategy",
    "SchemaNotMigratedError",
    "StatusCounts",
    "TaskLogRecord",
    "TaskNotFoundError",
    "TaskPage",
    "TaskRecord",
    "TaskStatus",
    "Throughput",
    "UnknownStrategyError",
    "WorkerRecord",
    "__version__",
    "backup_sqlite",
    "cancel",
    "claim_tasks",
    "complete",
    "complete_many",
    "enqueue",
    "enqueue_many",
    "fail",
    "get_task",
    "get_task_logs",
    "heartbeat",
    "integrity_check",
    "list_stale_workers",
    "list_tasks",
    "list_workers",
    "log",
    "mark_worker_stopped",
    "oldest_queued_age_seconds",
    "optimize",
    "processing_time_percentiles",
    "purge_finished_tasks",
    "purge_stopped_workers",
    "purge_task_logs",
    "queue_depth",
    "queue_stats",
    "reclaim_expired_leases",
    "refresh_stale_statistics",
    "register_worker",
    "release",
    "renew_lease",
    "renew_leases",
    "request_cancel",
    "restore_sqlite",
    "retry_failed",
    "seconds_until_next_due",
    "set_progress",
    "throughput",
]
