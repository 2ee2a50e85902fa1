"""What a worker has done since it started: counters, read as a frozen snapshot."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable

from prismq.worker.outcomes import TaskOutcome


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class WorkerStats:
    """Counts of tasks by what became of them in this worker process."""

    claimed: int = 0
    completed: int = 0
    #: Dead-lettered: failed without retry or out of attempts.
    failed: int = 0
    #: Failed and queued again for a retry.
    retried: int = 0
    cancelled: int = 0
    #: Lease lost before the outcome was recorded: the outcome was discarded.
    lost: int = 0
    #: Given back to the queue at shutdown, attempt not counted.
    released: int = 0
    #: The outcome could not be written (database unreachable); the lease expiry returns them.
    unrecorded: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return dataclasses.asdict(self)


_FIELD_OF_OUTCOME = {
    TaskOutcome.COMPLETED: "completed",
    TaskOutcome.DEAD_LETTERED: "failed",
    TaskOutcome.RETRYING: "retried",
    TaskOutcome.CANCELLED: "cancelled",
    TaskOutcome.LEASE_LOST: "lost",
    TaskOutcome.UNRECORDED: "unrecorded",
}


class StatsCounter:
    """Thread-safe counters behind :class:`WorkerStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((field.name for field in dataclasses.fields(WorkerStats)), 0)

    def add(self, field: str, amount: int = 1) -> None:
        """Add ``amount`` to one counter."""
        with self._lock:
            self._counts[field] += amount

    def count_outcomes(self, outcomes: Iterable[TaskOutcome]) -> None:
        """Count finished tasks by their outcomes."""
        with self._lock:
            for outcome in outcomes:
                self._counts[_FIELD_OF_OUTCOME[outcome]] += 1

    def snapshot(self) -> WorkerStats:
        """The counters at this moment."""
        with self._lock:
            return WorkerStats(**self._counts)
