"""Running a lifecycle statement in its own transaction or in the caller's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from prismq.queue.database import QueueDatabase

#: What a caller may hand in to take part in its own transaction.
CallerTransaction = Connection | Session


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
        yield connection.connection() if isinstance(connection, Session) else connection
