"""What the database itself says, read with ``prismq.queue`` (the working tree's core).

The tests compare the API's answers (``/api/queue/stats``, ``/metrics``) with these
counts, computed here from the task rows themselves rather than with the queries the API
uses, so a wrong query cannot agree with itself.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from prismq.queue import QueueDatabase, TaskRecord, list_tasks, list_workers


@dataclasses.dataclass(frozen=True)
class TableCounts:
    """Tasks by status, overall, per queue and per type; and workers still running."""

    by_status: Counter[str]
    by_queue: dict[str, Counter[str]]
    by_type: dict[str, Counter[str]]
    running_workers: frozenset[str]
    stopped_workers: frozenset[str]

    @property
    def total(self) -> int:
        """Every task in the table."""
        return sum(self.by_status.values())


def all_task_rows(db: QueueDatabase) -> list[TaskRecord]:
    """Every task row, read page by page."""
    rows: list[TaskRecord] = []
    cursor: str | None = None
    while True:
        page = list_tasks(db, limit=500, cursor=cursor)
        rows.extend(page.items)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def read_counts(database_url: str) -> TableCounts:
    """Count the tasks and workers of the database at ``database_url``."""
    with QueueDatabase(database_url) as db:
        rows = all_task_rows(db)
        workers = list_workers(db)
    by_queue: dict[str, Counter[str]] = {}
    by_type: dict[str, Counter[str]] = {}
    for row in rows:
        by_queue.setdefault(row.queue, Counter())[row.status.value] += 1
        by_type.setdefault(row.type, Counter())[row.status.value] += 1
    return TableCounts(
        by_status=Counter(row.status.value for row in rows),
        by_queue=by_queue,
        by_type=by_type,
        running_workers=frozenset(w.worker_id for w in workers if w.stopped_at_utc is None),
        stopped_workers=frozenset(w.worker_id for w in workers if w.stopped_at_utc is not None),
    )
