"""Running a lifecycle statement in its own transaction or in the caller's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy import Connection

from prismq.queue.database import QueueDatabase

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: What a caller may hand in to take part in its own transaction.
CallerTransaction: TypeAlias = "Connection | Session"


@contextlib.contextmanager
def write_transaction(
    db: QueueDatabase,
    connection: CallerTransaction | None = None,
    *,
    single_statement: bool = False,
) -> Iterator[Connection]:
    """The caller's connection (it commits or rolls back), or a new write transaction.

    With ``single_statement`` the block runs exactly one writing statement, which may then
    be its own transaction (see :meth:`QueueDatabase.write_statement`).
    """
    if connection is None:
        with db.write_statement() if single_statement else db.write() as conn:
            yield conn
        return
    with db.translating_errors():
        # Anything but a Connection is a Session: testing for Session would load the ORM
        # in processes that never use it.
        yield connection if isinstance(connection, Connection) else connection.connection()
