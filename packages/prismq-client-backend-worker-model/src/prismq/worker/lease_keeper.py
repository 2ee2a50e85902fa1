"""The worker's background keeper: lease renewal, heartbeat, cancel requests, reclaim.

Every ``heartbeat_interval_seconds`` it renews the leases of all running tasks in one
statement, heartbeats the worker row, tells handlers about cancel requests and lost leases,
and every ``reclaim_interval_seconds`` returns the expired leases of any worker to the
queue (safe from every worker at once: the reclaim is idempotent). A database error is
logged and tried again at the next tick; it never stops the keeper or the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prismq.queue import PrismQError, QueueDatabase, heartbeat, reclaim_expired_leases, renew_leases
from prismq.worker.events import describe_error, log_event, logger
from prismq.worker.running import RunningTasks

#: How long :meth:`LeaseKeeper.stop` waits for a tick in progress to end.
STOP_TIMEOUT_SECONDS = 30.0


class LeaseKeeper:
    """A daemon thread ticking every ``heartbeat_interval`` seconds until stopped."""

    def __init__(
        self,
        db: QueueDatabase,
        worker_id: str,
        running: RunningTasks,
        *,
        lease_seconds: float,
        heartbeat_interval: float,
        reclaim_interval: float,
        register_worker_again: Callable[[], None],
    ) -> None:
        self._db = db
        self._worker_id = worker_id
        self._running = running
        self._lease_seconds = lease_seconds
        self._heartbeat_interval = heartbeat_interval
        self._reclaim_interval = reclaim_interval
        self._register_worker_again = register_worker_again
        self._stopped = threading.Event()
        self._next_reclaim = 0.0  # the first tick reclaims: a restarted fleet recovers at once
        self._thread = threading.Thread(target=self._run, name="prismq-lease-keeper", daemon=True)

    def start(self) -> None:
        """Start ticking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking; waits for a tick in progress to end."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STOP_TIMEOUT_SECONDS)

    def _run(self) -> None:
        while not self._stopped.wait(self._heartbeat_interval):
            self.tick()

    def tick(self) -> None:
        """One round: renew, heartbeat, and reclaim when due. Each step fails on its own."""
        self._guarded("renew", self._renew_leases)
        self._guarded("heartbeat", self._heartbeat)
        if time.monotonic() >= self._next_reclaim:
            self._next_reclaim = time.monotonic() + self._reclaim_interval
            self._guarded("reclaim", self._reclaim)

    def _guarded(self, step: str, action: Callable[[], None]) -> None:
        try:
            action()
        except PrismQError as error:
            log_event(logging.WARNING, "keeper_error", step=step, error=describe_error(error))
        except Exception:  # noqa: BLE001 - the keeper must outlive any one failed step
            # A bug rather than a database problem: keep the traceback, keep the worker.
            logger.exception("event=keeper_error step=%s", step)

    def _renew_leases(self) -> None:
        leases = self._running.leases_to_renew()
        if not leases:
            return
        renewal = renew_leases(self._db, leases, self._lease_seconds)
        for task_id in renewal.cancel_requested:
            running = self._running.get(task_id)
            if running is not None and not running.context.cancelled:
                running.context.mark_cancelled()
                log_event(logging.INFO, "cancel_requested", task_id=task_id)
        for task_id in renewal.lost:
            running = self._running.get(task_id)
            # A task whose handler just returned may be finished already: that is no loss,
            # and the executor reports a real one when it records the outcome.
            if running is None or running.finishing or running.given_back:
                continue
            running.context.mark_lease_lost()
            log_event(
                logging.WARNING,
                "lease_lost",
                task_id=task_id,
                detail="lease expired before it could be renewed; the result will be discarded",
            )

    def _heartbeat(self) -> None:
        if not heartbeat(self._db, self._worker_id):
            # The row was purged or marked stopped while this worker still runs.
            log_event(logging.WARNING, "worker_registered_again", worker_id=self._worker_id)
            self._register_worker_again()

    def _reclaim(self) -> None:
        result = reclaim_expired_leases(self._db)
        if result.total:
            log_event(
                logging.INFO,
                "reclaimed",
                requeued=len(result.requeued),
                failed=len(result.failed),
                cancelled=len(result.cancelled),
            )
