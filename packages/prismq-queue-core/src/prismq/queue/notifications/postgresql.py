"""PostgreSQL: ``LISTEN prismq_tasks`` on a dedicated autocommit connection.

The queue's triggers ``NOTIFY prismq_tasks`` with the queue's name when tasks are inserted
queued or go back to queued. The listening connection is not taken from the pool: LISTEN is
session state, which a transaction-mode pooler (PgBouncer) would not keep, so it may point
straight at the server. If the connection breaks the listener reconnects on the next wait
and, meanwhile, simply times out: callers poll anyway.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Collection
from typing import Any

from sqlalchemy.engine import URL, make_url

from prismq.queue.notifications.base import TaskListener
from prismq.queue.notifications.wake_pipe import WakePipe

#: The NOTIFY channel of the queue's triggers.
NOTIFY_CHANNEL = "prismq_tasks"

logger = logging.getLogger(__name__)


class PostgreSQLTaskListener(TaskListener):
    """Wakes on NOTIFY for one of ``queues`` (None: any queue)."""

    def __init__(
        self,
        url: URL | str,
        *,
        queues: Collection[str] | None = None,
        connect_timeout_seconds: int = 10,
    ) -> None:
        parsed = make_url(url) if isinstance(url, str) else url
        # libpq's own URL form: drop SQLAlchemy's "+psycopg" driver suffix.
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._display = parsed.render_as_string(hide_password=True)
        self._queues = frozenset(queues) if queues is not None else None
        self._connect_timeout = connect_timeout_seconds
        self._connection: Any = None
        self._wake = WakePipe()

    def start(self) -> None:
        import psycopg  # noqa: PLC0415 - an optional dependency, needed only here

        try:
            self._connect()
        except psycopg.Error as error:
            logger.warning(
                "LISTEN connection to %s failed (%s); will retry while polling",
                self._display,
                error,
            )
            self._drop_connection()

    def interrupt(self) -> None:
        self._wake.wake()

    def wait(self, timeout_seconds: float) -> bool:
        deadline = time.monotonic() + max(timeout_seconds, 0.0)
        import psycopg  # noqa: PLC0415 - an optional dependency, needed only here

        try:
            connection = self._connect()
            while True:
                # What has arrived, without blocking; then sleep on the socket itself.
                # (psycopg's notifies(timeout=...) wakes up in short steps while it waits:
                # a few per cent of a core for an idle worker.)
                for notify in connection.notifies(timeout=0):
                    if self._queues is None or notify.payload in self._queues:
                        return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                watched = [connection.fileno(), self._wake.fileno()]
                readable, _, _ = select.select(watched, [], [], remaining)
                if not readable:
                    return False
                if self._wake.fileno() in readable:
                    self._wake.drain()
                    return False
        except psycopg.Error as error:
            logger.warning(
                "LISTEN connection to %s failed (%s); falling back to polling",
                self._display,
                error,
            )
            self._drop_connection()
            time.sleep(max(deadline - time.monotonic(), 0.0))
            return False

    def close(self) -> None:
        self._drop_connection()
        self._wake.close()

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def _connect(self) -> Any:
        if self._connection is None or self._connection.closed:
            import psycopg  # noqa: PLC0415 - an optional dependency, needed only here

            connection = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
            )
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._connection = connection
        return self._connection
