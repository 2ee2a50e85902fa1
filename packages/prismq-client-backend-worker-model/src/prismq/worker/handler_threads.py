"""A fixed set of daemon threads that run handlers, one task at a time each.

Not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are joined when the
interpreter exits, so one handler stuck past the shutdown grace would keep a stopped
worker's process alive. These are daemon threads, started once (no thread per task), fed
through a queue; at shutdown the idle ones end and a stuck one is abandoned to the exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class HandlerThreads(Generic[T]):
    """``count`` daemon threads calling ``work(item)`` for each submitted item."""

    def __init__(self, count: int, work: Callable[[T], None], *, name: str) -> None:
        self._work = work
        self._items: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{index}", daemon=True)
            for index in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, item: T) -> None:
        """Hand ``item`` to the next free thread."""
        self._items.put(item)

    def shutdown(self) -> None:
        """Let every thread end once it is idle; does not wait for busy ones."""
        for _ in self._threads:
            self._items.put(None)

    def _serve(self) -> None:
        while True:
            item = self._items.get()
            if item is None:
                return
            self._work(item)
