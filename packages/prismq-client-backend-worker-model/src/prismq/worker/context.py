"""``TaskContext``: what a handler knows about the task it runs, and how it talks back.

A handler that takes two arguments is called as ``handler(payload, ctx)``. Through ``ctx``
it reads its task's id and attempt, notices a cancel request (``ctx.cancelled``) or a lost
lease (``ctx.lease_lost``), and reports progress or log lines, which are stored with the
task. Nothing here touches the database unless the handler asks.
"""

from __future__ import annotations

import threading
from typing import Any

from prismq.queue import ClaimedTask, LeaseLostError, QueueDatabase, log, set_progress

#: Guards the lazy creation of a context's cancel event against a concurrent cancel.
_CANCEL_EVENTS_LOCK = threading.Lock()


class TaskContext:
    """The running task as its handler sees it. Thread-safe.

    The worker sets :attr:`cancelled` when a cancel was requested for the task (it learns
    this at each lease renewal, so within about one heartbeat interval) and
    :attr:`lease_lost` when the task is no longer this worker's: a cooperative handler
    checks them between steps and returns early.
    """

    __slots__ = ("_cancel_event", "_cancelled", "_db", "_lease_lost", "_task", "worker_id")

    def __init__(self, db: QueueDatabase, task: ClaimedTask, worker_id: str) -> None:
        self._db = db
        self._task = task
        self.worker_id = worker_id
        self._cancelled = False
        # Made only for a handler that waits on it: most never do, and a worker makes a
        # context per task (an Event costs a Condition and two locks).
        self._cancel_event: threading.Event | None = None
        self._lease_lost = False

    @property
    def task_id(self) -> int:
        """The task's id."""
        return self._task.id

    @property
    def task_type(self) -> str:
        """The task's type (which handler runs it)."""
        return self._task.type

    @property
    def queue(self) -> str:
        """The queue the task was claimed from."""
        return self._task.queue

    @property
    def attempt(self) -> int:
        """Which attempt this is: 1 for the first run, 2 for the first retry, ..."""
        return self._task.attempt

    @property
    def max_attempts(self) -> int:
        """How many attempts the task gets before it is dead-lettered."""
        return self._task.max_attempts

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure now dead-letters the task instead of retrying it."""
        return self._task.attempt >= self._task.max_attempts

    @property
    def cancelled(self) -> bool:
        """True once cancellation was requested (or the worker gave the task back)."""
        return self._cancelled

    @property
    def lease_lost(self) -> bool:
        """True once the task is no longer leased to this worker: its result will be discarded."""
        return self._lease_lost

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds for a cancel request; returns :attr:`cancelled`.

        Handy in place of ``time.sleep`` in a handler that should stop when cancelled.
        """
        with _CANCEL_EVENTS_LOCK:
            if self._cancel_event is None:
                self._cancel_event = threading.Event()
                if self._cancelled:
                    self._cancel_event.set()
            event = self._cancel_event
        return event.wait(timeout)

    def progress(self, value: Any) -> bool:
        """Store a JSON ``value`` as the task's progress (one write, fenced by the lease).

        Returns True when stored, False when the lease was lost (nothing is stored then).
        A cancel request noticed on the way sets :attr:`cancelled`. Raises
        :class:`~prismq.queue.InvalidPayloadError` when ``value`` is not JSON.
        """
        try:
            cancel_requested = set_progress(self._db, self._task.id, self._task.lease_token, value)
        except LeaseLostError:
            self.mark_lease_lost()
            return False
        if cancel_requested:
            self.mark_cancelled()
        return True

    def log(
        self, message: str, level: str = "info", *, details: dict[str, Any] | None = None
    ) -> None:
        """Append a line to the task's log (kept with the task, readable through the API).

        ``level`` is one of debug, info, warning, error, critical.
        """
        log(self._db, self._task.id, message, level=level, details=details)

    def mark_cancelled(self) -> None:
        """Set :attr:`cancelled` (called by the worker)."""
        self._set_cancelled()

    def mark_lease_lost(self) -> None:
        """Set :attr:`lease_lost`, and :attr:`cancelled` so the handler can stop early."""
        self._lease_lost = True
        self._set_cancelled()

    def _set_cancelled(self) -> None:
        with _CANCEL_EVENTS_LOCK:
            self._cancelled = True
            if self._cancel_event is not None:
                self._cancel_event.set()

    def __repr__(self) -> str:
        return (
            f"TaskContext(task_id={self.task_id}, task_type={self.task_type!r},"
            f" attempt={self.attempt}, worker_id={self.worker_id!r})"
        )
