"""A claim index for workers that serve every queue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

The claim indexes of 0001 lead with ``queue``: they give a worker bound to one queue its
tasks in claim order, but a worker serving every queue (the default) could use neither,
and each claim sorted every queued task, a cost that grew with the depth of the queue.
This partial index holds the PRIORITY order without the queue (FIFO and LIFO read
``ix_task_queue_status_id``). It leads with ``status`` so that SQLite, which plans without
statistics until ``ANALYZE`` runs, sees an equality it can use on it and prefers it to
sorting.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUED = "status = 'queued'"


def upgrade() -> None:
    """Add the PRIORITY claim order over all queues."""
    op.create_index(
        "ix_task_queue_ready_any_priority",
        "task_queue",
        ["status", "priority", "id"],
        unique=False,
        postgresql_where=sa.text(_QUEUED),
        sqlite_where=sa.text(_QUEUED),
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_task_queue_ready_any_priority", table_name="task_queue")
