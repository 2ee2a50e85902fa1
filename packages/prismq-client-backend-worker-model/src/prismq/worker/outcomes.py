"""What a handler did, and what became of its task once that was recorded."""

from __future__ import annotations

import dataclasses
import enum
import traceback
from typing import Any

from prismq.worker.events import describe_error


class TaskOutcome(str, enum.Enum):
    """What became of a task after its handler ran."""

    COMPLETED = "completed"
    #: Failed; queued again after a backoff delay.
    RETRYING = "retrying"
    #: Failed for good (non-retryable, or out of attempts): in the dead-letter set.
    DEAD_LETTERED = "dead_lettered"
    CANCELLED = "cancelled"
    #: The lease was no longer this worker's: its outcome was discarded.
    LEASE_LOST = "lease_lost"
    #: The database could not record the outcome; the lease expiry will return the task.
    UNRECORDED = "unrecorded"


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerReturned:
    """The handler returned ``result`` (checked to be JSON) after ``elapsed_ms``."""

    result: Any
    elapsed_ms: float


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerFailed:
    """The task failed: ``summary`` is logged, ``message`` stored; retried if ``retryable``."""

    summary: str
    message: str
    retryable: bool

    @classmethod
    def plain(cls, reason: str, *, retryable: bool) -> HandlerFailed:
        """A failure described by ``reason`` alone (no exception, no traceback)."""
        return cls(reason, reason, retryable)

    @classmethod
    def from_exception(cls, error: BaseException, *, retryable: bool) -> HandlerFailed:
        """The stored message leads with the error, then its traceback (cut from the end)."""
        summary = describe_error(error)
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return cls(summary, f"{summary}\n\n{trace}", retryable)
