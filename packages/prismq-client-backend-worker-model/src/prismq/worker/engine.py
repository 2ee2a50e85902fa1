"""``WorkerEngine``: claims tasks in batches and runs up to ``concurrency`` handlers at once.

The main loop waits for a free slot, claims up to that many tasks in one statement (only
types it has handlers for, from its queues, matching its capabilities), hands each to a
handler thread, and when nothing is claimable sleeps until a wake-up hint, the next delayed
task's due time or the poll interval, whichever comes first. A :class:`LeaseKeeper`
renews the leases of running tasks meanwhile. A graceful stop waits for running handlers
up to the shutdown grace, gives the rest back to the queue and marks the worker stopped.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections.abc import Sequence

from prismq.queue import (
    MAX_CLAIM_BATCH,
    DatabaseError,
    LeaseLostError,
    PrismQError,
    QueueDatabase,
    RetryPolicy,
    SchemaNotMigratedError,
    TaskNotFoundError,
    claim_tasks,
    mark_worker_stopped,
    refresh_stale_statistics,
    register_worker,
)
from prismq.queue.schema_check import check
from prismq.worker.completion_batcher import CompletionBatcher
from prismq.worker.config import WorkerConfig
from prismq.worker.context import TaskContext
from prismq.worker.errors import WorkerError
from prismq.worker.events import describe_error, log_claimed, log_event, logger
from prismq.worker.execution import TaskExecutor
from prismq.worker.handler_threads import HandlerThreads
from prismq.worker.idle_wait import IdleWait
from prismq.worker.lease_keeper import LeaseKeeper
from prismq.worker.outcomes import HandlerFailed, TaskOutcome
from prismq.worker.registry import TaskHandlerRegistry
from prismq.worker.running import WAIT_SLICE_SECONDS, RunningTask, RunningTasks
from prismq.worker.signals import stop_on_signals
from prismq.worker.stats import StatsCounter, WorkerStats

#: Recorded as the worker's queues when it serves every queue.
ALL_QUEUES_MARKER = "*"
_BACKOFF_FIRST_SECONDS = 0.1
_BACKOFF_MAX_SECONDS = 5.0


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class WorkerEngine:
    """One worker: claims tasks from ``db`` and runs them with the handlers of ``registry``.

    Call :meth:`run_loop` (until stopped) or :meth:`run_once` (one round). The worker
    registers itself on start; :meth:`stop` (or SIGTERM/SIGINT during :meth:`run_loop`)
    stops it gracefully. With ``owns_database`` the engine closes ``db`` when it stops.
    """

    def __init__(
        self,
        db: QueueDatabase,
        config: WorkerConfig,
        registry: TaskHandlerRegistry,
        *,
        retry_policy: RetryPolicy | None = None,
        owns_database: bool = False,
    ) -> None:
        self.db = db
        self.config = config
        self.registry = registry
        self.executor = TaskExecutor(db, worker_id=config.worker_id, retry_policy=retry_policy)
        self._owns_database = owns_database
        self._running = RunningTasks(config.concurrency)
        self._stats = StatsCounter()
        self._state = _State.NEW
        self._state_lock = threading.Lock()
        # Plain attributes, not Events: a signal handler sets them (see signals.py).
        self._stop_requested = False
        self._graceful = True
        self._loop_active = False
        self._wakeup = threading.Event()
        self._threads: HandlerThreads[RunningTask] | None = None
        self._completions: CompletionBatcher | None = None
        self._keeper: LeaseKeeper | None = None
        self._idle_wait: IdleWait | None = None

    @property
    def worker_id(self) -> str:
        """This worker's id."""
        return self.config.worker_id

    @property
    def running_task_ids(self) -> frozenset[int]:
        """Ids of the tasks whose handlers are running now."""
        return self._running.ids()

    @property
    def stats(self) -> WorkerStats:
        """Counters of what this worker did since it was created."""
        return self._stats.snapshot()

    @property
    def is_running(self) -> bool:
        """True between start and stop."""
        return self._state is _State.RUNNING

    # -- running -----------------------------------------------------------------------------

    def run_loop(
        self, max_iterations: int | None = None, *, install_signal_handlers: bool = True
    ) -> None:
        """Claim and run tasks until stopped (or for ``max_iterations`` claim rounds).

        In the main thread SIGTERM/SIGINT stop the loop gracefully (a second one exits at
        once). On return the worker has stopped: running handlers were given the shutdown
        grace, leftovers were released, the worker row was marked stopped.
        """
        signals = (
            stop_on_signals(self.request_stop_from_signal)
            if install_signal_handlers
            else contextlib.nullcontext()
        )
        # Active before the start, so that a stop() meanwhile leaves the shutdown to us.
        self._loop_active = True
        # The handlers stay installed through the shutdown: a second signal during the
        # grace period must still exit at once.
        with signals:
            try:
                if self._start():
                    self._loop(max_iterations)
            finally:
                self._loop_active = False
                self._shutdown()

    def run_once(self) -> int:
        """Claim up to the free slots once, run what was claimed, wait for it; returns the count.

        The worker stays started (registered, renewing leases) until :meth:`stop`.
        """
        if not self._start():
            return 0
        claimed = self._claim_and_dispatch()
        self._running.wait_until_empty(float("inf"), lambda: self._stop_requested)
        return claimed

    def stop(self, *, graceful: bool = True) -> None:
        """Stop claiming and shut down; ``graceful=False`` skips the grace and releases at once.

        While :meth:`run_loop` runs (in another thread) this only asks it to stop and
        returns; the loop then shuts down. Otherwise the shutdown happens here.
        """
        self._graceful = self._graceful and graceful
        self._stop_requested = True
        self._wakeup.set()
        self._running.wake_waiters()
        self._interrupt_idle_wait()
        if not self._loop_active:
            self._shutdown()

    def close(self) -> None:
        """Stop (gracefully) if running; the same as :meth:`stop`."""
        self.stop()

    def __enter__(self) -> WorkerEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- start and stop ----------------------------------------------------------------------

    def _start(self) -> bool:
        """Start if new; False when the worker was stopped (it never starts again)."""
        with self._state_lock:
            if self._state is _State.RUNNING:
                return True
            if self._state is _State.STOPPED or self._stop_requested:
                self._state = _State.STOPPED
                return False
            if not len(self.registry):
                raise WorkerError(
                    f"worker {self.worker_id!r} has no task handlers: register at least one"
                )
            check(self.db)
            self._refresh_statistics()
            self._register()
            self._idle_wait = IdleWait(self.db, self.config, self.registry)
            self._completions = CompletionBatcher(
                self.executor, self._running.free_slots, self._finished
            )
            self._threads = HandlerThreads(
                self.config.concurrency, self._execute, name=f"prismq-handler-{self.worker_id}"
            )
            self._keeper = LeaseKeeper(
                self.db,
                self.worker_id,
                self._running,
                lease_seconds=self.config.lease_seconds,
                heartbeat_interval=self.config.heartbeat_interval,
                reclaim_interval=self.config.reclaim_interval,
                register_worker_again=self._register,
            )
            self._keeper.start()
            self._state = _State.RUNNING
        log_event(
            logging.INFO,
            "started",
            worker_id=self.worker_id,
            queues=",".join(self.config.queues) if self.config.queues else ALL_QUEUES_MARKER,
            types=",".join(self.registry.get_registered_types()),
            strategy=self.config.scheduling_strategy.value,
            concurrency=self.config.concurrency,
            database=self.db.display_url,
        )
        return True

    def _refresh_statistics(self) -> None:
        """Let the claims be planned for the table as it is now (see the core's docs)."""
        try:
            refreshed = refresh_stale_statistics(self.db)
        except PrismQError as error:  # e.g. not the table's owner: claims still work
            log_event(logging.INFO, "statistics_not_refreshed", error=describe_error(error))
            return
        if refreshed:
            log_event(logging.INFO, "statistics_refreshed", table="task_queue")

    def _register(self) -> None:
        register_worker(
            self.db,
            self.worker_id,
            capabilities=dict(self.config.capabilities),
            queues=list(self.config.queues) if self.config.queues else [ALL_QUEUES_MARKER],
            strategy=self.config.scheduling_strategy,
            concurrency=self.config.concurrency,
        )

    def request_stop_from_signal(self) -> bool:
        """Ask for a graceful stop from a signal handler; False if one was under way.

        Sets flags only and takes no lock, so it is safe inside a signal handler (see
        signals.py); the loop notices within a fraction of a second.
        """
        if self._stop_requested:
            return False
        self._stop_requested = True
        self._interrupt_idle_wait()
        return True

    def _interrupt_idle_wait(self) -> None:
        # A flag or a byte on a pipe: safe in a signal handler.
        if (idle_wait := self._idle_wait) is not None:
            idle_wait.interrupt()

    def _shutdown(self) -> None:
        with self._state_lock:
            if self._state is not _State.RUNNING:
                self._state = _State.STOPPED
                return
            self._state = _State.STOPPED
        grace = self.config.shutdown_grace_seconds if self._graceful else 0.0
        log_event(logging.INFO, "stopping", running=len(self._running), grace_s=grace)
        self._running.wait_until_empty(grace, lambda: not self._graceful)
        if self._completions is not None:
            self._completions.close()  # commit the results already in
        if self._keeper is not None:
            self._keeper.stop()
        self._release_leftovers()
        self.executor.cancel_async_handlers()
        try:
            mark_worker_stopped(self.db, self.worker_id)
        except PrismQError as error:
            log_event(logging.WARNING, "mark_stopped_failed", error=describe_error(error))
        if self._idle_wait is not None:
            self._idle_wait.close()
        if self._threads is not None:
            self._threads.shutdown()
        self.executor.close()
        log_event(logging.INFO, "stopped", worker_id=self.worker_id, **self.stats.as_dict())
        if self._owns_database:
            self.db.close()

    def _release_leftovers(self) -> None:
        """Give every still-running task back to the queue (fenced; attempt not counted)."""
        for running in self._running.snapshot():
            running.given_back = True
            running.context.mark_lease_lost()
            try:
                status = self.executor.release(running.task)
            except (LeaseLostError, TaskNotFoundError):
                continue  # finished (or reclaimed) meanwhile: nothing left to give back
            except PrismQError as error:
                log_event(
                    logging.WARNING,
                    "release_failed",
                    task_id=running.task.id,
                    error=describe_error(error),
                    detail="the task returns to the queue when its lease expires",
                )
                continue
            self._stats.add("released")
            log_event(logging.INFO, "released", task_id=running.task.id, status=status.value)

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self, max_iterations: int | None) -> None:
        iterations = 0
        backoff = _BACKOFF_FIRST_SECONDS
        while not self._stop_requested:
            if max_iterations is not None and iterations >= max_iterations:
                return
            iterations += 1
            try:
                claimed = self._claim_and_dispatch()
            except SchemaNotMigratedError:
                raise
            except DatabaseError as error:
                log_event(
                    logging.WARNING,
                    "database_unavailable",
                    retry_in_s=backoff,
                    error=describe_error(error),
                )
                self._pause(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_SECONDS)
                continue
            backoff = _BACKOFF_FIRST_SECONDS
            last_round = max_iterations is not None and iterations >= max_iterations
            if claimed == 0 and not last_round:
                assert self._idle_wait is not None  # started
                self._idle_wait.wait(lambda: self._stop_requested)

    def _claim_and_dispatch(self) -> int:
        free = self._running.wait_for_free_slots(lambda: self._stop_requested)
        if free == 0:
            return 0
        tasks = claim_tasks(
            self.db,
            self.worker_id,
            n=min(free, MAX_CLAIM_BATCH),
            strategy=self.config.scheduling_strategy,
            queues=self.config.queues,
            task_types=self.registry.get_registered_types(),
            capabilities=self.config.capabilities,
            lease_seconds=self.config.lease_seconds,
        )
        assert self._threads is not None  # started
        db, worker_id = self.db, self.worker_id
        claimed = [RunningTask(task, TaskContext(db, task, worker_id)) for task in tasks]
        # Slots are taken before any handler starts, so none can free a slot not yet taken.
        self._running.add_many(claimed)
        self._stats.add("claimed", len(claimed))
        log_claimed(tasks)
        for running in claimed:
            self._threads.submit(running)
        return len(claimed)

    def _execute(self, running: RunningTask) -> None:
        """Run one task in a handler thread; a result goes to the batcher (its slot frees
        when a batch takes it), a failure is recorded here (its slot frees once recorded)."""
        task, ctx = running.task, running.context
        try:
            handled = self.executor.call_handler(task, self.registry, ctx)
            running.finishing = True
            if isinstance(handled, HandlerFailed):
                self._finished([(running, self.executor.record_failure(task, ctx, handled))])
            else:
                assert self._completions is not None  # started
                self._completions.submit(running, handled)
        except BaseException:  # noqa: BLE001 - a handler thread must never die silently
            # call_handler catches every handler error; reaching here is a bug (or SystemExit).
            logger.exception("event=executor_error task_id=%s", task.id)
            self._finished([(running, TaskOutcome.UNRECORDED)])

    def _finished(self, outcomes: Sequence[tuple[RunningTask, TaskOutcome]]) -> None:
        """These tasks' outcomes are recorded (or given up on): forget them, count them."""
        self._running.remove_many([running.task.id for running, _ in outcomes])
        self._stats.count_outcomes([outcome for _, outcome in outcomes])

    def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, ending early on a stop request."""
        deadline = time.monotonic() + seconds
        while not self._stop_requested:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.wait(min(remaining, WAIT_SLICE_SECONDS))
