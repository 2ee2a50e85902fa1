"""Wake-ups for idle workers and waiting clients: "tasks may be ready", never a promise.

:func:`open_task_listener` gives a :class:`TaskListener` whose :meth:`~TaskListener.wait`
returns early when the database signals that tasks may have become ready: PostgreSQL
through ``LISTEN``/``NOTIFY`` on a dedicated connection, SQLite by watching
``PRAGMA data_version``. A wake-up is a hint: callers still claim (and find nothing, at
times) and still poll now and then, so a lost notification only costs latency.
"""

from __future__ import annotations

from collections.abc import Collection

from prismq.queue.database import QueueDatabase
from prismq.queue.notifications.base import TaskListener
from prismq.queue.notifications.postgresql import NOTIFY_CHANNEL, PostgreSQLTaskListener
from prismq.queue.notifications.sqlite import SQLiteTaskListener

__all__ = [
    "NOTIFY_CHANNEL",
    "PostgreSQLTaskListener",
    "SQLiteTaskListener",
    "TaskListener",
    "open_task_listener",
]


def open_task_listener(
    db: QueueDatabase,
    *,
    queues: Collection[str] | None = None,
    listen_url: str | None = None,
) -> TaskListener:
    """A listener for tasks becoming ready in ``queues`` (None: any queue).

    ``listen_url`` (PostgreSQL only) points the LISTEN connection straight at the server
    when ``db`` goes through a pooler in transaction mode, where LISTEN does not work.
    The listener is listening when this returns: a hint given after it is not missed,
    whenever the first :meth:`~TaskListener.wait` comes.
    """
    listener: TaskListener
    if db.dialect_name == "postgresql":
        listener = PostgreSQLTaskListener(listen_url or db.url, queues=queues)
    else:
        listener = SQLiteTaskListener(db.url)
    listener.start()
    return listener
