"""Exceptions of the PrismQ worker.

Every error the worker package raises derives from :class:`WorkerError` (itself a
:class:`prismq.queue.errors.PrismQError`), so a caller can catch the whole family at once.
:class:`PermanentTaskError` is the exception: it is raised *by a handler*, not by PrismQ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prismq.queue.errors import PrismQError


class WorkerError(PrismQError):
    """Base class of every error raised by the PrismQ worker package."""


class TaskHandlerNotRegisteredError(WorkerError, LookupError):
    """No handler is registered for the requested task type."""

    def __init__(self, task_type: str, registered_types: Iterable[str] = ()) -> None:
        registered = sorted(registered_types)
        known = ", ".join(repr(name) for name in registered) if registered else "none"
        super().__init__(
            f"no handler is registered for task type {task_type!r} (registered types: {known})"
        )
        self.task_type = task_type
        self.registered_types = registered


class HandlerAlreadyRegisteredError(WorkerError, ValueError):
    """A handler is already registered for the task type and no override was allowed."""

    def __init__(self, task_type: str, *, reason: str | None = None) -> None:
        explanation = reason or "pass allow_override=True to replace it"
        super().__init__(
            f"a handler is already registered for task type {task_type!r}: {explanation}"
        )
        self.task_type = task_type


class HandlerLoadError(WorkerError):
    """Handlers could not be loaded from a handler file or a ``module:attribute`` spec.

    ``source`` is the file path or the spec, ``entry`` the task type or 0-based index of
    the offending entry (``None`` when the whole source is at fault), ``reason`` why.
    """

    def __init__(self, source: str, reason: str, entry: str | int | None = None) -> None:
        where = source if entry is None else f"{source}: entry {entry!r}"
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.entry = entry
        self.reason = reason


class WorkerConfigError(WorkerError, ValueError):
    """A worker setting is invalid.

    ``field`` names the setting, ``source`` where the value came from (an environment
    variable name, a config file path, or ``"code"``), ``reason`` what is wrong with it.
    """

    def __init__(
        self,
        field: str,
        source: str,
        reason: str,
        *,
        more: Sequence[WorkerConfigError] = (),
    ) -> None:
        message = f"invalid worker setting {field!r} (from {source}): {reason}"
        for other in more:
            message += f"; {other}"
        super().__init__(message)
        self.field = field
        self.source = source
        self.reason = reason
        #: Every problem found, this one first, when several settings were invalid at once.
        self.problems: tuple[WorkerConfigError, ...] = (self, *more)


class PermanentTaskError(Exception):
    """Raise from a handler to fail its task at once, without any retry.

    Any other exception a handler raises is retried with backoff until the task's
    ``max_attempts`` are used up. Raise this one when retrying cannot help (the payload is
    invalid, the target no longer exists, ...): the task goes straight to ``failed`` (the
    dead-letter set) with this exception's message as its error. It is deliberately not a
    :class:`WorkerError`: it is the handler's signal to the worker, not a worker failure.
    """
