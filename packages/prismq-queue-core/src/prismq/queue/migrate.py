"""Schema migrations: bring a database to the schema this code expects, or check that it is.

The Alembic environment ships inside the package (:data:`MIGRATIONS_DIR`), so migrating
needs neither an ``alembic.ini`` nor a particular working directory::

    from prismq.queue.database import QueueDatabase
    from prismq.queue import migrate

    with QueueDatabase(url) as db:
        migrate.upgrade(db)   # safe to run from several processes at once
        migrate.check(db)     # what a service calls at start-up instead

:func:`check` and :func:`current_revision` live in :mod:`prismq.queue.schema_check`, which
services import to check the schema without loading Alembic.

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
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, Table

from prismq.queue.database import QueueDatabase
from prismq.queue.dialects.postgresql import MIGRATION_LOCK_KEY
from prismq.queue.errors import MigrationError, SchemaNotMigratedError
from prismq.queue.schema_check import (
    VERSION_TABLE,
    check,
    current_revision,
    read_revision,
    unknown_revision_message,
    upgrade_command,
)

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


@contextlib.contextmanager
def _migration_transaction(db: QueueDatabase) -> Iterator[Connection]:
    """One transaction holding the database-wide migration lock until it ends."""
    with db.write() as conn:
        db.dialect.lock_migrations(conn)
        current = read_revision(conn, db)
        if current is not None and current not in _known_revisions():
            raise SchemaNotMigratedError(unknown_revision_message(db, current))
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
        if read_revision(conn, db) is None:
            # At base nothing of PrismQ is left, not even the (now empty) version table.
            Table(VERSION_TABLE, MetaData()).drop(conn, checkfirst=True)
