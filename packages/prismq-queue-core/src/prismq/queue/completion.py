"""Finishing a leased task: complete it, or fail it (retry with backoff or dead-letter).

Both are fenced: they change the task only if the caller still holds its lease token, so a
worker whose lease expired and was reclaimed cannot finish a task someone else now owns.
Statements are built once per dialect and bound per call: these run once per task.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Update, bindparam, case, select, update

from prismq.queue.backoff import DEFAULT_RETRY_POLICY, RetryPolicy
from prismq.queue.database import QueueDatabase
from prismq.queue.dialects import SqlDialect
from prismq.queue.errors import InvalidTaskError, LeaseLostError
from prismq.queue.fencing import HELD_BY, held_params, lease_error, run_fenced
from prismq.queue.records import Completion, CompletionReport
from prismq.queue.status import TaskStatus
from prismq.queue.tables import task_table
from prismq.queue.validation import check_json_value, json_text, printable_text

_t = task_table.c
#: Longest error message stored; the rest is cut (tracebacks can be huge).
MAX_ERROR_LENGTH = 10_000

_LEASE_CLEARED = {"lease_token": None, "lease_until_utc": None}
#: A status as read back, without the Enum call's lookup machinery (once per task).
_STATUS_OF = {status.value: status for status in TaskStatus}


@functools.cache
def _complete_statement(dialect: SqlDialect) -> Update:
    now = dialect.now()
    return (
        update(task_table)
        .where(HELD_BY)
        .values(
            status=case(
                (_t.cancel_requested, TaskStatus.CANCELLED.value),
                else_=TaskStatus.COMPLETED.value,
            ),
            result=bindparam("result", type_=_t.result.type),
            error_message=None,
            finished_at_utc=now,
            updated_at_utc=now,
            **_LEASE_CLEARED,
        )
        .returning(_t.status)
    )


def complete(db: QueueDatabase, task_id: int, lease_token: str, result: Any = None) -> TaskStatus:
    """Mark a leased task done and store its JSON ``result``.

    Returns ``COMPLETED``, or ``CANCELLED`` if cancellation was requested while it ran.
    Raises :class:`LeaseLostError` if ``lease_token`` no longer holds the task.
    """
    check_json_value("result", result)
    status = run_fenced(db, _complete_statement(db.dialect), task_id, lease_token, result=result)
    return TaskStatus(status)


@functools.cache
def _complete_batch_statement(dialect: SqlDialect) -> Update:
    """:func:`_complete_statement` for a whole batch: each row fenced by its own token."""
    batch = dialect.completion_rows()
    now = dialect.now()
    return (
        update(task_table)
        .where(
            dialect.completion_targets(batch),
            _t.id == batch.c.id,
            _t.lease_token == batch.c.token,
            # Each row is found by its id; an index on status would make SQLite walk every
            # leased task and look each up in the batch.
            dialect.not_an_index_path(_t.status) == TaskStatus.LEASED.value,
        )
        .values(
            status=case(
                (_t.cancel_requested, TaskStatus.CANCELLED.value),
                else_=TaskStatus.COMPLETED.value,
            ),
            result=batch.c.result,
            error_message=None,
            finished_at_utc=now,
            updated_at_utc=now,
            **_LEASE_CLEARED,
        )
        .returning(_t.id, _t.status)
    )


def complete_many(db: QueueDatabase, completions: Sequence[Completion]) -> CompletionReport:
    """Complete many leased tasks with one statement in one transaction: one commit for all.

    Each task is fenced by its own token, as in :func:`complete`; a task whose lease was
    lost is reported in ``lost`` and left untouched, the others are completed. Nothing is
    reported done before the commit that makes it so.
    """
    rows = []
    for index, completion in enumerate(completions):
        if not isinstance(completion, Completion):
            raise InvalidTaskError(f"completions[{index}]", "must be a Completion")
        try:
            result = json_text("result", completion.result)
        except InvalidTaskError as error:
            # The field's name is built only when it is needed: this loop is per task.
            raise type(error)(f"completions[{index}].result", error.message) from None
        rows.append({"id": completion.task_id, "token": completion.lease_token, "result": result})
    if not rows:
        return CompletionReport(finished={}, lost=frozenset())
    with db.write_statement() as conn:
        updated = conn.execute(
            _complete_batch_statement(db.dialect), {"batch": json.dumps(rows)}
        ).all()
    finished = {task_id: _STATUS_OF[status] for task_id, status in updated}
    lost = {completion.task_id for completion in completions} - finished.keys()
    return CompletionReport(finished=finished, lost=frozenset(lost))


_FAIL_READ: Select[Any] = (
    select(_t.attempts, _t.max_attempts, _t.cancel_requested).where(HELD_BY).with_for_update()
)


@functools.cache
def _fail_statement(dialect: SqlDialect, outcome: TaskStatus) -> Update:
    now = dialect.now()
    values: dict[str, Any] = {
        "status": outcome.value,
        "error_message": bindparam("error_message"),
        "updated_at_utc": now,
        **_LEASE_CLEARED,
    }
    if outcome is TaskStatus.QUEUED:
        values.update(locked_by=None, run_after_utc=dialect.now_plus_param(bindparam("delay")))
    else:
        values.update(finished_at_utc=now)
    return update(task_table).where(HELD_BY).values(values).returning(_t.status)


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
    held = held_params(task_id, lease_token)
    message = printable_text(str(error)[:MAX_ERROR_LENGTH])
    params: dict[str, Any] = {**held, "error_message": message}
    with db.write() as conn:
        row = conn.execute(_FAIL_READ, held).first()
        if row is None:
            raise lease_error(conn, task_id)
        if row.cancel_requested:
            outcome = TaskStatus.CANCELLED
        elif not retryable or row.attempts >= row.max_attempts:
            outcome = TaskStatus.FAILED
        else:
            outcome = TaskStatus.QUEUED
            params["delay"] = db.dialect.offset(policy.delay_seconds(row.attempts))
        updated = conn.execute(_fail_statement(db.dialect, outcome), params).scalar_one_or_none()
        if updated is None:  # pragma: no cover - the row lock above makes this unreachable
            raise LeaseLostError(task_id)
    return TaskStatus(updated)
