"""The listener interface."""

from __future__ import annotations

import abc
from types import TracebackType


class TaskListener(abc.ABC):
    """Waits for a hint that tasks may be ready. Not thread-safe: one waiter at a time."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin listening now, so that no hint given from here on is missed.

        A failure is not raised: the listener tries again on the next :meth:`wait`, and
        callers poll anyway.
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Make the wait in progress, or the next one, return False at once.

        Safe from another thread and from a signal handler: it only sets a flag or writes a
        byte. It lets a waiter sleep for long stretches and still stop promptly.
        """

    @abc.abstractmethod
    def wait(self, timeout_seconds: float) -> bool:
        """Block up to ``timeout_seconds``; True if woken by a hint, False on timeout."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the listener's connection."""

    def __enter__(self) -> TaskListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
