"""An idle worker's wait: until a wake-up hint, the next delayed task is due, or the poll
interval, whichever comes first.

The hint is the core's task listener (PostgreSQL LISTEN/NOTIFY, SQLite's change counter);
it is only a hint, so the wait is always bounded by the poll interval too. The due time of
the next delayed task is read from the database clock, so a task enqueued with a delay is
claimed when it is due rather than up to a poll interval later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prismq.queue import DatabaseError, QueueDatabase, seconds_until_next_due
from prismq.queue.notifications import open_task_listener
from prismq.worker.config import WorkerConfig
from prismq.worker.events import describe_error, log_event
from prismq.worker.registry import TaskHandlerRegistry

#: Longest single wait on the listener between two looks at the stop flag.
IDLE_SLICE_SECONDS = 5.0


class IdleWait:
    """Waits for claimable work on behalf of one worker. Not thread-safe: one waiter."""

    def __init__(
        self, db: QueueDatabase, config: WorkerConfig, registry: TaskHandlerRegistry
    ) -> None:
        self._db = db
        self._config = config
        self._registry = registry
        # Opened before the first claim, so no hint given after it is missed.
        self._listener = open_task_listener(db, queues=config.queues)

    def wait(self, should_stop: Callable[[], bool]) -> None:
        """Return on a hint, when the next delayed task is due, at the poll interval, or
        (within a fraction of a second) once ``should_stop()`` is true."""
        deadline = time.monotonic() + self._timeout()
        while not should_stop():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # A stop interrupts the listener (see interrupt); the slices only bound how
            # long a stop flag set without one could go unseen. Every wake-up of an idle
            # worker costs CPU, so they are long.
            if self._listener.wait(min(remaining, IDLE_SLICE_SECONDS)):
                return

    def interrupt(self) -> None:
        """End a wait in progress (or the next one) now; safe from a signal handler."""
        self._listener.interrupt()

    def close(self) -> None:
        """Release the listener's connection."""
        self._listener.close()

    def _timeout(self) -> float:
        timeout = self._config.poll_interval_seconds
        try:
            due_in = seconds_until_next_due(
                self._db,
                queues=self._config.queues,
                task_types=self._registry.get_registered_types(),
                capabilities=self._config.capabilities,
            )
        except DatabaseError as error:
            log_event(logging.DEBUG, "next_due_unknown", error=describe_error(error))
            return timeout
        return timeout if due_in is None else min(timeout, due_in)
