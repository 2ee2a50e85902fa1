"""Alembic environment of the PrismQ schema, shipped inside ``prismq-queue-core``.

It is run by :mod:`prismq.queue.migrate` (and so by ``prismq db ...``), which opens the
transaction, takes the migration lock and hands that connection over in
``config.attributes["connection"]``. There is no ``alembic.ini``: running the ``alembic``
command against this directory directly is not supported, because it would bypass the lock
that keeps two processes from migrating the same database at once.

To draft a new revision, autogenerate against a database at head and then review it by hand
(it must build the same schema on SQLite and PostgreSQL)::

    from alembic import command
    from prismq.queue.database import QueueDatabase
    from prismq.queue.migrate import alembic_config

    with QueueDatabase("sqlite:////tmp/draft.db").engine.begin() as conn:
        command.revision(alembic_config(conn), message="...", autogenerate=True)
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from prismq.queue.migrate import VERSION_TABLE
from prismq.queue.tables import metadata

target_metadata = metadata


def _include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    # The PrismQ tables may live in the application's own database (transactional enqueue):
    # autogenerate must neither look at nor propose dropping tables that are not PrismQ's.
    if type_ == "table":
        return name in target_metadata.tables
    return True


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # Not "alembic_version": the application sharing the database may use Alembic too.
        version_table=VERSION_TABLE,
        # SQLite's ALTER TABLE cannot change or drop most things; batch mode recreates the
        # table instead. Only autogenerate's rendering reads this flag.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_include_name,
    )
    # The connection is already inside the caller's transaction, so this does not begin
    # another one: every revision of one upgrade commits together or not at all.
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("PrismQ migrations run online only: use `prismq db upgrade`")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "the PrismQ migration environment needs a connection in"
            ' config.attributes["connection"]: run it through prismq.queue.migrate'
            " or `prismq db upgrade`"
        )
    _run_migrations(connection)


_main()
