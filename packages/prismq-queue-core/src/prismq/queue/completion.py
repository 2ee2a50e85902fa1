"""Finishing a leased task: complete it, or fail it (retry with backoff or dead-letter).

Both are fenced: they change the task only if the caller still holds its lease token, so a
worker whose lease expired and was reclaimed cannot finish a task someone else now owns.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, select, update

from prismq.queue.backoff import DEFAULT_RETRY_POLICY, RetryPolicy
from prismq.queue.database import QueueDatabase
from prismq.queue.errors import LeaseLostError
from prismq.queue.fencing import held_by, lease_error, run_fenced
from prismq.queue.models import task_table
from prismq.queue.status import TaskStatus
from prismq.queue.validation import check_json_value

_t = task_table.c
#: Longest error message stored; the rest is cut (tracebacks can be huge).
MAX_ERROR_LENGTH = 10_000

_LEASE_CLEARED = {"lease_token": None, "lease_until_utc": None}


def complete(db: QueueDatabase, task_id: int, lease_token: str, result: Any = None) -> TaskStatus:
    """Mark a leased task done and store its JSON ``result``.

    Returns ``COMPLETED``, or ``CANCELLED`` if cancellation was requested while it ran.
    Raises :class:`LeaseLostError` if ``lease_token`` no longer holds the task.
    """
    check_json_value("result", result)
    now = db.dialect.now()
    statement = (
        update(task_table)
        .where(held_by(task_id, lease_token))
        .values(
            status=case(
                (_t.cancel_requested, TaskStatus.CANCELLED.value),
                else_=TaskStatus.COMPLETED.value,
            ),
            result=result,
            error_message=None,
            finished_at_utc=now,
            updated_at_utc=now,
            **_LEASE_CLEARED,
        )
        .returning(_t.status)
    )
    return TaskStatus(run_fenced(db, statement, task_id))


def fail(
    db: QueueDatabase,
    task_id: int,
    lease_token: str,
    error: str,
    *,
    retryable: bool = True,
    retry_policy: RetryPolicy | None = None,
) -> TaskStatus:
    """Record a failed attempt.

    The task goes back to ``QUEUED`` after a backoff delay, or to ``FAILED`` (the dead
    letters) when ``retryable`` is False or its attempts are used up, or to ``CANCELLED``
    if cancellation was requested. Raises :class:`LeaseLostError` on a stale token.
    """
    policy = retry_policy or DEFAULT_RETRY_POLICY
    message = str(error)[:MAX_ERROR_LENGTH]
    with db.write() as conn:
        row = conn.execute(
            select(_t.attempts, _t.max_attempts, _t.cancel_requested)
            .where(held_by(task_id, lease_token))
            .with_for_update()
        ).first()
        if row is None:
            raise lease_error(conn, task_id)
        now = db.dialect.now()
        values: dict[str, Any] = {"error_message": message, "updated_at_utc": now}
        if row.cancel_requested:
            values.update(status=TaskStatus.CANCELLED.value, finished_at_utc=now)
        elif not retryable or row.attempts >= row.max_attempts:
            values.update(status=TaskStatus.FAILED.value, finished_at_utc=now)
        else:
            values.update(
                status=TaskStatus.QUEUED.value,
                locked_by=None,
                run_after_utc=db.dialect.now_plus(policy.delay_seconds(row.attempts)),
            )
        updated = conn.execute(
            update(task_table)
            .where(held_by(task_id, lease_token))
            .values(**values, **_LEASE_CLEARED)
            .returning(_t.status)
        ).scalar_one_or_none()
        if updated is None:  # pragma: no cover - the row lock above makes this unreachable
            raise LeaseLostError(task_id)
    return TaskStatus(updated)
