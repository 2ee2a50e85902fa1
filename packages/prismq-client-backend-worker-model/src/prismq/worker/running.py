"""The tasks a worker is running, and the slots left for more.

A slot is taken when a task is claimed and freed only after the task's outcome is
committed (or its lease is known lost), so the worker never holds more leases than its
concurrency. The claim loop waits here for a free slot instead of polling the database.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable

from prismq.queue import ClaimedTask
from prismq.worker.context import TaskContext

#: Longest single wait on the condition: waits re-check their stop condition this often,
#: since a signal handler may only set a flag (taking a lock there could deadlock).
WAIT_SLICE_SECONDS = 0.1


@dataclasses.dataclass(slots=True, eq=False)
class RunningTask:
    """A claimed task and its handler's context."""

    task: ClaimedTask
    context: TaskContext
    #: Set by the handler thread once the handler returned and its outcome is being recorded.
    finishing: bool = False
    #: Set at shutdown when the task was given back to the queue.
    given_back: bool = False


class RunningTasks:
    """The running tasks by id, guarded by one condition. Thread-safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tasks: dict[int, RunningTask] = {}
        self._changed = threading.Condition()

    def add_many(self, claimed: Iterable[RunningTask]) -> None:
        """Take a slot for each of ``claimed``."""
        with self._changed:
            for running in claimed:
                self._tasks[running.task.id] = running

    def remove_many(self, task_ids: Iterable[int]) -> None:
        """Free the slots of ``task_ids`` at once and wake whoever waits for one."""
        with self._changed:
            for task_id in task_ids:
                self._tasks.pop(task_id, None)
            self._changed.notify_all()

    def get(self, task_id: int) -> RunningTask | None:
        """The running task with that id, if it still runs."""
        with self._changed:
            return self._tasks.get(task_id)

    def snapshot(self) -> list[RunningTask]:
        """The running tasks at this moment."""
        with self._changed:
            return list(self._tasks.values())

    def ids(self) -> frozenset[int]:
        """The ids of the running tasks."""
        with self._changed:
            return frozenset(self._tasks)

    def __len__(self) -> int:
        with self._changed:
            return len(self._tasks)

    def leases_to_renew(self) -> dict[int, str]:
        """Task id → lease token of every task whose lease this worker still holds."""
        with self._changed:
            return {
                task_id: running.task.lease_token
                for task_id, running in self._tasks.items()
                if not running.given_back and not running.context.lease_lost
            }

    def wait_for_free_slots(self, should_stop: Callable[[], bool]) -> int:
        """Block until at least one slot is free; returns how many (0 when stopping)."""
        with self._changed:
            while not should_stop():
                free = self.capacity - len(self._tasks)
                if free > 0:
                    return free
                self._changed.wait(WAIT_SLICE_SECONDS)
        return 0

    def wait_until_empty(self, timeout: float, should_give_up: Callable[[], bool]) -> bool:
        """Block until no task runs, ``timeout`` passes or ``should_give_up()``; True if empty."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._tasks and not should_give_up():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(min(remaining, WAIT_SLICE_SECONDS))
            return not self._tasks

    def wake_waiters(self) -> None:
        """Make every waiter re-check its condition now (used by ``stop()``)."""
        with self._changed:
            self._changed.notify_all()
