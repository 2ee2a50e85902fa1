"""Schema migrations: bring a database to the schema this code expects, or check that it is.

The Alembic environment ships inside the package (:data:`MIGRATIONS_DIR`), so migrating
needs neither an ``alembic.ini`` nor a particular working directory::

    from prismq.queue.database import QueueDatabase
    from prismq.queue import migrate

    with QueueDatabase(url) as db:
        migrate.upgrade(db)   # safe to run from several processes at once
        migrate.check(db)     # what a service calls at start-up instead

Concurrency: all revisions of one :func:`upgrade` or :func:`downgrade` run in a single
transaction that first takes a database-wide lock (SQLite: ``BEGIN IMMEDIATE``, the write
lock; PostgreSQL: a transaction-scoped advisory lock, which also works behind PgBouncer in
transaction-pooling mode). A second migrator waits for the first to commit, then finds the
schema already at head and does nothing. Both databases run DDL transactionally, so a
failed migration leaves the schema exactly as it was.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, Table

from prismq.queue.__about__ import __version__
from prismq.queue.database import QueueDatabase
from prismq.queue.dialects.postgresql import MIGRATION_LOCK_KEY
from prismq.queue.errors import MigrationError, SchemaNotMigratedError

__all__ = [
    "MIGRATIONS_DIR",
    "MIGRATION_LOCK_KEY",
    "VERSION_TABLE",
    "MigrationError",
    "alembic_config",
    "check",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
    "upgrade_command",
]

#: The Alembic script directory inside the installed package.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Table recording the schema revision. Not Alembic's default ``alembic_version``: the
#: PrismQ tables may share a database with an application that runs its own Alembic.
VERSION_TABLE = "prismq_alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the shipped migrations, optionally bound to ``connection``.

    The connection is handed to ``env.py`` through ``config.attributes["connection"]``;
    migrations then run inside whatever transaction that connection is in.
    """
    config = Config()
    # The value goes through ConfigParser interpolation, where "%" is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.lru_cache(maxsize=1)
def _script_directory() -> ScriptDirectory:
    # The revisions are files inside the installed package: read them once per process.
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest schema revision this version of the code knows and expects."""
    heads = _script_directory().get_heads()
    if len(heads) != 1:
        # A packaging mistake (two revisions with the same parent), not a user error.
        raise MigrationError(f"the PrismQ migrations have {len(heads)} heads, expected one")
    return heads[0]


def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _script_directory().walk_revisions())


def current_revision(db: QueueDatabase) -> str | None:
    """The schema revision ``db`` is at, or ``None`` when it has no PrismQ schema.

    Raises :class:`~prismq.queue.errors.DatabaseUnavailableError` when the database cannot
    be reached.
    """
    if _is_missing_sqlite_file(db):
        # Connecting would create an empty file: a typo in a path would leave litter behind.
        return None
    with db.read() as conn:
        return _current_revision(conn, db)


def _is_missing_sqlite_file(db: QueueDatabase) -> bool:
    database = db.url.database
    if db.dialect_name != "sqlite" or not database or db.url.query.get("uri"):
        return False
    return not Path(database).expanduser().exists()


def _current_revision(conn: Connection, db: QueueDatabase) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    heads = context.get_current_heads()
    if len(heads) > 1:
        raise SchemaNotMigratedError(
            f"{db.display_url} records several PrismQ schema revisions ({', '.join(heads)});"
            " it was changed by hand or by a tool other than `prismq db`"
        )
    return heads[0] if heads else None


def upgrade_command(display_url: str) -> str:
    """The shell command that migrates the database at ``display_url`` to head."""
    # Always single-quoted, so the command can be pasted as is; a quote inside the URL
    # is closed, escaped and reopened the POSIX shell way.
    quoted = "'" + display_url.replace("'", "'\"'\"'") + "'"
    return f"prismq db upgrade --database-url {quoted}"


def _unknown_revision_message(db: QueueDatabase, current: str) -> str:
    return (
        f"{db.display_url} is at PrismQ schema revision {current!r}, which"
        f" prismq-queue-core {__version__} does not know: the code is older than the"
        f" database. Install the prismq-queue-core release that migrated it, or a newer"
        f" one (this release expects revision {head_revision()!r})."
    )


def check(db: QueueDatabase) -> None:
    """Raise :class:`SchemaNotMigratedError` unless ``db`` is at :func:`head_revision`.

    The message names the current and the expected revision and the command that fixes
    it. Services call this at start-up rather than migrating implicitly.
    """
    expected = head_revision()
    current = current_revision(db)
    if current == expected:
        return
    if current is None:
        raise SchemaNotMigratedError(
            f"{db.display_url} has no PrismQ schema (expected revision {expected!r});"
            f" run: {upgrade_command(db.display_url)}"
        )
    if current not in _known_revisions():
        raise SchemaNotMigratedError(_unknown_revision_message(db, current))
    raise SchemaNotMigratedError(
        f"{db.display_url} is at PrismQ schema revision {current!r}, this code expects"
        f" {expected!r}; run: {upgrade_command(db.display_url)}"
    )


@contextlib.contextmanager
def _migration_transaction(db: QueueDatabase) -> Iterator[Connection]:
    """One transaction holding the database-wide migration lock until it ends."""
    with db.write() as conn:
        db.dialect.lock_migrations(conn)
        current = _current_revision(conn, db)
        if current is not None and current not in _known_revisions():
            raise SchemaNotMigratedError(_unknown_revision_message(db, current))
        yield conn


def _run(alembic_command: Callable[[Config, str], None], conn: Connection, revision: str) -> None:
    try:
        alembic_command(alembic_config(conn), revision)
    except CommandError as error:
        # Alembic's messages are clear ("Can't locate revision identified by 'x'");
        # re-raise them as the error type PrismQ callers catch.
        raise MigrationError(f"cannot migrate to {revision!r}: {error}") from error


def upgrade(db: QueueDatabase, revision: str = "head") -> None:
    """Migrate ``db`` up to ``revision`` (default: the newest), creating the schema if empty.

    Idempotent and safe to call from several processes at once: the others wait for the
    first and then find nothing to do.
    """
    with _migration_transaction(db) as conn:
        _run(command.upgrade, conn, revision)


def downgrade(db: QueueDatabase, revision: str) -> None:
    """Migrate ``db`` down to ``revision``; ``"base"`` removes every PrismQ table.

    Downgrading deletes the data of whatever the undone revisions created: back it up first.
    """
    with _migration_transaction(db) as conn:
        _run(command.downgrade, conn, revision)
        if _current_revision(conn, db) is None:
            # At base nothing of PrismQ is left, not even the (now empty) version table.
            Table(VERSION_TABLE, MetaData()).drop(conn, checkfirst=True)
