"""Column lists shared by the statements that return tasks."""

from __future__ import annotations

from sqlalchemy import Column

from prismq.queue.tables import task_table

#: Every column but the lease token, which only the lease holder may see.
PUBLIC_TASK_COLUMNS: tuple[Column[object], ...] = tuple(
    column for column in task_table.c if column.name != "lease_token"
)
