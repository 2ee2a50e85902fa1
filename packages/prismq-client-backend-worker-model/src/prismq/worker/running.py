"""The tasks a worker holds leases on, and the slots left for more.

A slot is taken when a task is claimed. It frees when the task's handler has returned and
its result has been taken into a completion batch (so the next claim overlaps that batch's
commit instead of waiting for it), or else once the outcome is recorded. The lease is kept,
and renewed, until the outcome is committed. So at most ``capacity`` handlers run at once,
and the worker holds at most ``capacity`` leases plus those of one batch being committed.
The claim loop waits here for a free slot instead of polling the database.
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
    #: Whether the task still counts against the concurrency (see RunningTasks.free_slots).
    holds_slot: bool = True


class RunningTasks:
    """The tasks this worker holds leases on, by id, guarded by one condition. Thread-safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tasks: dict[int, RunningTask] = {}
        self._busy_slots = 0
        self._changed = threading.Condition()

    def add_many(self, claimed: Iterable[RunningTask]) -> None:
        """Take a slot for each of ``claimed``."""
        with self._changed:
            for running in claimed:
                self._tasks[running.task.id] = running
                self._busy_slots += 1

    def free_slots(self, finished: Iterable[RunningTask]) -> None:
        """These handlers returned: free their slots, keep their leases until recorded."""
        with self._changed:
            for running in finished:
                self._release_slot(running)
            self._changed.notify_all()

    def remove_many(self, task_ids: Iterable[int]) -> None:
        """Forget ``task_ids`` (their outcomes are recorded), freeing any slot still held."""
        with self._changed:
            for task_id in task_ids:
                running = self._tasks.pop(task_id, None)
                if running is not None:
                    self._release_slot(running)
            self._changed.notify_all()

    def _release_slot(self, running: RunningTask) -> None:
        """Free ``running``'s slot if it still holds one (the caller holds the lock)."""
        if running.holds_slot:
            running.holds_slot = False
            self._busy_slots -= 1

    def get(self, task_id: int) -> RunningTask | None:
        """The running task with that id, if it still runs."""
        with self._changed:
            return self._tasks.get(task_id)

    def snapshot(self) -> list[RunningTask]:
        """The running tasks at this moment."""
        with self._changed:
            return list(self._tasks.values())

    def ids(self) -> frozenset[int]:
        """The ids of the tasks holding a slot: handlers running, or failures being recorded.

        Results waiting for their batch's commit no longer count (see :meth:`free_slots`).
        """
        with self._changed:
            return frozenset(
                task_id for task_id, running in self._tasks.items() if running.holds_slot
            )

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
                free = self.capacity - self._busy_slots
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
