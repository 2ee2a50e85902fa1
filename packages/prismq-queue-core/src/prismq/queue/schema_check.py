"""Is a database at the schema this code expects? Answered without importing Alembic.

Workers and the API check the schema when they start; Alembic (and the template engine it
brings) costs a large part of a process's start-up, so the check reads the version table
with plain SQL and compares it with :data:`SHIPPED_REVISIONS`. Migrating still goes
through Alembic (:mod:`prismq.queue.migrate`), and a test keeps the two lists equal.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect, text

from prismq.queue.__about__ import __version__
from prismq.queue.database import QueueDatabase
from prismq.queue.errors import SchemaNotMigratedError

#: Table recording the schema revision. Not Alembic's default ``alembic_version``: the
#: PrismQ tables may share a database with an application that runs its own Alembic.
VERSION_TABLE = "prismq_alembic_version"

#: Every revision in ``migrations/versions``, oldest first. Add a new migration's id here.
SHIPPED_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004")
#: The revision this version of the code expects.
HEAD_REVISION = SHIPPED_REVISIONS[-1]

_READ_VERSIONS = text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 - a constant


def upgrade_command(display_url: str) -> str:
    """The shell command that migrates the database at ``display_url`` to head."""
    # Always single-quoted, so the command can be pasted as is; a quote inside the URL
    # is closed, escaped and reopened the POSIX shell way.
    quoted = "'" + display_url.replace("'", "'\"'\"'") + "'"
    return f"prismq db upgrade --database-url {quoted}"


def unknown_revision_message(db: QueueDatabase, current: str) -> str:
    """Why a database at a revision this code does not know is refused."""
    return (
        f"{db.display_url} is at PrismQ schema revision {current!r}, which"
        f" prismq-queue-core {__version__} does not know: the code is older than the"
        f" database. Install the prismq-queue-core release that migrated it, or a newer"
        f" one (this release expects revision {HEAD_REVISION!r})."
    )


def current_revision(db: QueueDatabase) -> str | None:
    """The schema revision ``db`` is at, or ``None`` when it has no PrismQ schema.

    Raises :class:`~prismq.queue.errors.DatabaseUnavailableError` when the database cannot
    be reached.
    """
    if _is_missing_sqlite_file(db):
        # Connecting would create an empty file: a typo in a path would leave litter behind.
        return None
    with db.read() as conn:
        return read_revision(conn, db)


def read_revision(conn: Connection, db: QueueDatabase) -> str | None:
    """The revision recorded in the version table, read on ``conn``; None without one."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    heads = sorted(conn.execute(_READ_VERSIONS).scalars())
    if len(heads) > 1:
        raise SchemaNotMigratedError(
            f"{db.display_url} records several PrismQ schema revisions ({', '.join(heads)});"
            " it was changed by hand or by a tool other than `prismq db`"
        )
    return heads[0] if heads else None


def check(db: QueueDatabase) -> None:
    """Raise :class:`SchemaNotMigratedError` unless ``db`` is at :data:`HEAD_REVISION`.

    The message names the current and the expected revision and the command that fixes
    it. Services call this at start-up rather than migrating implicitly.
    """
    current = current_revision(db)
    if current == HEAD_REVISION:
        return
    if current is None:
        raise SchemaNotMigratedError(
            f"{db.display_url} has no PrismQ schema (expected revision {HEAD_REVISION!r});"
            f" run: {upgrade_command(db.display_url)}"
        )
    if current not in SHIPPED_REVISIONS:
        raise SchemaNotMigratedError(unknown_revision_message(db, current))
    raise SchemaNotMigratedError(
        f"{db.display_url} is at PrismQ schema revision {current!r}, this code expects"
        f" {HEAD_REVISION!r}; run: {upgrade_command(db.display_url)}"
    )


def _is_missing_sqlite_file(db: QueueDatabase) -> bool:
    database = db.url.database
    if db.dialect_name != "sqlite" or not database or db.url.query.get("uri"):
        return False
    return not Path(database).expanduser().exists()
