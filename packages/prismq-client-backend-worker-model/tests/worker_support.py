"""Helpers for the in-process worker tests: fast configs, a loop in a thread, polling."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from prismq.queue import QueueDatabase, RetryPolicy, TaskRecord, TaskStatus, get_task
from prismq.worker import TaskHandlerRegistry, WorkerConfig, WorkerEngine

#: Generous: the machine is small and shared; a passing test never waits this long.
DEADLINE_SECONDS = 30.0
FAST_RETRY = RetryPolicy(base_seconds=0.01, factor=1.0, max_seconds=0.01, jitter=0.0)


def poll_until(
    condition: Callable[[], Any], *, timeout: float = DEADLINE_SECONDS, what: str = "condition"
) -> Any:
    """Call ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def wait_for_status(
    db: QueueDatabase, task_id: int, *statuses: TaskStatus, timeout: float = DEADLINE_SECONDS
) -> TaskRecord:
    """Poll until the task is in one of ``statuses``; returns it."""
    found: list[TaskRecord] = []

    def reached() -> bool:
        found[:] = [get_task(db, task_id)]
        return found[0].status in statuses

    poll_until(reached, timeout=timeout, what=f"task {task_id} to become {statuses}")
    return found[0]


def fast_config(**settings: Any) -> WorkerConfig:
    """A config for tests: a unique id, short waits, two slots unless told otherwise."""
    defaults: dict[str, Any] = {
        "worker_id": f"test-{uuid.uuid4().hex[:8]}",
        "poll_interval_seconds": 0.05,
        "lease_seconds": 10.0,
        "concurrency": 2,
        "shutdown_grace_seconds": 10.0,
    }
    return WorkerConfig(**(defaults | settings))


def make_engine(
    db: QueueDatabase,
    registry: TaskHandlerRegistry,
    *,
    retry_policy: RetryPolicy | None = FAST_RETRY,
    **settings: Any,
) -> WorkerEngine:
    """An engine on ``db`` with :func:`fast_config` settings."""
    return WorkerEngine(db, fast_config(**settings), registry, retry_policy=retry_policy)


@contextlib.contextmanager
def running_loop(engine: WorkerEngine, **kwargs: Any) -> Iterator[threading.Thread]:
    """Run ``engine.run_loop`` in a thread for the block; stop and join it afterwards.

    An exception raised by the loop is re-raised here.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            engine.run_loop(install_signal_handlers=False, **kwargs)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target, name="test-run-loop", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        engine.stop()
        thread.join(DEADLINE_SECONDS)
    assert not thread.is_alive(), "run_loop did not return after stop()"
    if errors:
        raise errors[0]
