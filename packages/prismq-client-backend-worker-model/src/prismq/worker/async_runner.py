"""One event loop in a background thread, shared by every ``async def`` handler of a worker.

Sync handlers run in the worker's threads; a coroutine handler is handed to this loop with
:func:`asyncio.run_coroutine_threadsafe`, so all async handlers share one loop (and may
share loop-bound clients) instead of each thread spinning up its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

#: How long :meth:`AsyncLoopThread.close` waits for the loop thread to end.
CLOSE_TIMEOUT_SECONDS = 5.0


async def _await(awaitable: Awaitable[T]) -> T:
    # run_coroutine_threadsafe takes coroutines only; this accepts any awaitable.
    return await awaitable


class AsyncLoopThread:
    """An event loop started on first use in a daemon thread. Thread-safe."""

    def __init__(self, name: str = "prismq-async-handlers") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop and block the calling thread until it is done."""
        future = asyncio.run_coroutine_threadsafe(_await(awaitable), self._started_loop())
        return future.result()

    def cancel_all(self) -> None:
        """Cancel every coroutine still running on the loop (at shutdown, after the grace)."""
        with self._lock:
            loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_cancel_tasks, loop)

    def close(self) -> None:
        """Cancel what still runs, stop the loop and end its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread = None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(_cancel_tasks, loop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_TIMEOUT_SECONDS)
        if not thread.is_alive():
            loop.close()

    def _started_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_run_forever, args=(loop,), name=self._name, daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()
