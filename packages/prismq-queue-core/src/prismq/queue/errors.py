"""Exceptions a caller of the queue core can catch and act on.

Every error raised by the public API derives from :class:`PrismQError`; none of them is a
bare SQLAlchemy or driver exception, so callers never have to know which database is behind
the queue.
"""

from __future__ import annotations


class PrismQError(Exception):
    """Base class of every error raised by PrismQ."""


class InvalidTaskError(PrismQError, ValueError):
    """A task's fields are invalid (e.g. empty type, payload that is not a JSON object)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidPriorityError(InvalidTaskError):
    """A priority outside the allowed range."""


class InvalidPayloadError(InvalidTaskError):
    """A payload, compatibility or result that is not a JSON object / JSON-serialisable."""


class UnknownStrategyError(PrismQError, ValueError):
    """A scheduling strategy name that PrismQ does not know."""


class TaskNotFoundError(PrismQError, LookupError):
    """No task with the given id exists."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"task {task_id} does not exist")
        self.task_id = task_id


class LeaseLostError(PrismQError):
    """The caller's lease token is stale: the task was reclaimed, released or finished.

    Raised by complete, fail, renew and progress updates so that a worker whose lease
    expired (a "zombie") can never change a task that someone else now owns.
    """

    def __init__(self, task_id: int, reason: str = "the lease token is no longer valid") -> None:
        super().__init__(f"task {task_id}: {reason}")
        self.task_id = task_id


class InvalidStateTransitionError(PrismQError):
    """The requested change does not apply to the task's current status."""

    def __init__(self, task_id: int, status: str, action: str) -> None:
        super().__init__(f"task {task_id} is {status}: cannot {action}")
        self.task_id = task_id
        self.status = status
        self.action = action


class DatabaseError(PrismQError):
    """The database failed in a way the caller cannot fix by changing its input."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached (wrong URL, server down, file not accessible)."""


class SchemaNotMigratedError(DatabaseError):
    """The database schema is missing or not at the revision this code expects."""


class MigrationError(PrismQError):
    """A migration could not run as asked, e.g. an unknown target revision."""


class BackupError(PrismQError):
    """A backup or restore could not be made."""
