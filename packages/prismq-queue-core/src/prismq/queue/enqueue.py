"""Putting tasks on the queue: one at a time (optionally idempotent) or many at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Insert,
    bindparam,
    case,
    false,
    func,
    insert,
    literal,
    literal_column,
    select,
)

from prismq.queue.database import QueueDatabase
from prismq.queue.dialects import SqlDialect
from prismq.queue.driver_statements import DriverStatement
from prismq.queue.errors import InvalidTaskError
from prismq.queue.records import EnqueueResult, TaskRecord
from prismq.queue.status import TaskStatus
from prismq.queue.tables import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, DEFAULT_QUEUE, task_table
from prismq.queue.task_columns import PUBLIC_TASK_COLUMNS
from prismq.queue.transactions import CallerTransaction, write_transaction
from prismq.queue.validation import (
    check_compatibility,
    check_idempotency_key,
    check_json_object,
    check_max_attempts,
    check_priority,
    check_queue,
    check_seconds,
    check_type,
)

_t = task_table.c

#: Most tasks ``enqueue_many`` takes in one call.
MAX_BATCH_SIZE = 10_000


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NewTask:
    """A task to enqueue; validated on construction.

    Give at most one of ``run_after_utc`` (an absolute time) and ``delay_seconds`` (counted
    from the database's clock); with neither, the task is ready at once.
    """

    type: str
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    queue: str = DEFAULT_QUEUE
    priority: int = DEFAULT_PRIORITY
    compatibility: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    run_after_utc: dt.datetime | None = None
    delay_seconds: float | None = None
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        check_type(self.type)
        check_queue(self.queue)
        check_priority(self.priority)
        check_max_attempts(self.max_attempts)
        check_idempotency_key(self.idempotency_key)
        object.__setattr__(self, "payload", check_json_object("payload", self.payload))
        object.__setattr__(self, "compatibility", check_compatibility(self.compatibility))
        if self.run_after_utc is not None and self.delay_seconds is not None:
            raise InvalidTaskError("run_after_utc", "give run_after_utc or delay_seconds, not both")
        if self.run_after_utc is not None and not isinstance(self.run_after_utc, dt.datetime):
            raise InvalidTaskError("run_after_utc", "must be a datetime")
        if self.delay_seconds is not None:
            check_seconds("delay_seconds", self.delay_seconds)

    def column_values(self) -> dict[str, Any]:
        """Values of the columns the caller chose (timestamps are set by the database)."""
        return {
            "type": self.type,
            "queue": self.queue,
            "priority": self.priority,
            "payload": self.payload,
            "compatibility": self.compatibility,
            "max_attempts": self.max_attempts,
            "idempotency_key": self.idempotency_key,
            "status": TaskStatus.QUEUED.value,
            "attempts": 0,
            "cancel_requested": False,
        }


def enqueue(
    db: QueueDatabase,
    task_type: str,
    payload: dict[str, Any] | None = None,
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int = DEFAULT_PRIORITY,
    compatibility: dict[str, Any] | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    run_after_utc: dt.datetime | None = None,
    delay_seconds: float | None = None,
    idempotency_key: str | None = None,
    connection: CallerTransaction | None = None,
) -> EnqueueResult:
    """Add one task; with ``idempotency_key``, return the existing task if the key is known.

    Pass ``connection`` (a SQLAlchemy ``Connection`` or ``Session`` on this database) to
    enqueue inside your own transaction: the task exists if and only if it commits.
    """
    task = NewTask(
        type=task_type,
        # `is None`, not `or`: a falsy non-object ([] or "") must be rejected, not emptied.
        payload={} if payload is None else payload,
        queue=queue,
        priority=priority,
        compatibility={} if compatibility is None else compatibility,
        max_attempts=max_attempts,
        run_after_utc=run_after_utc,
        delay_seconds=delay_seconds,
        idempotency_key=idempotency_key,
    )
    # Without a key the enqueue is one INSERT; with one it locks, inserts and may read.
    single = task.idempotency_key is None
    if single and connection is None:
        return _insert_one_on_driver(db, task)
    with write_transaction(db, connection, single_statement=single) as conn:
        if task.idempotency_key is not None:
            # The caller's transaction may go on to insert other keys: keep lock order.
            db.dialect.lock_idempotency_keys(conn, [task.idempotency_key])
        return _insert_one(db, conn, task)


def enqueue_many(
    db: QueueDatabase,
    tasks: Sequence[NewTask],
    *,
    connection: CallerTransaction | None = None,
) -> list[int]:
    """Add many tasks in one transaction, all or nothing; returns their ids in order.

    A task whose idempotency key is already known contributes the existing task's id.
    """
    if len(tasks) > MAX_BATCH_SIZE:
        raise InvalidTaskError("tasks", f"at most {MAX_BATCH_SIZE} tasks per batch")
    for index, task in enumerate(tasks):
        if not isinstance(task, NewTask):
            raise InvalidTaskError(f"tasks[{index}]", "must be a NewTask")
    if not tasks:
        return []
    keys = [task.idempotency_key for task in tasks if task.idempotency_key is not None]
    # Without keys the batch is one INSERT, which can be its own transaction (no BEGIN and
    # COMMIT round trips where the dialect allows); with keys it locks, inserts and reads.
    with write_transaction(db, connection, single_statement=not keys) as conn:
        if keys:
            db.dialect.lock_idempotency_keys(conn, keys)
            return [_insert_one(db, conn, task).task_id for task in tasks]
        return _insert_batch(db, conn, tasks)


#: Columns whose values the caller chooses, bound per enqueue.
_CHOSEN_COLUMNS = (
    "type",
    "queue",
    "priority",
    "payload",
    "compatibility",
    "max_attempts",
    "idempotency_key",
)


@functools.cache
def _insert_statement(dialect: SqlDialect, *, keyed: bool, run_after: str) -> Insert:
    """The single-task INSERT, built once per dialect and variant, bound per call.

    ``run_after`` is ``"now"``, ``"at"`` (binds ``run_after_at``) or ``"delay"`` (binds
    ``delay``, a ``dialect.offset``). Every chosen column binds ``new_<column>``.
    """
    now = dialect.now()
    values: dict[str, Any] = {
        name: bindparam(f"new_{name}", type_=task_table.c[name].type) for name in _CHOSEN_COLUMNS
    }
    values.update(
        status=TaskStatus.QUEUED.value,
        attempts=0,
        cancel_requested=False,
        created_at_utc=now,
        updated_at_utc=now,
        run_after_utc={
            "now": now,
            "at": bindparam("run_after_at", type_=task_table.c.run_after_utc.type),
            "delay": dialect.now_plus_param(bindparam("delay")),
        }[run_after],
    )
    if keyed:
        # ON CONFLICT DO NOTHING rather than catching the unique violation: on PostgreSQL
        # a failed INSERT would abort the caller's whole transaction.
        statement = dialect.insert_ignoring_conflict(
            task_table, values, ["idempotency_key"], index_where=_t.idempotency_key.is_not(None)
        )
    else:
        statement = insert(task_table).values(values)
    # Only what the database decided: the rest of the new task's record is what was sent.
    # (Returning every column cost more than the insert itself, in decoding them.)
    return statement.returning(_t.id, _t.run_after_utc, _t.created_at_utc)


_BY_IDEMPOTENCY_KEY = select(*PUBLIC_TASK_COLUMNS).where(
    task_table.c.idempotency_key == bindparam("key")
)


def _insert_params(db: QueueDatabase, task: NewTask) -> tuple[str, dict[str, Any]]:
    """Which variant of :func:`_insert_statement` ``task`` needs, and its parameters."""
    params: dict[str, Any] = {f"new_{name}": getattr(task, name) for name in _CHOSEN_COLUMNS}
    if task.run_after_utc is not None:
        params["run_after_at"] = task.run_after_utc
        return "at", params
    if task.delay_seconds:
        params["delay"] = db.dialect.offset(task.delay_seconds)
        return "delay", params
    return "now", params


def _insert_one(db: QueueDatabase, conn: Connection, task: NewTask) -> EnqueueResult:
    run_after, params = _insert_params(db, task)
    keyed = task.idempotency_key is not None
    statement = _insert_statement(db.dialect, keyed=keyed, run_after=run_after)
    row = conn.execute(statement, params).first()
    if row is not None:
        return EnqueueResult(task=_new_record(task, *row), created=True)
    existing = conn.execute(_BY_IDEMPOTENCY_KEY, {"key": task.idempotency_key}).mappings().one()
    return EnqueueResult(task=TaskRecord.from_row(existing), created=False)


def _insert_one_on_driver(db: QueueDatabase, task: NewTask) -> EnqueueResult:
    """:func:`_insert_one` without a key, run by the driver as its own transaction."""
    run_after, values = _insert_params(db, task)
    statement = _driver_insert(db.engine.dialect, db.dialect, run_after)
    with db.driver_cursor() as cursor:
        # fetchall: the statement must end here (see driver_cursor).
        [raw] = cursor.execute(statement.sql, statement.parameters(values)).fetchall()
    task_id, run_after_utc, created_at_utc = statement.row(raw)
    return EnqueueResult(
        task=_new_record(task, task_id, run_after_utc, created_at_utc), created=True
    )


@functools.lru_cache(maxsize=64)
def _driver_insert(sa_dialect: Dialect, dialect: SqlDialect, run_after: str) -> DriverStatement:
    return DriverStatement.compile(
        _insert_statement(dialect, keyed=False, run_after=run_after), sa_dialect
    )


def _new_record(
    task: NewTask, task_id: int, run_after_utc: dt.datetime, created_at_utc: dt.datetime
) -> TaskRecord:
    """The record of a task just inserted, as :func:`get_task` would read it back."""
    return TaskRecord(
        id=task_id,
        queue=task.queue,
        type=task.type,
        priority=task.priority,
        payload=task.payload,
        compatibility=task.compatibility,
        status=TaskStatus.QUEUED,
        attempts=0,
        max_attempts=task.max_attempts,
        run_after_utc=run_after_utc,
        lease_until_utc=None,
        locked_by=None,
        reserved_at_utc=None,
        processing_started_utc=None,
        finished_at_utc=None,
        error_message=None,
        result=None,
        progress=None,
        cancel_requested=False,
        idempotency_key=task.idempotency_key,
        created_at_utc=created_at_utc,
        updated_at_utc=created_at_utc,
    )


def _insert_batch(db: QueueDatabase, conn: Connection, tasks: Sequence[NewTask]) -> list[int]:
    # One statement whatever the batch size, its rows in one JSON parameter: the statement's
    # text stays the same (parsed and planned once), and the driver has one value to send.
    dialect = db.dialect
    rows = [_batch_row(dialect, task) for task in tasks]
    ids = conn.execute(_bulk_insert_statement(dialect), {"rows": json.dumps(rows)}).scalars()
    # The rows are inserted in batch order (ORDER BY n), each taking the next id: sorted,
    # the ids are the tasks' in order.
    return sorted(ids.all())


def _batch_row(dialect: SqlDialect, task: NewTask) -> dict[str, Any]:
    # Only what differs from the defaults, which the statement fills in: a batch of plain
    # tasks is then a short text, quick to encode, send and parse.
    row: dict[str, Any] = {"type": task.type}
    if task.queue != DEFAULT_QUEUE:
        row["queue"] = task.queue
    if task.priority != DEFAULT_PRIORITY:
        row["priority"] = task.priority
    # Objects, not JSON text: encoded once with the batch, not escaped inside it.
    if task.payload:
        row["payload"] = task.payload
    if task.compatibility:
        row["compatibility"] = task.compatibility
    if task.max_attempts != DEFAULT_MAX_ATTEMPTS:
        row["max_attempts"] = task.max_attempts
    if task.run_after_utc is not None:
        row["run_after"] = dialect.run_after_text(_as_utc(task.run_after_utc))
    elif task.delay_seconds:
        row["delay"] = task.delay_seconds
    return row


def _as_utc(moment: dt.datetime) -> dt.datetime:
    # Naive datetimes are UTC, as everywhere in PrismQ.
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment


@functools.cache
def _bulk_insert_statement(dialect: SqlDialect) -> Insert:
    new = dialect.new_task_rows()
    now = dialect.now()
    run_after = case(
        (new.c.run_after.is_not(None), new.c.run_after),
        (new.c.delay.is_not(None), dialect.now_plus_seconds(new.c.delay)),
        else_=now,
    )
    empty_object: ColumnElement[Any] = literal_column("'{}'")
    values = {
        "type": new.c.type,
        "queue": func.coalesce(new.c.queue, DEFAULT_QUEUE),
        "priority": func.coalesce(new.c.priority, DEFAULT_PRIORITY),
        "payload": func.coalesce(new.c.payload, empty_object),
        "compatibility": func.coalesce(new.c.compatibility, empty_object),
        "max_attempts": func.coalesce(new.c.max_attempts, DEFAULT_MAX_ATTEMPTS),
        "status": literal(TaskStatus.QUEUED.value),
        "attempts": literal(0),
        "cancel_requested": false(),
        "run_after_utc": run_after,
        "created_at_utc": now,
        "updated_at_utc": now,
    }
    rows = select(*(value.label(name) for name, value in values.items())).order_by(new.c.n)
    return insert(task_table).from_select(list(values), rows).returning(task_table.c.id)
