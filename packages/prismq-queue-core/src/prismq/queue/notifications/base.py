"""The listener interface."""

from __future__ import annotations

import abc
from types import TracebackType


class TaskListener(abc.ABC):
    """Waits for a hint that tasks may be ready. Not thread-safe: one waiter at a time."""

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
