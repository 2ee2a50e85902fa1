"""Index only finished tasks by when they finished.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

``ix_task_queue_status_finished_at_utc`` (status, finished_at_utc) held an entry for every
task, queued and leased ones included, whose ``finished_at_utc`` is empty: each enqueue
wrote one, and each claim (a change of status) wrote another. Only finished tasks are ever
read by it (purges and the metrics windows ask for ``finished_at_utc`` in a range), so the
replacement is partial: ``WHERE finished_at_utc IS NOT NULL``. It leads with the time, so
a window is one range scan, and keeps the status in the index for the filters on it. Both
planners use it for any comparison on ``finished_at_utc``, which implies the predicate.

Code of an earlier release keeps working on the new schema: no query names an index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FINISHED = "finished_at_utc IS NOT NULL"


def upgrade() -> None:
    """Replace the every-task index with one of finished tasks only."""
    op.create_index(
        "ix_task_queue_finished",
        "task_queue",
        ["finished_at_utc", "status"],
        unique=False,
        postgresql_where=sa.text(_FINISHED),
        sqlite_where=sa.text(_FINISHED),
    )
    op.drop_index("ix_task_queue_status_finished_at_utc", table_name="task_queue")


def downgrade() -> None:
    """Put the every-task index back."""
    op.create_index(
        "ix_task_queue_status_finished_at_utc",
        "task_queue",
        ["status", "finished_at_utc"],
        unique=False,
    )
    op.drop_index("ix_task_queue_finished", table_name="task_queue")
