"""Committing handlers' results in batches: one transaction for every result that is ready.

A handler thread hands its task's result here and is free for the next task at once; one
thread takes every result waiting and completes them all with one
:func:`~prismq.queue.complete_many` (one commit), so a busy worker pays one commit per
batch, not per task, while a lone task is still completed straight away. Nothing is
reported done before the commit, and the task's lease is held (and renewed) until then.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

from prismq.worker.execution import PendingResult, TaskExecutor
from prismq.worker.outcomes import HandlerReturned, TaskOutcome
from prismq.worker.running import RunningTask

#: Most results committed in one transaction.
MAX_BATCH = 500
#: How long :meth:`CompletionBatcher.close` waits for the last batch to be committed.
CLOSE_TIMEOUT_SECONDS = 60.0

_Item = tuple[RunningTask, HandlerReturned]


class CompletionBatcher:
    """One daemon thread completing results in batches.

    ``on_taken`` is called with a batch's tasks just before it is committed (their handlers
    are done: the engine frees their slots, so the next claim overlaps the commit), and
    ``on_recorded`` with their outcomes just after.
    """

    def __init__(
        self,
        executor: TaskExecutor,
        on_taken: Callable[[Sequence[RunningTask]], None],
        on_recorded: Callable[[Sequence[tuple[RunningTask, TaskOutcome]]], None],
        *,
        name: str = "prismq-completions",
    ) -> None:
        self._executor = executor
        self._on_recorded = on_recorded
        self._on_taken = on_taken
        self._items: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, running: RunningTask, returned: HandlerReturned) -> None:
        """Queue a result for the next batch (recorded at once, alone, after close)."""
        with self._lock:
            if not self._closed:
                self._items.put((running, returned))
                return
        # A handler that outlived the shutdown: record (and so discard) its result here.
        task, ctx = running.task, running.context
        self._on_recorded([(running, self._executor.record_result(task, ctx, returned))])

    def close(self) -> None:
        """Commit what is queued, then end the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._items.put(None)
        self._thread.join(CLOSE_TIMEOUT_SECONDS)

    def _serve(self) -> None:
        while True:
            first = self._items.get()
            if first is None:
                return
            batch = [first]
            closing = False
            while len(batch) < MAX_BATCH:
                try:
                    item = self._items.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                batch.append(item)
            self._record(batch)
            if closing:
                return

    def _record(self, batch: list[_Item]) -> None:
        self._on_taken([running for running, _ in batch])
        pending: list[PendingResult] = [
            (running.task, running.context, returned) for running, returned in batch
        ]
        outcomes = self._executor.record_results(pending)
        self._on_recorded(
            [(running, outcome) for (running, _), outcome in zip(batch, outcomes, strict=True)]
        )
