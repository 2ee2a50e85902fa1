"""Helpers shared by the ``test_conformance_*`` modules (no tests here).

They read the database directly only where the public API deliberately hides something a
test must see (the lease token) or where a test needs the database's own clock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import func, select

from prismq.queue import QueueDatabase
from prismq.queue.models import task_log_table, task_table

T = TypeVar("T")

#: SQLite's clock (``strftime('%f', 'now')``) has millisecond resolution, so two database
#: times computed from "now" may differ from the intended span by about a millisecond.
CLOCK_TOLERANCE = dt.timedelta(milliseconds=3)


def poll_until(
    probe: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Call ``probe`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or probe}")
        time.sleep(interval)


def db_now(db: QueueDatabase) -> dt.datetime:
    """The database's current time: the clock every lease and claim decision uses."""
    with db.read() as conn:
        value: dt.datetime = conn.execute(select(db.dialect.now())).scalar_one()
    return value


def raw_task(db: QueueDatabase, task_id: int) -> dict[str, Any]:
    """Every column of a task, including the lease token the public API hides."""
    with db.read() as conn:
        row = conn.execute(select(task_table).where(task_table.c.id == task_id)).mappings().one()
    return dict(row)


def lease_token_of(db: QueueDatabase, task_id: int) -> str | None:
    """The task's current lease token."""
    token: str | None = raw_task(db, task_id)["lease_token"]
    return token


def count_tasks(db: QueueDatabase) -> int:
    """How many rows ``task_queue`` holds."""
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(task_table)).scalar_one())


def count_logs(db: QueueDatabase) -> int:
    """How many rows ``task_logs`` holds."""
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(task_log_table)).scalar_one())


def is_utc(value: dt.datetime) -> bool:
    """Timezone-aware with a zero UTC offset."""
    return value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
