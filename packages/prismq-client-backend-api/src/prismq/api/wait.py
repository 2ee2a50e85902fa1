"""Long-polling for a task to finish, without holding a thread or a connection meanwhile.

A waiting request is a coroutine, not a thread: it awaits an :class:`asyncio.Event`. The
database is read by short calls in the thread pool. Requests waiting for the same task
share one *watch*: a single asyncio task that re-reads the task, pausing between reads with
a backoff (by default 50 ms doubling up to 1 s), and wakes all of them when the task is
finished. So a thousand clients waiting for one task cost one read per pause, and a client
waiting for a task that finishes at once gets its answer within about 50 ms.

Why polling and not PostgreSQL ``LISTEN``: the queue notifies when tasks become *ready*
(to wake workers), not when they finish, so a finished task has to be read anyway; the
backoff bounds the cost of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from prismq.queue import QueueDatabase, TaskRecord, get_task

__all__ = ["TaskWaiters", "wait_while_connected"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class _Watch:
    """One task being re-read on behalf of every request waiting for it."""

    latest: TaskRecord
    finished: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    failed: bool = False
    waiters: int = 0
    poller: asyncio.Task[None] | None = None


class TaskWaiters:
    """The requests of one application that are waiting for tasks to finish."""

    def __init__(
        self, database: QueueDatabase, *, first_pause_seconds: float, max_pause_seconds: float
    ) -> None:
        self._database = database
        self._first_pause = first_pause_seconds
        self._max_pause = max_pause_seconds
        self._watches: dict[int, _Watch] = {}
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests waiting right now."""
        return self._waiting

    async def wait(self, task_id: int, timeout_seconds: float) -> TaskRecord:
        """The task once it is finished, or as it is after ``timeout_seconds``.

        Raises :class:`~prismq.queue.TaskNotFoundError` at once for an unknown task.
        """
        task = await run_in_threadpool(get_task, self._database, task_id)
        if task.status.is_terminal:
            return task
        watch = self._watch(task_id, task)
        watch.waiters += 1
        self._waiting += 1
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(watch.finished.wait(), timeout_seconds)
        finally:
            watch.waiters -= 1
            self._waiting -= 1
            if watch.waiters == 0:
                self._forget(task_id, watch)
        if watch.failed:
            # Read again here, so that this request answers the error (e.g. a 503) itself.
            return await run_in_threadpool(get_task, self._database, task_id)
        return watch.latest

    async def close(self) -> None:
        """Stop every watch (at shutdown); their waiters time out as usual."""
        pollers = [w.poller for w in self._watches.values() if w.poller is not None]
        for poller in pollers:
            poller.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        self._watches.clear()

    def _watch(self, task_id: int, task: TaskRecord) -> _Watch:
        watch = self._watches.get(task_id)
        if watch is None:
            watch = _Watch(latest=task)
            watch.poller = asyncio.create_task(
                self._poll(task_id, watch), name=f"prismq-wait-{task_id}"
            )
            self._watches[task_id] = watch
        return watch

    def _forget(self, task_id: int, watch: _Watch) -> None:
        if self._watches.get(task_id) is watch:
            del self._watches[task_id]
        if watch.poller is not None and not watch.poller.done():
            watch.poller.cancel()

    async def _poll(self, task_id: int, watch: _Watch) -> None:
        pause = self._first_pause
        try:
            while not watch.latest.status.is_terminal:
                await asyncio.sleep(pause)
                pause = min(pause * 2, self._max_pause)
                watch.latest = await run_in_threadpool(get_task, self._database, task_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Every waiter reads the task once more and answers whatever that gives.
            logger.warning("re-reading task %d for its waiters failed", task_id, exc_info=True)
            watch.failed = True
        finally:
            # A finished (or failed) watch takes no new waiters: they start a fresh one.
            if self._watches.get(task_id) is watch:
                del self._watches[task_id]
        watch.finished.set()


async def wait_while_connected(
    request: Request, waiters: TaskWaiters, task_id: int, timeout_seconds: float
) -> TaskRecord | None:
    """:meth:`TaskWaiters.wait`, given up (``None``) as soon as the client disconnects.

    Without this, a client that went away would keep its task watched until the timeout.
    """
    waiting = asyncio.ensure_future(waiters.wait(task_id, timeout_seconds))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not waiting.done():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
    if waiting.cancelled():
        return None
    return waiting.result()


async def _disconnected(request: Request) -> None:
    """Return once the client has disconnected (a GET has no body left to read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
