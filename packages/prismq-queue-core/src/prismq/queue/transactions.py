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
    db: QueueDatabase, connection: CallerTransaction | None = None
) -> Iterator[Connection]:
    """The caller's connection (it commits or rolls back), or a new write transaction."""
    if connection is None:
        with db.write() as conn:
            yield conn
        return
    with db.translating_errors():
        yield connection.connection() if isinstance(connection, Session) else connection
