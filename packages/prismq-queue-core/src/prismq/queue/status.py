"""The five task statuses and which of them are final."""

from __future__ import annotations

import enum


class TaskStatus(str, enum.Enum):
    """Where a task is in its lifecycle.

    ``queued`` → ``leased`` → ``completed`` | ``queued`` (retry) | ``failed`` (dead letter)
    | ``cancelled``.
    """

    QUEUED = "queued"
    LEASED = "leased"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True for statuses no worker will move the task out of by itself."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
