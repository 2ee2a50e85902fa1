"""Cancelling tasks and giving dead letters another go."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from prismq.queue.database import QueueDatabase
from prismq.queue.errors import InvalidStateTransitionError, TaskNotFoundError
from prismq.queue.records import TaskRecord
from prismq.queue.status import TaskStatus
from prismq.queue.tables import task_table
from prismq.queue.task_columns import PUBLIC_TASK_COLUMNS

_t = task_table.c


def request_cancel(db: QueueDatabase, task_id: int) -> TaskStatus:
    """Cancel a task: a queued one at once, a leased one when its handler next looks.

    Returns ``CANCELLED`` for a task that was queued, ``LEASED`` for a running task (its
    ``cancel_requested`` flag is set; the worker sees it on its next lease renewal, and the
    task ends ``CANCELLED`` however the handler returns). A finished task raises
    :class:`InvalidStateTransitionError`.
    """
    now = db.dialect.now()
    with db.write() as conn:
        cancelled = conn.execute(
            update(task_table)
            .where(_t.id == task_id, _t.status == TaskStatus.QUEUED.value)
            .values(
                status=TaskStatus.CANCELLED.value,
                cancel_requested=True,
                finished_at_utc=now,
                updated_at_utc=now,
            )
            .returning(_t.id)
        ).first()
        if cancelled is not None:
            return TaskStatus.CANCELLED
        flagged = conn.execute(
            update(task_table)
            .where(_t.id == task_id, _t.status == TaskStatus.LEASED.value)
            .values(cancel_requested=True, updated_at_utc=now)
            .returning(_t.id)
        ).first()
        if flagged is not None:
            return TaskStatus.LEASED
        raise _not_applicable(conn, task_id, "cancel")


#: Same as :func:`request_cancel`.
cancel = request_cancel


def retry_failed(db: QueueDatabase, task_id: int) -> TaskRecord:
    """Queue a ``FAILED`` or ``CANCELLED`` task again, ready now, with its attempts reset."""
    now = db.dialect.now()
    with db.write() as conn:
        row = (
            conn.execute(
                update(task_table)
                .where(
                    _t.id == task_id,
                    _t.status.in_([TaskStatus.FAILED.value, TaskStatus.CANCELLED.value]),
                )
                .values(
                    status=TaskStatus.QUEUED.value,
                    attempts=0,
                    cancel_requested=False,
                    run_after_utc=now,
                    finished_at_utc=None,
                    result=None,
                    progress=None,
                    locked_by=None,
                    updated_at_utc=now,
                )
                .returning(*PUBLIC_TASK_COLUMNS)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise _not_applicable(conn, task_id, "retry")
    return TaskRecord.from_row(row)


def _not_applicable(
    conn: Connection, task_id: int, action: str
) -> InvalidStateTransitionError | TaskNotFoundError:
    status = conn.execute(select(_t.status).where(_t.id == task_id)).scalar_one_or_none()
    if status is None:
        return TaskNotFoundError(task_id)
    return InvalidStateTransitionError(task_id, status, action)
