"""Conformance: get_task, list_tasks (filters, keyset pagination), task logs, workers.

Runs unchanged on SQLite and PostgreSQL (``PRISMQ_TEST_BACKEND``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

import pytest
from conformance_support import count_logs, db_now, is_utc
from sqlalchemy import update

from prismq.queue import (
    InvalidPayloadError,
    InvalidTaskError,
    NewTask,
    QueueDatabase,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
    UnknownStrategyError,
    claim_tasks,
    complete,
    enqueue,
    enqueue_many,
    get_task,
    get_task_logs,
    heartbeat,
    list_stale_workers,
    list_tasks,
    list_workers,
    log,
    mark_worker_stopped,
    register_worker,
    request_cancel,
)
from prismq.queue.models import worker_table

UNKNOWN_ID = 987_654_321


# --------------------------------------------------------------------------- get_task


def test_get_task_unknown_id(db: QueueDatabase) -> None:
    with pytest.raises(TaskNotFoundError) as info:
        get_task(db, UNKNOWN_ID)
    assert info.value.task_id == UNKNOWN_ID
    assert str(UNKNOWN_ID) in str(info.value)
    assert isinstance(info.value, LookupError)


def test_task_records_never_show_the_lease_token(db: QueueDatabase) -> None:
    enqueue(db, "t")
    [claimed] = claim_tasks(db, "w")
    record = get_task(db, claimed.id)
    assert "lease_token" not in TaskRecord.__dataclass_fields__
    assert claimed.lease_token not in repr(record)
    assert claimed.lease_token not in repr(list_tasks(db))


# --------------------------------------------------------------------------- list_tasks


def _ids(page_items: list[TaskRecord]) -> list[int]:
    return [t.id for t in page_items]


def test_list_tasks_newest_first(db: QueueDatabase) -> None:
    ids = enqueue_many(db, [NewTask(type="t", payload={"i": i}) for i in range(6)])
    page = list_tasks(db)
    assert _ids(page.items) == sorted(ids, reverse=True)
    assert page.next_cursor is None
    assert page.items[0] == get_task(db, ids[-1])


def test_list_tasks_of_an_empty_queue(db: QueueDatabase) -> None:
    page = list_tasks(db)
    assert (page.items, page.next_cursor) == ([], None)


def test_list_tasks_filters(db: QueueDatabase) -> None:
    a_email = enqueue(db, "email", queue="a").task_id
    a_sms = enqueue(db, "sms", queue="a").task_id
    b_email = enqueue(db, "email", queue="b").task_id
    b_sms_cancelled = enqueue(db, "sms", queue="b").task_id
    request_cancel(db, b_sms_cancelled)
    enqueue(db, "push", queue="c")
    [claimed] = claim_tasks(db, "w", 1, queues=["c"])
    complete(db, claimed.id, claimed.lease_token)
    pushed = claimed.id

    assert _ids(list_tasks(db, task_type="email").items) == [b_email, a_email]
    assert _ids(list_tasks(db, queue="a").items) == [a_sms, a_email]
    assert _ids(list_tasks(db, status=TaskStatus.QUEUED).items) == [b_email, a_sms, a_email]
    assert _ids(list_tasks(db, status="cancelled").items) == [b_sms_cancelled]
    assert _ids(list_tasks(db, status="completed").items) == [pushed]
    assert _ids(list_tasks(db, status="leased").items) == []
    assert _ids(list_tasks(db, status="queued", task_type="sms").items) == [a_sms]
    assert _ids(list_tasks(db, status="queued", task_type="sms", queue="b").items) == []
    assert _ids(list_tasks(db, queue="nowhere").items) == []
    for record in list_tasks(db, status="queued").items:
        assert record.status is TaskStatus.QUEUED


@pytest.mark.parametrize(("total", "limit"), [(10, 3), (9, 3), (1, 1), (7, 50), (12, 1)])
def test_keyset_pagination_walks_every_task_once(db: QueueDatabase, total: int, limit: int) -> None:
    ids = enqueue_many(db, [NewTask(type="t") for _ in range(total)])
    seen: list[int] = []
    pages = 0
    cursor = None
    while True:
        page = list_tasks(db, limit=limit, cursor=cursor)
        pages += 1
        assert 1 <= len(page.items) <= limit
        seen += _ids(page.items)
        if page.next_cursor is None:
            break
        assert len(page.items) == limit
        cursor = page.next_cursor
        assert isinstance(cursor, str)
    assert seen == sorted(ids, reverse=True)
    assert pages == -(-total // limit)


def test_pagination_with_a_filter(db: QueueDatabase) -> None:
    wanted = []
    for i in range(11):
        task_id = enqueue(db, "even" if i % 2 == 0 else "odd").task_id
        if i % 2 == 0:
            wanted.append(task_id)
    seen: list[int] = []
    cursor = None
    while True:
        page = list_tasks(db, task_type="even", limit=2, cursor=cursor)
        seen += _ids(page.items)
        if (cursor := page.next_cursor) is None:
            break
    assert seen == sorted(wanted, reverse=True)


def test_pages_stay_stable_while_tasks_are_added(db: QueueDatabase) -> None:
    ids = enqueue_many(db, [NewTask(type="t") for _ in range(6)])
    first = list_tasks(db, limit=3)
    newcomers = enqueue_many(db, [NewTask(type="t") for _ in range(4)])
    second = list_tasks(db, limit=3, cursor=first.next_cursor)
    assert _ids(first.items) + _ids(second.items) == sorted(ids, reverse=True)
    assert second.next_cursor is None
    assert set(newcomers).isdisjoint(_ids(second.items))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "-1"}, "cursor"),
        ({"cursor": "1.5"}, "cursor"),
        ({"cursor": " 5"}, "cursor"),
        ({"cursor": "9" * 40}, "cursor"),
        ({"cursor": "9" * 5000}, "cursor"),  # longer than int() converts
        ({"cursor": "9" * 19}, "cursor"),  # beyond a 64-bit id
        ({"cursor": "\u00b2"}, "cursor"),  # superscript two: str.isdigit() says yes
        ({"cursor": "\u0661"}, "cursor"),  # Arabic-Indic digit one
        ({"cursor": 5}, "cursor"),
        ({"status": "running"}, "status"),
        ({"status": "QUEUED"}, "status"),
        ({"status": ""}, "status"),
    ],
)
def test_list_tasks_rejects_invalid_arguments(
    db: QueueDatabase, kwargs: dict[str, Any], field: str
) -> None:
    enqueue(db, "t")
    with pytest.raises(InvalidTaskError) as info:
        list_tasks(db, **kwargs)
    assert info.value.field == field


def test_list_tasks_largest_page(db: QueueDatabase) -> None:
    enqueue_many(db, [NewTask(type="t") for _ in range(3)])
    assert len(list_tasks(db, limit=500).items) == 3


# --------------------------------------------------------------------------- task logs


def test_task_logs_in_order(db: QueueDatabase) -> None:
    task_id = enqueue(db, "t").task_id
    other = enqueue(db, "t").task_id
    before = db_now(db)
    first = log(db, task_id, "starting")
    log(db, other, "elsewhere")
    second = log(db, task_id, "halfway", level="WARNING", details={"done": 5, "of": 10})
    third = log(db, task_id, "broke", level="error", details={"trace": ["a", "b"]})
    after = db_now(db)

    lines = get_task_logs(db, task_id)
    assert [line.id for line in lines] == [first, second, third]
    assert first < second < third
    assert [line.message for line in lines] == ["starting", "halfway", "broke"]
    assert [line.level for line in lines] == ["info", "warning", "error"]
    assert [line.details for line in lines] == [None, {"done": 5, "of": 10}, {"trace": ["a", "b"]}]
    assert {line.task_id for line in lines} == {task_id}
    for line in lines:
        assert is_utc(line.at_utc)
        assert before <= line.at_utc <= after
    assert [line.at_utc for line in lines] == sorted(line.at_utc for line in lines)
    assert [line.message for line in get_task_logs(db, other)] == ["elsewhere"]


def test_task_logs_paging(db: QueueDatabase) -> None:
    task_id = enqueue(db, "t").task_id
    ids = [log(db, task_id, f"line {i}") for i in range(5)]
    assert [line.id for line in get_task_logs(db, task_id, after_id=ids[1])] == ids[2:]
    assert [line.id for line in get_task_logs(db, task_id, limit=2)] == ids[:2]
    assert get_task_logs(db, task_id, after_id=ids[-1]) == []


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "critical"])
def test_every_log_level_is_accepted(db: QueueDatabase, level: str) -> None:
    task_id = enqueue(db, "t").task_id
    log(db, task_id, "x", level=level.upper())
    assert [line.level for line in get_task_logs(db, task_id)] == [level]


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"level": "verbose"}, InvalidTaskError, "level"),
        ({"level": ""}, InvalidTaskError, "level"),
        ({"level": None}, InvalidTaskError, "level"),
        ({"details": ["not", "an", "object"]}, InvalidPayloadError, "details"),
        ({"details": {"x": object()}}, InvalidPayloadError, "details"),
        ({"details": {"x": float("nan")}}, InvalidPayloadError, "details"),
    ],
)
def test_invalid_log_lines_are_rejected(
    db: QueueDatabase, kwargs: dict[str, Any], error: type[InvalidTaskError], field: str
) -> None:
    task_id = enqueue(db, "t").task_id
    with pytest.raises(error) as info:
        log(db, task_id, "x", **kwargs)
    assert info.value.field == field
    assert count_logs(db) == 0


def test_logs_of_an_unknown_task(db: QueueDatabase) -> None:
    with pytest.raises(TaskNotFoundError):
        log(db, UNKNOWN_ID, "x")
    with pytest.raises(TaskNotFoundError):
        get_task_logs(db, UNKNOWN_ID)
    assert count_logs(db) == 0


def test_a_task_without_logs(db: QueueDatabase) -> None:
    assert get_task_logs(db, enqueue(db, "t").task_id) == []


def test_long_log_messages_are_cut(db: QueueDatabase) -> None:
    task_id = enqueue(db, "t").task_id
    log(db, task_id, "y" * 50_000)
    [line] = get_task_logs(db, task_id)
    assert 1000 <= len(line.message) < 50_000
    assert set(line.message) == {"y"}


# --------------------------------------------------------------------------- workers


def _worker(db: QueueDatabase, worker_id: str) -> Any:
    [record] = [w for w in list_workers(db) if w.worker_id == worker_id]
    return record


def _age_heartbeat(db: QueueDatabase, worker_id: str, seconds: float) -> None:
    # The only direct write of the suite: make a heartbeat old without waiting for it.
    past = db_now(db) - dt.timedelta(seconds=seconds)
    with db.write() as conn:
        conn.execute(
            update(worker_table)
            .where(worker_table.c.worker_id == worker_id)
            .values(heartbeat_utc=past)
        )


def test_register_worker(db: QueueDatabase) -> None:
    before = db_now(db)
    register_worker(
        db,
        "gpu-1",
        capabilities={"gpu": True, "mem_gb": 64},
        queues=["render", "default"],
        strategy="WEIGHTED_RANDOM",
        concurrency=8,
        hostname="host-a",
        pid=4242,
    )
    after = db_now(db)
    worker = _worker(db, "gpu-1")
    assert worker.hostname == "host-a"
    assert worker.pid == 4242
    assert worker.capabilities == {"gpu": True, "mem_gb": 64}
    assert worker.queues == ["render", "default"]
    assert worker.strategy == "weighted_random"
    assert worker.concurrency == 8
    assert worker.stopped_at_utc is None
    assert before <= worker.started_at_utc <= after
    assert worker.heartbeat_utc == worker.started_at_utc
    assert is_utc(worker.started_at_utc)
    assert 0 <= worker.heartbeat_age_seconds < 30
    assert worker.is_stale is False
    assert worker.is_active is True


def test_register_worker_defaults(db: QueueDatabase) -> None:
    register_worker(db, "plain")
    worker = _worker(db, "plain")
    assert worker.hostname == socket.gethostname()
    assert worker.pid == os.getpid()
    assert worker.capabilities == {}
    assert worker.queues == ["default"]
    assert worker.strategy == "priority"
    assert worker.concurrency == 1


def test_register_worker_again_is_an_upsert(db: QueueDatabase) -> None:
    register_worker(db, "w1", capabilities={"v": 1}, concurrency=2)
    assert mark_worker_stopped(db, "w1") is True
    stopped = _worker(db, "w1")
    assert stopped.stopped_at_utc is not None
    assert stopped.is_active is False
    _age_heartbeat(db, "w1", 600)

    register_worker(db, "w1", capabilities={"v": 2}, concurrency=4)
    again = [w for w in list_workers(db) if w.worker_id == "w1"]
    assert len(again) == 1
    restarted = again[0]
    assert restarted.stopped_at_utc is None
    assert restarted.capabilities == {"v": 2}
    assert restarted.concurrency == 4
    assert restarted.started_at_utc >= stopped.started_at_utc
    assert restarted.heartbeat_age_seconds < 30
    assert restarted.is_active is True


def test_heartbeat(db: QueueDatabase) -> None:
    register_worker(db, "w1")
    _age_heartbeat(db, "w1", 120)
    assert _worker(db, "w1").heartbeat_age_seconds >= 119
    assert heartbeat(db, "w1") is True
    fresh = _worker(db, "w1")
    assert fresh.heartbeat_age_seconds < 30
    assert fresh.is_stale is False
    assert heartbeat(db, "never-registered") is False
    assert [w.worker_id for w in list_workers(db)] == ["w1"]


def test_mark_worker_stopped(db: QueueDatabase) -> None:
    register_worker(db, "w1")
    before = db_now(db)
    assert mark_worker_stopped(db, "w1") is True
    worker = _worker(db, "w1")
    assert worker.stopped_at_utc is not None
    assert worker.stopped_at_utc >= before
    assert worker.is_active is False
    assert worker.is_stale is False
    assert mark_worker_stopped(db, "never-registered") is False
    # A late heartbeat (its heartbeat loop racing the shutdown) does not revive it...
    assert heartbeat(db, "w1") is False
    assert _worker(db, "w1").stopped_at_utc == worker.stopped_at_utc
    # ...registering again does.
    register_worker(db, "w1")
    assert _worker(db, "w1").stopped_at_utc is None
    assert heartbeat(db, "w1") is True


def test_stale_workers(db: QueueDatabase) -> None:
    for worker_id in ("fresh", "silent", "stopped-long-ago", "slightly-late"):
        register_worker(db, worker_id)
    _age_heartbeat(db, "silent", 3600)
    _age_heartbeat(db, "slightly-late", 90)
    mark_worker_stopped(db, "stopped-long-ago")
    _age_heartbeat(db, "stopped-long-ago", 3600)

    workers = {w.worker_id: w for w in list_workers(db)}
    assert list(workers) == sorted(workers)
    assert 3590 <= workers["silent"].heartbeat_age_seconds <= 3700
    assert workers["silent"].is_stale is True
    assert workers["silent"].is_active is False
    assert workers["slightly-late"].is_stale is True  # default: stale after 60 s
    assert workers["fresh"].is_stale is False
    assert workers["fresh"].is_active is True
    # A worker that stopped cleanly is never stale.
    assert workers["stopped-long-ago"].is_stale is False

    assert {w.worker_id for w in list_stale_workers(db)} == {"silent", "slightly-late"}
    assert {w.worker_id for w in list_stale_workers(db, stale_after_seconds=600)} == {"silent"}
    assert list_stale_workers(db, stale_after_seconds=7200) == []
    running = {w.worker_id for w in list_workers(db, include_stopped=False)}
    assert running == {"fresh", "silent", "slightly-late"}
    # A heartbeat brings a silent worker back.
    assert heartbeat(db, "silent") is True
    assert {w.worker_id for w in list_stale_workers(db)} == {"slightly-late"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"worker_id": ""}, InvalidTaskError),
        ({"worker_id": "w" * 201}, InvalidTaskError),
        ({"strategy": "round_robin"}, UnknownStrategyError),
        ({"queues": "default"}, InvalidTaskError),
        ({"capabilities": ["gpu"]}, InvalidPayloadError),
        ({"capabilities": {"gpu": object()}}, InvalidPayloadError),
    ],
)
def test_register_worker_rejects_invalid_input(
    db: QueueDatabase, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    arguments: dict[str, Any] = {"worker_id": "w", **kwargs}
    with pytest.raises(error):
        register_worker(db, **arguments)
    assert list_workers(db) == []
