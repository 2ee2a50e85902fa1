"""Keeping, giving back and reclaiming leases.

Renew and release are fenced by the lease token like completion. Reclaim is the recovery
path: any process may run it, as often as it likes (it is idempotent), to return tasks
whose worker stopped renewing their lease.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Update, bindparam, case, update

from prismq.queue.claim import DEFAULT_LEASE_SECONDS
from prismq.queue.database import QueueDatabase
from prismq.queue.dialects import SqlDialect
from prismq.queue.fencing import HELD_BY, lease_error, run_fenced
from prismq.queue.records import LeaseRenewal
from prismq.queue.status import TaskStatus
from prismq.queue.tables import task_table
from prismq.queue.validation import check_json_value, check_seconds

_t = task_table.c
_LEASED = TaskStatus.LEASED.value
#: Message stored on a task whose lease expired.
LEASE_EXPIRED_MESSAGE = "lease expired: its worker stopped renewing it (crashed or hung)"


def renew_lease(
    db: QueueDatabase, task_id: int, lease_token: str, lease_seconds: float = DEFAULT_LEASE_SECONDS
) -> bool:
    """Extend a lease to ``lease_seconds`` from now; returns whether cancel was requested.

    Raises :class:`LeaseLostError` if the token no longer holds the task.
    """
    renewal = renew_leases(db, {task_id: lease_token}, lease_seconds)
    if task_id in renewal.lost:
        with db.read() as conn:
            raise lease_error(conn, task_id)
    return task_id in renewal.cancel_requested


@functools.cache
def _renew_statement(dialect: SqlDialect) -> Update:
    # Tokens are random per claim, so matching id and token sets matches the pairs; the
    # pairing is checked again on the returned rows all the same.
    return (
        update(task_table)
        .where(
            _t.id.in_(bindparam("ids", expanding=True)),
            _t.lease_token.in_(bindparam("tokens", expanding=True)),
            _t.status == _LEASED,
        )
        .values(
            lease_until_utc=dialect.now_plus_param(bindparam("lease")),
            updated_at_utc=dialect.now(),
        )
        .returning(_t.id, _t.lease_token, _t.cancel_requested)
    )


def renew_leases(
    db: QueueDatabase, leases: Mapping[int, str], lease_seconds: float = DEFAULT_LEASE_SECONDS
) -> LeaseRenewal:
    """Extend many leases in one statement (a worker's heartbeat); never raises on loss.

    ``leases`` maps task id to lease token. The result tells which were renewed, which
    were lost (reclaimed, released or finished meanwhile) and which have a cancel request.
    """
    lease_seconds = check_seconds("lease_seconds", lease_seconds, minimum=0.001)
    if not leases:
        return LeaseRenewal(renewed=frozenset(), lost=frozenset(), cancel_requested=frozenset())
    params = {
        "ids": list(leases),
        "tokens": list(leases.values()),
        "lease": db.dialect.offset(lease_seconds),
    }
    with db.write_statement() as conn:
        rows = conn.execute(_renew_statement(db.dialect), params).all()
    renewed = {row.id for row in rows if leases.get(row.id) == row.lease_token}
    return LeaseRenewal(
        renewed=frozenset(renewed),
        lost=frozenset(set(leases) - renewed),
        cancel_requested=frozenset(row.id for row in rows if row.cancel_requested),
    )


@functools.cache
def _release_statement(dialect: SqlDialect) -> Update:
    now = dialect.now()
    cancelled = _t.cancel_requested
    return (
        update(task_table)
        .where(HELD_BY)
        .values(
            status=case((cancelled, TaskStatus.CANCELLED.value), else_=TaskStatus.QUEUED.value),
            attempts=case((cancelled, _t.attempts), else_=_t.attempts - 1),
            finished_at_utc=case((cancelled, now), else_=None),
            run_after_utc=now,
            lease_token=None,
            lease_until_utc=None,
            locked_by=None,
            updated_at_utc=now,
        )
        .returning(_t.status)
    )


def release(db: QueueDatabase, task_id: int, lease_token: str) -> TaskStatus:
    """Give a leased task back without counting the attempt (e.g. on shutdown).

    Returns ``QUEUED``, or ``CANCELLED`` if cancellation had been requested.
    """
    return TaskStatus(run_fenced(db, _release_statement(db.dialect), task_id, lease_token))


@functools.cache
def _progress_statement(dialect: SqlDialect) -> Update:
    return (
        update(task_table)
        .where(HELD_BY)
        .values(
            progress=bindparam("progress", type_=_t.progress.type),
            updated_at_utc=dialect.now(),
        )
        .returning(_t.cancel_requested)
    )


def set_progress(db: QueueDatabase, task_id: int, lease_token: str, progress: Any) -> bool:
    """Store a JSON progress value for a leased task; returns whether cancel was requested."""
    check_json_value("progress", progress)
    statement = _progress_statement(db.dialect)
    return bool(run_fenced(db, statement, task_id, lease_token, progress=progress))


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ReclaimResult:
    """Tasks whose expired lease was reclaimed, by where they went."""

    requeued: list[int]
    failed: list[int]
    cancelled: list[int]

    @property
    def total(self) -> int:
        """How many tasks were reclaimed."""
        return len(self.requeued) + len(self.failed) + len(self.cancelled)


def reclaim_expired_leases(db: QueueDatabase) -> ReclaimResult:
    """Return every task whose lease has expired (on the database clock) to the queue.

    The attempt stays counted: a task whose attempts are used up becomes ``FAILED``, one
    with a cancel request ``CANCELLED``, the rest ``QUEUED`` and ready at once. The old
    lease token stops working, so its former worker can no longer finish the task.
    """
    now = db.dialect.now()
    gone_to = case(
        (_t.cancel_requested, TaskStatus.CANCELLED.value),
        (_t.attempts >= _t.max_attempts, TaskStatus.FAILED.value),
        else_=TaskStatus.QUEUED.value,
    )
    statement = (
        update(task_table)
        .where(_t.status == _LEASED, _t.lease_until_utc < now)
        .values(
            status=gone_to,
            finished_at_utc=case(
                (_t.cancel_requested | (_t.attempts >= _t.max_attempts), now), else_=None
            ),
            error_message=LEASE_EXPIRED_MESSAGE,
            run_after_utc=now,
            lease_token=None,
            lease_until_utc=None,
            locked_by=None,
            updated_at_utc=now,
        )
        .returning(_t.id, _t.status)
    )
    with db.write_statement() as conn:
        rows = conn.execute(statement).all()
    by_status: dict[str, list[int]] = {status.value: [] for status in TaskStatus}
    for row in rows:
        by_status[row.status].append(row.id)
    return ReclaimResult(
        requeued=sorted(by_status[TaskStatus.QUEUED.value]),
        failed=sorted(by_status[TaskStatus.FAILED.value]),
        cancelled=sorted(by_status[TaskStatus.CANCELLED.value]),
    )
