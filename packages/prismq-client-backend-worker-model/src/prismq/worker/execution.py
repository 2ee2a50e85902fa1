"""Running one claimed task: call its handler, then record the outcome in one core call.

:class:`TaskExecutor` is the single place where a handler's return or exception becomes a
task status: the engine runs every task through it, and :meth:`WorkerDatabase.get_executor
<prismq.worker.database.WorkerDatabase.get_executor>` hands the same object to callers who
drive tasks themselves. Every lifecycle call is fenced by the task's lease token, so a
worker that lost its lease can only ever have its outcome discarded.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from prismq.queue import (
    ClaimedTask,
    Completion,
    CompletionReport,
    DatabaseUnavailableError,
    InvalidTaskError,
    LeaseLostError,
    PrismQError,
    QueueDatabase,
    RetryPolicy,
    TaskNotFoundError,
    TaskStatus,
    complete,
    complete_many,
    fail,
    release,
    renew_lease,
)
from prismq.queue.claim import DEFAULT_LEASE_SECONDS
from prismq.queue.validation import check_json_value
from prismq.worker.async_runner import AsyncLoopThread
from prismq.worker.context import TaskContext
from prismq.worker.errors import PermanentTaskError, TaskHandlerNotRegisteredError
from prismq.worker.events import describe_error, log_event, logger
from prismq.worker.outcomes import HandlerFailed, HandlerReturned, TaskOutcome
from prismq.worker.registry import HandlerInfo, TaskHandlerRegistry

T = TypeVar("T")

#: How long recording an outcome is retried while the database is unreachable. Meanwhile
#: the task stays leased to this worker; past this, the lease expires and the task is
#: reclaimed and run again (at-least-once), never lost.
RECORD_RETRY_SECONDS = 30.0
_RECORD_BACKOFF_FIRST = 0.1
_RECORD_BACKOFF_MAX = 5.0

#: Result types that are never awaitable (exact types: a subclass could define __await__).
_PLAIN_RESULTS = frozenset({type(None), dict, list, str, int, float, bool})

_OUTCOME_OF_FAIL = {
    TaskStatus.QUEUED: TaskOutcome.RETRYING,
    TaskStatus.FAILED: TaskOutcome.DEAD_LETTERED,
    TaskStatus.CANCELLED: TaskOutcome.CANCELLED,
}

#: A handler's result waiting to be recorded: the task, its context and what it returned.
PendingResult = tuple[ClaimedTask, TaskContext, HandlerReturned]


class TaskExecutor:
    """The task lifecycle bound to one database, and the logic that runs one handler.

    ``complete``, ``fail``, ``release`` and ``renew`` are the core calls for a claimed task;
    :meth:`run` calls the task's handler and records what happened. Async handlers run on
    one event loop in a background thread (the executor's own unless one is given).
    """

    def __init__(
        self,
        db: QueueDatabase,
        *,
        worker_id: str = "",
        retry_policy: RetryPolicy | None = None,
        async_runner: AsyncLoopThread | None = None,
        record_retry_seconds: float = RECORD_RETRY_SECONDS,
    ) -> None:
        self.db = db
        self.worker_id = worker_id
        self.retry_policy = retry_policy
        self._async_runner = async_runner or AsyncLoopThread()
        self._record_retry_seconds = record_retry_seconds

    # -- the lifecycle, one core call each -------------------------------------------------

    def complete(self, task: ClaimedTask, result: Any = None) -> TaskStatus:
        """Store ``result`` and finish the task (``CANCELLED`` if a cancel was requested)."""
        return complete(self.db, task.id, task.lease_token, result)

    def fail(self, task: ClaimedTask, error: str, *, retryable: bool = True) -> TaskStatus:
        """Record a failed attempt: ``QUEUED`` (retry), ``FAILED`` or ``CANCELLED``."""
        return fail(
            self.db,
            task.id,
            task.lease_token,
            error,
            retryable=retryable,
            retry_policy=self.retry_policy,
        )

    def release(self, task: ClaimedTask) -> TaskStatus:
        """Give the task back to the queue without counting the attempt."""
        return release(self.db, task.id, task.lease_token)

    def renew(self, task: ClaimedTask, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
        """Extend the task's lease; returns whether cancellation was requested."""
        return renew_lease(self.db, task.id, task.lease_token, lease_seconds)

    # -- running a handler -----------------------------------------------------------------

    def run(
        self,
        task: ClaimedTask,
        registry: TaskHandlerRegistry,
        *,
        context: TaskContext | None = None,
    ) -> TaskOutcome:
        """Run ``task``'s handler and record the outcome; never raises for the task's sake.

        Returned value → completed (a result that is not JSON fails the task without
        retry); :class:`PermanentTaskError` → failed without retry; any other exception →
        retried with backoff, or dead-lettered when the attempts are used up.
        """
        ctx = context or TaskContext(self.db, task, self.worker_id)
        handled = self.call_handler(task, registry, ctx)
        if isinstance(handled, HandlerFailed):
            return self.record_failure(task, ctx, handled)
        return self.record_result(task, ctx, handled)

    def call_handler(
        self, task: ClaimedTask, registry: TaskHandlerRegistry, ctx: TaskContext
    ) -> HandlerReturned | HandlerFailed:
        """Call the task's handler; what it returned (JSON-checked) or why the task failed."""
        try:
            info = registry.get_handler_info(task.type)
        except TaskHandlerNotRegisteredError as error:
            return HandlerFailed.plain(str(error), retryable=False)
        started = time.perf_counter()
        try:
            result = self._call(info, task, ctx)
        except Exception as error:  # noqa: BLE001 - any handler error is the task's outcome
            retryable = not isinstance(error, PermanentTaskError)
            return HandlerFailed.from_exception(error, retryable=retryable)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        # Checked here, not only by the core when storing it: one result that is not JSON
        # must fail its own task, not the whole batch it would be completed with.
        try:
            check_json_value("result", result)
        except InvalidTaskError as error:
            # Running the handler again would not make its result storable.
            reason = f"the handler's result is not JSON: {error.message}"
            return HandlerFailed.plain(reason, retryable=False)
        return HandlerReturned(result, elapsed_ms)

    def close(self) -> None:
        """Stop the event loop of async handlers, if one was started."""
        self._async_runner.close()

    def cancel_async_handlers(self) -> None:
        """Cancel the async handlers still running (their tasks were given back)."""
        self._async_runner.cancel_all()

    def _call(self, info: HandlerInfo, task: ClaimedTask, ctx: TaskContext) -> Any:
        args = (task.payload, ctx) if info.takes_context else (task.payload,)
        result = info.handler(*args)
        if type(result) in _PLAIN_RESULTS:
            return result  # most handlers' results: skip the awaitable check's ABC lookup
        # A sync callable may still hand back an awaitable (a wrapped coroutine function).
        if info.is_async or inspect.isawaitable(result):
            return self._async_runner.run(result)
        return result

    # -- recording outcomes ----------------------------------------------------------------

    def record_result(
        self, task: ClaimedTask, ctx: TaskContext, returned: HandlerReturned
    ) -> TaskOutcome:
        """Complete one task with what its handler returned."""
        status = self._record_one(task, ctx, lambda: self.complete(task, returned.result))
        if isinstance(status, TaskOutcome):
            return status
        return _completed(task, status, returned)

    def record_results(self, pending: Sequence[PendingResult]) -> list[TaskOutcome]:
        """Complete many tasks in one transaction (one commit); outcomes in the same order.

        Each task is fenced by its own lease: a lost one is discarded, the others complete.
        """
        if len(pending) == 1:
            return [self.record_result(*pending[0])]
        completions = [
            Completion(task_id=task.id, lease_token=task.lease_token, result=returned.result)
            for task, _, returned in pending
        ]
        ids = ",".join(str(task.id) for task, _, _ in pending)
        try:
            report: CompletionReport = self._while_reachable(
                lambda: complete_many(self.db, completions), ids, None
            )
        except _NotRecordedError:
            return [TaskOutcome.UNRECORDED] * len(pending)
        outcomes = []
        for task, ctx, returned in pending:
            status = report.finished.get(task.id)
            if status is None:
                outcomes.append(_lease_lost(task, ctx, "the lease token is no longer valid"))
            else:
                outcomes.append(_completed(task, status, returned))
        return outcomes

    def record_failure(
        self, task: ClaimedTask, ctx: TaskContext, failed: HandlerFailed
    ) -> TaskOutcome:
        """Fail one task: retried with backoff, dead-lettered, or cancelled if requested."""
        log_event(
            logging.WARNING,
            "failed",
            task_id=task.id,
            type=task.type,
            attempt=task.attempt,
            retryable=failed.retryable,
            error=failed.summary,
        )
        status = self._record_one(
            task, ctx, lambda: self.fail(task, failed.message, retryable=failed.retryable)
        )
        if isinstance(status, TaskOutcome):
            return status
        outcome = _OUTCOME_OF_FAIL.get(status, TaskOutcome.DEAD_LETTERED)
        if outcome is TaskOutcome.RETRYING:
            policy = self.retry_policy or RetryPolicy()
            nominal = dataclasses.replace(policy, jitter=0.0).delay_seconds(task.attempt)
            log_event(logging.INFO, "retry", task_id=task.id, attempt=task.attempt, delay_s=nominal)
        elif outcome is TaskOutcome.CANCELLED:
            log_event(logging.INFO, "cancelled", task_id=task.id)
        else:
            log_event(
                logging.WARNING,
                "dead_letter",
                task_id=task.id,
                type=task.type,
                attempts=task.attempt,
                error=failed.summary,
            )
        return outcome

    def _record_one(
        self, task: ClaimedTask, ctx: TaskContext, call: Callable[[], TaskStatus]
    ) -> TaskStatus | TaskOutcome:
        """One fenced call for one task: the task's new status, or, when it could not be
        written, the outcome (``LEASE_LOST``, ``UNRECORDED``)."""
        try:
            return self._while_reachable(call, str(task.id), ctx)
        except (LeaseLostError, TaskNotFoundError) as error:
            return _lease_lost(task, ctx, describe_error(error))
        except _NotRecordedError:
            return TaskOutcome.UNRECORDED

    def _while_reachable(self, call: Callable[[], T], task_ids: str, ctx: TaskContext | None) -> T:
        """Run one lifecycle call, retrying it while the database is unreachable.

        Gives up (:class:`_NotRecordedError`) after the retry window, when the lease is
        known lost, or on any other database error; the task then returns to the queue
        when its lease expires. Lease and input errors are the caller's to handle.
        """
        deadline = time.monotonic() + self._record_retry_seconds
        delay = _RECORD_BACKOFF_FIRST
        while True:
            try:
                return call()
            except (LeaseLostError, TaskNotFoundError, InvalidTaskError):
                raise
            except DatabaseUnavailableError as error:
                lost = ctx is not None and ctx.lease_lost
                if lost or time.monotonic() + delay > deadline:
                    _log_unrecorded(task_ids, error)
                    raise _NotRecordedError from None
                log_event(
                    logging.WARNING,
                    "database_unavailable",
                    task_id=task_ids,
                    retry_in_s=delay,
                    error=describe_error(error),
                )
                time.sleep(delay)
                delay = min(delay * 2, _RECORD_BACKOFF_MAX)
            except PrismQError as error:
                _log_unrecorded(task_ids, error)
                raise _NotRecordedError from None


def _completed(task: ClaimedTask, status: TaskStatus, returned: HandlerReturned) -> TaskOutcome:
    if status is TaskStatus.CANCELLED:
        log_event(logging.INFO, "cancelled", task_id=task.id, ms=returned.elapsed_ms)
        return TaskOutcome.CANCELLED
    if logger.isEnabledFor(logging.INFO):  # skips building the event's fields per task
        log_event(logging.INFO, "done", task_id=task.id, ms=returned.elapsed_ms)
    return TaskOutcome.COMPLETED


def _lease_lost(task: ClaimedTask, ctx: TaskContext, reason: str) -> TaskOutcome:
    """The task is someone else's now: this worker's outcome is discarded."""
    ctx.mark_lease_lost()
    log_event(
        logging.WARNING,
        "lease_lost",
        task_id=task.id,
        attempt=task.attempt,
        detail="result discarded",
        reason=reason,
    )
    return TaskOutcome.LEASE_LOST


def _log_unrecorded(task_ids: str, error: PrismQError) -> None:
    log_event(
        logging.ERROR,
        "unrecorded",
        task_id=task_ids,
        error=describe_error(error),
        detail="the task returns to the queue when its lease expires",
    )


class _NotRecordedError(Exception):
    """The outcome could not be written; the task's lease expiry will return it."""
