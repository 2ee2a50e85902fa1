"""Log lines a handler writes for its task, kept with the task."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from prismq.queue.database import QueueDatabase
from prismq.queue.errors import InvalidTaskError, TaskNotFoundError
from prismq.queue.records import TaskLogRecord
from prismq.queue.tables import task_log_table, task_table
from prismq.queue.validation import check_json_object, printable_text

LOG_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})
#: Longest message stored; longer ones are cut.
MAX_LOG_MESSAGE_LENGTH = 10_000
MAX_LOGS_PER_READ = 1000

_l = task_log_table.c


def log(
    db: QueueDatabase,
    task_id: int,
    message: str,
    *,
    level: str = "info",
    details: dict[str, Any] | None = None,
) -> int:
    """Append a log line to a task; returns its id."""
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        raise InvalidTaskError("level", f"must be one of {', '.join(sorted(LOG_LEVELS))}")
    level = level.lower()
    checked_details = check_json_object("details", details) if details is not None else None
    with db.write() as conn:
        exists = conn.execute(select(task_table.c.id).where(task_table.c.id == task_id)).first()
        if exists is None:
            raise TaskNotFoundError(task_id)
        return int(
            conn.execute(
                insert(task_log_table)
                .values(
                    task_id=task_id,
                    at_utc=db.dialect.now(),
                    level=level,
                    message=printable_text(str(message)[:MAX_LOG_MESSAGE_LENGTH]),
                    details=checked_details,
                )
                .returning(_l.id)
            ).scalar_one()
        )


def get_task_logs(
    db: QueueDatabase, task_id: int, *, after_id: int = 0, limit: int = MAX_LOGS_PER_READ
) -> list[TaskLogRecord]:
    """A task's log lines in the order they were written; raises if the task is unknown."""
    limit = max(1, min(limit, MAX_LOGS_PER_READ))
    with db.read() as conn:
        exists = conn.execute(select(task_table.c.id).where(task_table.c.id == task_id)).first()
        if exists is None:
            raise TaskNotFoundError(task_id)
        rows = conn.execute(
            select(task_log_table)
            .where(_l.task_id == task_id, _l.id > after_id)
            .order_by(_l.id)
            .limit(limit)
        ).mappings()
        return [
            TaskLogRecord(
                id=row["id"],
                task_id=row["task_id"],
                at_utc=row["at_utc"],
                level=row["level"],
                message=row["message"],
                details=row["details"],
            )
            for row in rows
        ]
