"""TaskContext: what a handler reads about its task, and progress and logs it writes back."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from prismq.queue import (
    ClaimedTask,
    InvalidPayloadError,
    QueueDatabase,
    claim_tasks,
    enqueue,
    get_task,
    get_task_logs,
    release,
    request_cancel,
)
from prismq.worker import TaskContext


def _claimed(db: QueueDatabase, **task: Any) -> ClaimedTask:
    enqueue(db, "resize", {"w": 1}, **task)
    [claimed] = claim_tasks(db, "ctx-worker", n=1)
    return claimed


def test_describes_its_task(db: QueueDatabase) -> None:
    task = _claimed(db, queue="images", max_attempts=2)
    ctx = TaskContext(db, task, "ctx-worker")
    assert ctx.task_id == task.id
    assert ctx.task_type == "resize"
    assert ctx.queue == "images"
    assert ctx.attempt == 1
    assert ctx.max_attempts == 2
    assert not ctx.is_last_attempt
    assert ctx.worker_id == "ctx-worker"
    assert not ctx.cancelled
    assert not ctx.lease_lost
    assert f"task_id={task.id}" in repr(ctx)


def test_progress_is_stored_with_the_task(db: QueueDatabase) -> None:
    task = _claimed(db)
    ctx = TaskContext(db, task, "ctx-worker")
    assert ctx.progress({"percent": 40}) is True
    assert get_task(db, task.id).progress == {"percent": 40}
    assert not ctx.cancelled


def test_progress_reports_a_cancel_request(db: QueueDatabase) -> None:
    task = _claimed(db)
    ctx = TaskContext(db, task, "ctx-worker")
    request_cancel(db, task.id)
    assert ctx.progress(1) is True
    assert ctx.cancelled


def test_progress_after_the_lease_was_lost_stores_nothing(db: QueueDatabase) -> None:
    task = _claimed(db)
    ctx = TaskContext(db, task, "ctx-worker")
    release(db, task.id, task.lease_token)
    assert ctx.progress({"percent": 99}) is False
    assert ctx.lease_lost
    assert ctx.cancelled  # so a cooperative handler stops: its work would be discarded
    assert get_task(db, task.id).progress is None


def test_progress_must_be_json(db: QueueDatabase) -> None:
    ctx = TaskContext(db, _claimed(db), "ctx-worker")
    with pytest.raises(InvalidPayloadError, match="progress"):
        ctx.progress({"at": object()})


def test_log_lines_are_kept_with_the_task(db: QueueDatabase) -> None:
    task = _claimed(db)
    ctx = TaskContext(db, task, "ctx-worker")
    ctx.log("starting")
    ctx.log("disk nearly full", level="warning", details={"free_mb": 12})
    logs = get_task_logs(db, task.id)
    assert [(line.level, line.message) for line in logs] == [
        ("info", "starting"),
        ("warning", "disk nearly full"),
    ]
    assert logs[1].details == {"free_mb": 12}


def test_wait_cancelled_wakes_when_the_worker_marks_it(db: QueueDatabase) -> None:
    ctx = TaskContext(db, _claimed(db), "ctx-worker")
    assert ctx.wait_cancelled(0) is False
    marker = threading.Thread(target=ctx.mark_cancelled)
    marker.start()
    assert ctx.wait_cancelled(30) is True
    marker.join()
    assert ctx.cancelled
    assert not ctx.lease_lost


def test_the_last_attempt_is_known(db: QueueDatabase) -> None:
    ctx = TaskContext(db, _claimed(db, max_attempts=1), "ctx-worker")
    assert ctx.is_last_attempt
