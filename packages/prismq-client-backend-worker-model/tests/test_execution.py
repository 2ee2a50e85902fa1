"""Recording outcomes: batched completions, lost leases in a batch, database outages."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from prismq.queue import (
    ClaimedTask,
    DatabaseUnavailableError,
    QueueDatabase,
    TaskStatus,
    claim_tasks,
    enqueue,
    get_task,
    release,
    request_cancel,
)
from prismq.worker import TaskContext, TaskExecutor, TaskOutcome
from prismq.worker import execution as execution_module
from prismq.worker.completion_batcher import CompletionBatcher
from prismq.worker.outcomes import HandlerReturned
from prismq.worker.running import RunningTask


def _claim(db: QueueDatabase, count: int) -> list[ClaimedTask]:
    for index in range(count):
        enqueue(db, "job", {"index": index})
    return sorted(claim_tasks(db, "recorder", n=count), key=lambda task: task.id)


def test_record_results_completes_a_batch_and_discards_lost_leases(db: QueueDatabase) -> None:
    kept, lost, cancelled = _claim(db, 3)
    release(db, lost.id, lost.lease_token)
    request_cancel(db, cancelled.id)
    executor = TaskExecutor(db, worker_id="recorder")
    contexts = [TaskContext(db, task, "recorder") for task in (kept, lost, cancelled)]
    outcomes = executor.record_results(
        [
            (task, ctx, HandlerReturned({"n": task.id}, 1.0))
            for task, ctx in zip((kept, lost, cancelled), contexts, strict=True)
        ]
    )
    assert outcomes == [TaskOutcome.COMPLETED, TaskOutcome.LEASE_LOST, TaskOutcome.CANCELLED]
    assert get_task(db, kept.id).result == {"n": kept.id}
    assert get_task(db, lost.id).status is TaskStatus.QUEUED
    assert get_task(db, cancelled.id).status is TaskStatus.CANCELLED
    assert contexts[1].lease_lost
    assert not contexts[0].lease_lost


def test_recording_retries_while_the_database_is_unreachable(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    [task] = _claim(db, 1)
    outages = 2
    real_complete = execution_module.complete

    def flaky_complete(*args: Any) -> Any:
        nonlocal outages
        if outages:
            outages -= 1
            raise DatabaseUnavailableError("connection refused")
        return real_complete(*args)

    monkeypatch.setattr(execution_module, "complete", flaky_complete)
    executor = TaskExecutor(db)
    ctx = TaskContext(db, task, "recorder")
    assert executor.record_result(task, ctx, HandlerReturned("ok", 1.0)) is TaskOutcome.COMPLETED
    assert outages == 0
    assert get_task(db, task.id).result == "ok"


def test_recording_gives_up_after_the_retry_window(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    [task] = _claim(db, 1)

    def down(*args: Any) -> Any:
        raise DatabaseUnavailableError("connection refused")

    monkeypatch.setattr(execution_module, "complete", down)
    executor = TaskExecutor(db, record_retry_seconds=0.0)
    ctx = TaskContext(db, task, "recorder")
    assert executor.record_result(task, ctx, HandlerReturned("x", 1.0)) is TaskOutcome.UNRECORDED
    # Still leased: its lease expiry returns it to the queue, so nothing is lost.
    assert get_task(db, task.id).status is TaskStatus.LEASED


class _GatedExecutor:
    """Stands in for TaskExecutor: records the batches; the first waits for a gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.first_started = threading.Event()

    def record_results(self, pending: Sequence[Any]) -> list[TaskOutcome]:
        if not self.batches:
            self.first_started.set()
            assert self.gate.wait(30)
        self.batches.append([task.id for task, _, _ in pending])
        return [TaskOutcome.COMPLETED] * len(pending)


def _running(task_id: int) -> RunningTask:
    task = ClaimedTask(
        id=task_id,
        type="job",
        queue="default",
        priority=100,
        payload={},
        compatibility={},
        attempt=1,
        max_attempts=5,
        lease_token="token",
        lease_until_utc=None,  # type: ignore[arg-type]
        created_at_utc=None,  # type: ignore[arg-type]
    )
    return RunningTask(task, TaskContext(None, task, "batcher"))  # type: ignore[arg-type]


def test_results_waiting_together_are_committed_in_one_batch() -> None:
    executor = _GatedExecutor()
    recorded: list[tuple[int, TaskOutcome]] = []
    taken: list[list[int]] = []
    batcher = CompletionBatcher(
        executor,  # type: ignore[arg-type]
        lambda batch: taken.append([running.task.id for running in batch]),
        lambda outcomes: recorded.extend((r.task.id, o) for r, o in outcomes),
    )
    batcher.submit(_running(1), HandlerReturned(None, 0.0))
    assert executor.first_started.wait(30)
    for task_id in (2, 3, 4):
        batcher.submit(_running(task_id), HandlerReturned(None, 0.0))
    executor.gate.set()
    batcher.close()
    assert executor.batches == [[1], [2, 3, 4]]
    assert taken == executor.batches  # each batch is handed over before its commit
    assert recorded == [(i, TaskOutcome.COMPLETED) for i in (1, 2, 3, 4)]
