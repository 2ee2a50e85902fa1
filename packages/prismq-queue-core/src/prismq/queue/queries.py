"""Reading tasks: one by id, or pages of them newest first."""

from __future__ import annotations

from sqlalchemy import select

from prismq.queue.database import QueueDatabase
from prismq.queue.errors import InvalidTaskError, TaskNotFoundError
from prismq.queue.records import TaskPage, TaskRecord
from prismq.queue.status import TaskStatus
from prismq.queue.tables import task_table
from prismq.queue.task_columns import PUBLIC_TASK_COLUMNS

_t = task_table.c
#: Largest page ``list_tasks`` returns.
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def get_task(db: QueueDatabase, task_id: int) -> TaskRecord:
    """The task with this id; raises :class:`TaskNotFoundError`."""
    with db.read() as conn:
        row = conn.execute(select(*PUBLIC_TASK_COLUMNS).where(_t.id == task_id)).mappings().first()
    if row is None:
        raise TaskNotFoundError(task_id)
    return TaskRecord.from_row(row)


def list_tasks(
    db: QueueDatabase,
    *,
    status: TaskStatus | str | None = None,
    task_type: str | None = None,
    queue: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> TaskPage:
    """Tasks matching the filters, newest first, one page at a time.

    Pagination is by keyset (the cursor is the last id seen), so pages stay stable and
    cheap however many tasks are added meanwhile.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidTaskError("limit", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    query = select(*PUBLIC_TASK_COLUMNS).order_by(_t.id.desc()).limit(limit + 1)
    if status is not None:
        try:
            query = query.where(_t.status == TaskStatus(status).value)
        except ValueError:
            names = ", ".join(s.value for s in TaskStatus)
            raise InvalidTaskError("status", f"must be one of {names}") from None
    if task_type is not None:
        query = query.where(_t.type == task_type)
    if queue is not None:
        query = query.where(_t.queue == queue)
    if cursor is not None:
        query = query.where(_t.id < decode_cursor(cursor))
    with db.read() as conn:
        rows = conn.execute(query).mappings().all()
    items = [TaskRecord.from_row(row) for row in rows[:limit]]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return TaskPage(items=items, next_cursor=next_cursor)


#: Largest task id (the id column is a signed 64-bit integer).
_MAX_TASK_ID = 2**63 - 1


def decode_cursor(cursor: str) -> int:
    """The task id a cursor stands for; raises :class:`InvalidTaskError` for garbage."""
    # isascii: str.isdigit() also accepts "\u00b2" (which int() rejects) and "\u0661" (int()
    # reads as 1); the bound keeps the id within what the database can compare.
    if (
        not isinstance(cursor, str)
        or not (cursor.isascii() and cursor.isdigit())
        or len(cursor) > len(str(_MAX_TASK_ID))
        or int(cursor) > _MAX_TASK_ID
    ):
        raise InvalidTaskError("cursor", "is not a cursor returned by list_tasks")
    return int(cursor)
