"""Telling a stale lease from a missing task after a fenced statement changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Update, select

from prismq.queue.database import QueueDatabase
from prismq.queue.errors import LeaseLostError, PrismQError, TaskNotFoundError
from prismq.queue.models import task_table
from prismq.queue.status import TaskStatus


def lease_error(conn: Connection, task_id: int) -> PrismQError:
    """The error for a fenced update of ``task_id`` that matched no row."""
    status = conn.execute(
        select(task_table.c.status).where(task_table.c.id == task_id)
    ).scalar_one_or_none()
    if status is None:
        return TaskNotFoundError(task_id)
    return LeaseLostError(task_id, f"the lease token is no longer valid (the task is now {status})")


def held_by(task_id: int, lease_token: str) -> ColumnElement[bool]:
    """Rows where ``lease_token`` still holds ``task_id``'s lease."""
    t = task_table.c
    return (
        (t.id == task_id) & (t.lease_token == lease_token) & (t.status == TaskStatus.LEASED.value)
    )


def run_fenced(db: QueueDatabase, statement: Update, task_id: int) -> Any:
    """Run a fenced ``UPDATE ... RETURNING value`` in its own transaction; return the value.

    Raises :class:`LeaseLostError` (or :class:`TaskNotFoundError`) if it matched no row.
    """
    with db.write() as conn:
        value = conn.execute(statement).scalar_one_or_none()
        if value is None:
            raise lease_error(conn, task_id)
    return value
