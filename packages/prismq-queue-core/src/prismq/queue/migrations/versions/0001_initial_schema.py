"""Initial schema: task_queue, task_logs, workers, api_tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Drafted by autogenerate against an empty SQLite database, then reviewed by hand so that it
builds exactly the models' schema on SQLite and PostgreSQL alike. A migration is a frozen
snapshot: it spells every type, default and constraint out instead of importing them from
``prismq.queue.models``, which will keep changing after this revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    # jsonb on PostgreSQL (structural equality for capability matching), JSON text on SQLite.
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _pk() -> sa.types.TypeEngine[int]:
    # SQLite only auto-increments INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    # The models' UTCDateTime is a TypeDecorator over exactly this type.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four PrismQ tables and their indexes."""
    op.create_table(
        "task_queue",
        sa.Column("id", _pk(), autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(length=100), server_default="default", nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("100"), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("compatibility", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("run_after_utc", _utc(), nullable=False),
        sa.Column("lease_until_utc", _utc(), nullable=True),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        sa.Column("reserved_at_utc", _utc(), nullable=True),
        sa.Column("processing_started_utc", _utc(), nullable=True),
        sa.Column("finished_at_utc", _utc(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("result", _json(), nullable=True),
        sa.Column("progress", _json(), nullable=True),
        sa.Column(
            "cancel_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_at_utc", _utc(), nullable=False),
        sa.Column("updated_at_utc", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_queue")),
        sa.CheckConstraint(
            "status IN ('queued', 'leased', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_task_queue_status"),
        ),
        sa.CheckConstraint("priority BETWEEN 1 AND 1000", name=op.f("ck_task_queue_priority")),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_task_queue_max_attempts")),
        # Ids are visible to clients: never hand out a purged task's id again.
        sqlite_autoincrement=True,
    )
    # Unique among existing rows: a key is remembered until its task is purged.
    op.create_index("uq_task_queue_idempotency_key", "task_queue", ["idempotency_key"], unique=True)
    # The claim reads only queued rows, in the orders the strategies use. Partial indexes
    # on both backends (SQLite supports them since 3.8).
    op.create_index(
        "ix_task_queue_ready_priority",
        "task_queue",
        ["queue", "priority", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_task_queue_ready_fifo",
        "task_queue",
        ["queue", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )
    # The reclaim: leased rows by lease expiry.
    op.create_index(
        "ix_task_queue_lease_expiry",
        "task_queue",
        ["lease_until_utc"],
        unique=False,
        postgresql_where=sa.text("status = 'leased'"),
        sqlite_where=sa.text("status = 'leased'"),
    )
    # Listing and counting by status / type.
    op.create_index("ix_task_queue_status_id", "task_queue", ["status", "id"], unique=False)
    op.create_index("ix_task_queue_type_status", "task_queue", ["type", "status"], unique=False)
    # Metrics windows and purges read finished tasks by when they finished.
    op.create_index(
        "ix_task_queue_status_finished_at_utc",
        "task_queue",
        ["status", "finished_at_utc"],
        unique=False,
    )

    op.create_table(
        "task_logs",
        sa.Column("id", _pk(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("at_utc", _utc(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_logs")),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task_queue.id"],
            name=op.f("fk_task_logs_task_id_task_queue"),
            ondelete="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_logs_task_id_id", "task_logs", ["task_id", "id"], unique=False)

    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("capabilities", _json(), nullable=False),
        sa.Column("queues", _json(), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("concurrency", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("started_at_utc", _utc(), nullable=False),
        sa.Column("heartbeat_utc", _utc(), nullable=False),
        sa.Column("stopped_at_utc", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_workers")),
    )
    op.create_index("ix_workers_heartbeat_utc", "workers", ["heartbeat_utc"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", _pk(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("scopes", _json(), nullable=False),
        sa.Column("created_at_utc", _utc(), nullable=False),
        sa.Column("revoked_at_utc", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    op.create_index("uq_api_tokens_token_hash", "api_tokens", ["token_hash"], unique=True)

    if op.get_bind().dialect.name == "postgresql":
        for statement in _POSTGRESQL_NOTIFY_DDL:
            op.execute(statement)


# PostgreSQL wakes idle workers with NOTIFY on channel prismq_tasks, payload the queue name,
# whenever tasks are inserted queued or return to queued. A hint only: workers also poll.
# Inserts notify once per statement (bulk enqueues stay cheap); updates only for the rare
# rows that go back to queued (retry, release, reclaim), filtered by WHEN before any call.
_POSTGRESQL_NOTIFY_DDL = (
    """
    CREATE FUNCTION prismq_notify_inserted_tasks() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('prismq_tasks', ready.queue)
        FROM (SELECT DISTINCT queue FROM inserted_tasks WHERE status = 'queued') AS ready;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION prismq_notify_requeued_task() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('prismq_tasks', NEW.queue);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER prismq_task_queue_notify_insert
    AFTER INSERT ON task_queue REFERENCING NEW TABLE AS inserted_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION prismq_notify_inserted_tasks()
    """,
    """
    CREATE TRIGGER prismq_task_queue_notify_requeue
    AFTER UPDATE OF status ON task_queue
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
    EXECUTE FUNCTION prismq_notify_requeued_task()
    """,
)


def downgrade() -> None:
    """Drop the four PrismQ tables (and with them their indexes and all their data)."""
    # Referencing table first; dropping a table drops its indexes and triggers.
    op.drop_table("api_tokens")
    op.drop_table("workers")
    op.drop_table("task_logs")
    op.drop_table("task_queue")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS prismq_notify_inserted_tasks()")
        op.execute("DROP FUNCTION IF EXISTS prismq_notify_requeued_task()")
