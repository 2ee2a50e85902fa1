"""Index only the tasks that have an idempotency key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

``uq_task_queue_idempotency_key`` held an entry for every task, keyed or not: a B-tree
indexes NULLs, so each enqueue wrote one for a task without a key, and each change of
status (claim, completion, retry), which writes a new row version, wrote another. A NULL
never conflicts with anything, so those entries guarded nothing. The replacement has the
same name and columns and is unique over ``WHERE idempotency_key IS NOT NULL``; a lookup by
key (``idempotency_key = ...``) implies the predicate, so both planners still use it.

An ``ON CONFLICT (idempotency_key)`` must now repeat the predicate for the database to infer
the index; PrismQ's enqueue does from this release on, and its form also matches the old,
full index. A keyed enqueue by code of an earlier release fails on the new schema, so roll
out the new API processes right after this migration (as the deployment guide already
asks). The index is dropped and rebuilt inside the migration's transaction, which holds
the table's write lock throughout: no task can be inserted between the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "uq_task_queue_idempotency_key"
_KEY_GIVEN = "idempotency_key IS NOT NULL"


def upgrade() -> None:
    """Rebuild the idempotency key's unique index over keyed tasks only."""
    op.drop_index(_INDEX, table_name="task_queue")
    op.create_index(
        _INDEX,
        "task_queue",
        ["idempotency_key"],
        unique=True,
        postgresql_where=sa.text(_KEY_GIVEN),
        sqlite_where=sa.text(_KEY_GIVEN),
    )


def downgrade() -> None:
    """Put back the index over every task."""
    op.drop_index(_INDEX, table_name="task_queue")
    op.create_index(_INDEX, "task_queue", ["idempotency_key"], unique=True)
