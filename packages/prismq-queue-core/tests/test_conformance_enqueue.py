"""Conformance: enqueue, enqueue_many, transactional enqueue and input validation.

Runs unchanged on SQLite and PostgreSQL (``PRISMQ_TEST_BACKEND``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import sqlite3
from typing import Any

import pytest
from conformance_support import (
    CLOCK_TOLERANCE,
    count_tasks,
    db_now,
    is_utc,
    poll_until,
)
from sqlalchemy import make_url

from prismq.queue import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    MAX_BATCH_SIZE,
    DatabaseError,
    InvalidPayloadError,
    InvalidPriorityError,
    InvalidTaskError,
    NewTask,
    PrismQError,
    QueueDatabase,
    TaskNotFoundError,
    TaskStatus,
    claim_tasks,
    complete,
    enqueue,
    enqueue_many,
    get_task,
    list_tasks,
)
from prismq.queue.models import TaskRow

UTC = dt.timezone.utc


def _claim_ids(db: QueueDatabase, **kwargs: Any) -> list[int]:
    return [task.id for task in claim_tasks(db, "w-test", kwargs.pop("n", 10), **kwargs)]


# --------------------------------------------------------------------------- enqueue


def test_enqueue_defaults(db: QueueDatabase) -> None:
    before = db_now(db)
    result = enqueue(db, "email.send")
    after = db_now(db)

    assert result.created is True
    task = result.task
    assert result.task_id == task.id
    assert task.type == "email.send"
    assert task.queue == DEFAULT_QUEUE == "default"
    assert task.priority == DEFAULT_PRIORITY == 100
    assert task.max_attempts == DEFAULT_MAX_ATTEMPTS == 5
    assert task.status is TaskStatus.QUEUED
    assert task.attempts == 0
    assert task.payload == {}
    assert task.compatibility == {}
    assert task.cancel_requested is False
    assert task.idempotency_key is None
    for empty in (
        task.lease_until_utc,
        task.locked_by,
        task.reserved_at_utc,
        task.processing_started_utc,
        task.finished_at_utc,
        task.error_message,
        task.result,
        task.progress,
    ):
        assert empty is None
    for stamp in (task.created_at_utc, task.updated_at_utc, task.run_after_utc):
        assert is_utc(stamp)
    # Timestamps come from the database clock, read in the same statement.
    assert before <= task.created_at_utc <= after
    assert task.updated_at_utc == task.created_at_utc
    assert task.run_after_utc == task.created_at_utc
    assert not hasattr(task, "lease_token")


def test_enqueue_every_field_round_trips(db: QueueDatabase) -> None:
    payload = {"to": "a@example.com", "n": 3, "x": 1.5, "ok": True, "nested": {"l": [1, "2", None]}}
    compatibility = {"gpu": True, "region": "eu"}
    run_after = dt.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    result = enqueue(
        db,
        "report.build",
        payload,
        queue="reports",
        priority=7,
        compatibility=compatibility,
        max_attempts=9,
        run_after_utc=run_after,
        idempotency_key="report-2031-05",
    )
    stored = get_task(db, result.task_id)
    assert stored == result.task
    assert stored.type == "report.build"
    assert stored.payload == payload
    assert stored.queue == "reports"
    assert stored.priority == 7
    assert stored.compatibility == compatibility
    assert stored.max_attempts == 9
    assert stored.run_after_utc == run_after
    assert is_utc(stored.run_after_utc)
    assert stored.idempotency_key == "report-2031-05"


def test_enqueue_boundary_values_are_accepted(db: QueueDatabase) -> None:
    low = enqueue(
        db, "t" * 200, queue="q" * 100, priority=1, max_attempts=1, idempotency_key="k" * 200
    ).task
    high = enqueue(db, "t", priority=1000, max_attempts=100).task
    assert (low.type, low.queue, low.priority, low.max_attempts) == ("t" * 200, "q" * 100, 1, 1)
    assert low.idempotency_key == "k" * 200
    assert (high.priority, high.max_attempts) == (1000, 100)
    assert get_task(db, low.id) == low
    assert get_task(db, high.id) == high


def test_run_after_utc_in_other_timezones_is_stored_as_utc(db: QueueDatabase) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    aware = enqueue(db, "t", run_after_utc=dt.datetime(2030, 1, 1, 12, 0, tzinfo=plus_two)).task
    naive = enqueue(db, "t", run_after_utc=dt.datetime(2030, 1, 1, 12, 0)).task
    assert get_task(db, aware.id).run_after_utc == dt.datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    assert is_utc(get_task(db, aware.id).run_after_utc)
    # A naive datetime is taken to be UTC.
    assert get_task(db, naive.id).run_after_utc == dt.datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_run_after_in_the_past_is_claimable_at_once(db: QueueDatabase) -> None:
    past = db_now(db) - dt.timedelta(hours=1)
    task = enqueue(db, "t", run_after_utc=past).task
    assert _claim_ids(db) == [task.id]


def test_delay_seconds_holds_the_task_back_until_due(db: QueueDatabase) -> None:
    task = enqueue(db, "t", delay_seconds=0.3).task
    delay = task.run_after_utc - task.created_at_utc
    assert abs(delay - dt.timedelta(seconds=0.3)) <= CLOCK_TOLERANCE
    assert _claim_ids(db) == []

    claimed = poll_until(lambda: _claim_ids(db), what="the delayed task to become due")
    assert claimed == [task.id]
    # It was leased no earlier than its run_after, on the database clock.
    reserved = get_task(db, task.id).reserved_at_utc
    assert reserved is not None
    assert reserved >= task.run_after_utc


def test_run_after_utc_holds_the_task_back_until_due(db: QueueDatabase) -> None:
    due = db_now(db) + dt.timedelta(seconds=0.3)
    task = enqueue(db, "t", run_after_utc=due).task
    assert task.run_after_utc == due
    assert _claim_ids(db) == []

    assert poll_until(lambda: _claim_ids(db), what="the task to become due") == [task.id]
    reserved = get_task(db, task.id).reserved_at_utc
    assert reserved is not None
    assert reserved >= due


def test_zero_delay_is_ready_at_once(db: QueueDatabase) -> None:
    task = enqueue(db, "t", delay_seconds=0).task
    assert task.run_after_utc == task.created_at_utc
    assert _claim_ids(db) == [task.id]


# --------------------------------------------------------------------------- idempotency


def test_idempotency_key_returns_the_existing_task(db: QueueDatabase) -> None:
    first = enqueue(db, "t", {"v": 1}, idempotency_key="order-42")
    second = enqueue(db, "other", {"v": 2}, priority=1, idempotency_key="order-42")
    assert first.created is True
    assert second.created is False
    assert second.task_id == first.task_id
    # The existing task is returned as it is; the second call's fields are ignored.
    assert second.task == first.task
    assert second.task.payload == {"v": 1}
    assert count_tasks(db) == 1


def test_idempotency_key_still_matches_after_the_task_finished(db: QueueDatabase) -> None:
    first = enqueue(db, "t", idempotency_key="once")
    [claimed] = claim_tasks(db, "w")
    complete(db, claimed.id, claimed.lease_token)
    again = enqueue(db, "t", idempotency_key="once")
    assert again.created is False
    assert again.task_id == first.task_id
    assert again.task.status is TaskStatus.COMPLETED
    assert count_tasks(db) == 1


def test_different_idempotency_keys_and_no_key_create_separate_tasks(db: QueueDatabase) -> None:
    a = enqueue(db, "t", idempotency_key="a")
    b = enqueue(db, "t", idempotency_key="b")
    c = enqueue(db, "t")
    d = enqueue(db, "t")
    assert all(r.created for r in (a, b, c, d))
    assert len({a.task_id, b.task_id, c.task_id, d.task_id}) == 4
    assert count_tasks(db) == 4


# --------------------------------------------------------------------------- enqueue_many


def test_enqueue_many_returns_ids_in_order(db: QueueDatabase) -> None:
    tasks = [
        NewTask(type=f"t{i}", payload={"i": i}, priority=1000 - i, queue=f"q{i % 2}")
        for i in range(25)
    ]
    ids = enqueue_many(db, tasks)
    assert len(ids) == 25
    assert len(set(ids)) == 25
    for i, task_id in enumerate(ids):
        stored = get_task(db, task_id)
        assert stored.type == f"t{i}"
        assert stored.payload == {"i": i}
        assert stored.priority == 1000 - i
        assert stored.queue == f"q{i % 2}"
        assert stored.status is TaskStatus.QUEUED
        assert is_utc(stored.created_at_utc)


def test_enqueue_many_of_nothing(db: QueueDatabase) -> None:
    assert enqueue_many(db, []) == []
    assert count_tasks(db) == 0


def test_enqueue_many_applies_delays_from_the_database_clock(db: QueueDatabase) -> None:
    due = dt.datetime(2032, 1, 1, tzinfo=UTC)
    before = db_now(db)
    ids = enqueue_many(
        db,
        [
            NewTask(type="now"),
            NewTask(type="later", delay_seconds=0.3),
            NewTask(type="fixed", run_after_utc=due),
        ],
    )
    after = db_now(db)
    now_task, later, fixed = (get_task(db, i) for i in ids)
    assert before <= now_task.created_at_utc <= after
    assert now_task.run_after_utc == now_task.created_at_utc
    assert abs(later.run_after_utc - later.created_at_utc - dt.timedelta(seconds=0.3)) <= (
        CLOCK_TOLERANCE
    )
    assert fixed.run_after_utc == due
    assert _claim_ids(db) == [now_task.id]


def test_enqueue_many_with_keys_mixes_new_and_existing(db: QueueDatabase) -> None:
    existing = enqueue(db, "t", {"old": True}, idempotency_key="k1").task_id
    ids = enqueue_many(
        db,
        [
            NewTask(type="a"),
            NewTask(type="b", idempotency_key="k1"),
            NewTask(type="c", idempotency_key="k2"),
            NewTask(type="d"),
            NewTask(type="e", idempotency_key="k2"),
        ],
    )
    assert ids[1] == existing
    assert ids[4] == ids[2]
    assert len({ids[0], ids[2], ids[3], existing}) == 4
    assert [get_task(db, i).type for i in ids] == ["a", "t", "c", "d", "c"]
    assert get_task(db, existing).payload == {"old": True}
    assert count_tasks(db) == 4


def test_enqueue_many_rejects_a_batch_with_an_invalid_item(db: QueueDatabase) -> None:
    with pytest.raises(InvalidTaskError) as info:
        enqueue_many(db, [NewTask(type="a"), NewTask(type="b"), {"type": "c"}])  # type: ignore[list-item]
    assert info.value.field == "tasks[2]"
    assert count_tasks(db) == 0


def test_new_task_validates_on_construction() -> None:
    with pytest.raises(InvalidPriorityError) as info:
        NewTask(type="c", priority=0)
    assert info.value.field == "priority"


def _corrupted(task: NewTask, **fields: Any) -> NewTask:
    # Bypass NewTask's validation to make the database itself reject the row mid-batch
    # (the priority CHECK constraint), as a DB-level failure would.
    for name, value in fields.items():
        object.__setattr__(task, name, value)
    return task


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_enqueue_many_is_all_or_nothing_on_a_database_failure(
    db: QueueDatabase, keyed: bool
) -> None:
    key = (lambda i: f"k{i}") if keyed else (lambda i: None)
    batch = [
        NewTask(type="a", idempotency_key=key(0)),
        NewTask(type="b", idempotency_key=key(1)),
        _corrupted(NewTask(type="c", idempotency_key=key(2)), priority=5000),
        NewTask(type="d", idempotency_key=key(3)),
    ]
    with pytest.raises(DatabaseError) as info:
        enqueue_many(db, batch)
    assert not isinstance(info.value, InvalidTaskError)
    assert count_tasks(db) == 0
    # The database is still usable and the keys of the failed batch are free.
    assert enqueue(db, "a", idempotency_key=key(0)).created is True
    assert count_tasks(db) == 1


def test_enqueue_many_rejects_too_large_a_batch(db: QueueDatabase) -> None:
    with pytest.raises(InvalidTaskError) as info:
        enqueue_many(db, [NewTask(type="t")] * (MAX_BATCH_SIZE + 1))
    assert info.value.field == "tasks"
    assert count_tasks(db) == 0


# --------------------------------------------------------------------------- transactional


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_enqueue_in_the_callers_session(db: QueueDatabase, outcome: str) -> None:
    with db.session() as session:
        first = enqueue(db, "t", {"n": 1}, connection=session)
        ids = enqueue_many(db, [NewTask(type="t", payload={"n": 2})], connection=session)
        # Not visible outside the caller's transaction until it commits.
        with pytest.raises(TaskNotFoundError):
            get_task(db, first.task_id)
        if outcome == "commit":
            session.commit()
        else:
            session.rollback()
    if outcome == "commit":
        assert get_task(db, first.task_id).payload == {"n": 1}
        assert get_task(db, ids[0]).payload == {"n": 2}
        assert count_tasks(db) == 2
    else:
        assert count_tasks(db) == 0
        with pytest.raises(TaskNotFoundError):
            get_task(db, first.task_id)


def test_the_orm_classes_read_and_write_the_queues_tables(db: QueueDatabase) -> None:
    # The ORM classes are mapped onto the Core tables the queries use: what one writes,
    # the other reads, with the same types.
    task_id = enqueue(db, "t", {"n": 1}, priority=7).task_id
    with db.session() as session:
        row = session.get(TaskRow, task_id)
        assert row is not None
        assert (row.type, row.payload, row.priority, row.status) == ("t", {"n": 1}, 7, "queued")
        assert row.created_at_utc.tzinfo is not None
        row.priority = 9
        session.commit()
    assert get_task(db, task_id).priority == 9


def test_a_pooled_connection_goes_back_to_transactions_after_a_single_enqueue(
    db: QueueDatabase,
) -> None:
    # A single enqueue runs in autocommit mode on a pooled driver connection (both backends);
    # the next transaction on that connection must still be one, and roll back whole.
    before = enqueue(db, "t").task_id

    def enqueue_then_fail() -> None:
        with db.write() as conn:
            enqueue(db, "t", connection=conn)
            enqueue_many(db, [NewTask(type="t")], connection=conn)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        enqueue_then_fail()
    assert [task.id for task in list_tasks(db).items] == [before]
    assert count_tasks(db) == 1


@pytest.mark.backend("sqlite")
def test_a_single_enqueue_leaves_no_write_transaction_open(database_url: str) -> None:
    # The single enqueue's statement runs on a cursor its connection keeps for the next
    # one; on SQLite its autocommitted transaction ends only when the statement does. A
    # statement left unfinished would hold the write lock until the next enqueue.
    with QueueDatabase(database_url, pool_size=1) as db:
        for _ in range(3):
            enqueue(db, "t")
            path = make_url(database_url).database
            assert path
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # "database is locked" if it were held
                other.execute("ROLLBACK")
            finally:
                other.close()
        assert count_tasks(db) == 3


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_enqueue_in_the_callers_connection(db: QueueDatabase, outcome: str) -> None:
    with db.engine.connect() as conn:
        transaction = conn.begin()
        first = enqueue(db, "t", {"n": 1}, connection=conn)
        keyed = enqueue(db, "t", idempotency_key="tx", connection=conn)
        ids = enqueue_many(db, [NewTask(type="t"), NewTask(type="t")], connection=conn)
        with pytest.raises(TaskNotFoundError):
            get_task(db, first.task_id)
        if outcome == "commit":
            transaction.commit()
        else:
            transaction.rollback()
    if outcome == "commit":
        assert count_tasks(db) == 4
        assert get_task(db, keyed.task_id).idempotency_key == "tx"
        assert [get_task(db, i).id for i in ids] == ids
    else:
        assert count_tasks(db) == 0
        assert list_tasks(db).items == []
        # The idempotency key of the rolled-back task is free again.
        assert enqueue(db, "t", idempotency_key="tx").created is True


def test_bad_input_leaves_the_callers_transaction_intact(
    db: QueueDatabase,
) -> None:
    with db.engine.connect() as conn, conn.begin():
        ok = enqueue(db, "t", connection=conn)
        with pytest.raises(InvalidPriorityError):
            enqueue(db, "t", priority=0, connection=conn)
    # Validation happens before any SQL: the caller's transaction is intact and commits.
    assert get_task(db, ok.task_id).status is TaskStatus.QUEUED
    assert count_tasks(db) == 1


# --------------------------------------------------------------------------- validation

_NAN = math.nan

#: (NewTask keyword arguments, expected error, field the error must name). Every case is
#: checked on NewTask alone and through enqueue(), which must write nothing.
INVALID_TASKS: list[tuple[dict[str, Any], type[InvalidTaskError], str]] = [
    *(
        ({"priority": value}, InvalidPriorityError, "priority")
        for value in (0, 1001, -1, 1.5, True, False, "5", None, 100.0)
    ),
    *(
        ({"payload": value}, InvalidPayloadError, "payload")
        for value in (
            [],
            [1, 2],
            "",
            "a string",
            5,
            {"x": object()},
            {"x": _NAN},
            {"x": math.inf},
            {"x": {"y": [_NAN]}},
            {1: "non-string key"},
        )
    ),
    *(
        ({"compatibility": value}, InvalidPayloadError, "compatibility")
        for value in ([], "gpu", {"gpu": object()}, {"x": _NAN})
    ),
    *(({"type": value}, InvalidTaskError, "type") for value in ("", " padded", "t" * 201, None, 5)),
    *(({"queue": value}, InvalidTaskError, "queue") for value in ("", "q" * 101, None)),
    *(
        ({"idempotency_key": value}, InvalidTaskError, "idempotency_key")
        for value in ("", "k" * 201, 42)
    ),
    *(
        ({"max_attempts": value}, InvalidTaskError, "max_attempts")
        for value in (0, 101, 2.5, True, "3")
    ),
    *(
        ({"delay_seconds": value}, InvalidTaskError, "delay_seconds")
        for value in (-1, _NAN, math.inf, "1", True)
    ),
    *(
        ({"run_after_utc": value}, InvalidTaskError, "run_after_utc")
        for value in ("2030-01-01T00:00:00Z", 1_900_000_000)
    ),
]


def _case_id(case: tuple[dict[str, Any], type[InvalidTaskError], str]) -> str:
    [(name, value)] = case[0].items()
    text = repr(value)
    return f"{name}={text if len(text) <= 20 else text[:17] + '...'}"


@pytest.mark.parametrize(
    ("fields", "error", "field"), INVALID_TASKS, ids=[_case_id(c) for c in INVALID_TASKS]
)
def test_new_task_rejects_invalid_fields(
    fields: dict[str, Any], error: type[InvalidTaskError], field: str
) -> None:
    with pytest.raises(error) as info:
        NewTask(**{"type": "t", **fields})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_enqueue_rejects_invalid_fields_and_writes_nothing(db: QueueDatabase) -> None:
    for fields, error, field in INVALID_TASKS:
        arguments: dict[str, Any] = {"type": "t", **fields}
        task_type = arguments.pop("type")
        payload = arguments.pop("payload", None)
        with pytest.raises(error) as info:
            enqueue(db, task_type, payload, **arguments)
        assert info.value.field == field, fields
        with pytest.raises(error):
            enqueue_many(db, [NewTask(type="ok"), NewTask(**{"type": "t", **fields})])
    assert count_tasks(db) == 0


def test_payload_none_means_empty_object(db: QueueDatabase) -> None:
    task = enqueue(db, "t", None, compatibility=None).task
    assert task.payload == {}
    assert task.compatibility == {}


def test_delay_and_run_after_together_are_rejected(db: QueueDatabase) -> None:
    with pytest.raises(InvalidTaskError) as info:
        enqueue(db, "t", delay_seconds=1, run_after_utc=dt.datetime(2030, 1, 1, tzinfo=UTC))
    assert info.value.field in {"run_after_utc", "delay_seconds"}
    assert count_tasks(db) == 0


def test_validation_errors_are_prismq_errors_and_value_errors() -> None:
    with pytest.raises(InvalidPriorityError) as info:
        NewTask(type="t", priority=5000)
    assert isinstance(info.value, InvalidTaskError)
    assert isinstance(info.value, PrismQError)
    assert isinstance(info.value, ValueError)


def test_new_task_is_immutable() -> None:
    task = NewTask(type="t")
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.priority = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "timing",
    [{}, {"delay_seconds": 30.5}, {"run_after_utc": dt.datetime(2031, 5, 6, 7, 8, 9, 123456, UTC)}],
    ids=["now", "delayed", "at"],
)
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
def test_the_returned_record_is_the_stored_one(
    db: QueueDatabase, timing: dict[str, Any], keyed: bool
) -> None:
    # enqueue builds its record from what it sent plus what the database chose; it must
    # read exactly as the row does. (Without a key, PostgreSQL runs the insert on the
    # driver, below SQLAlchemy: both ways must give the same record.)
    created = enqueue(
        db,
        "record",
        {"nested": {"list": [1, 2.5, None, "x"]}, "flag": True},
        queue="q",
        priority=7,
        compatibility={"gpu": True},
        max_attempts=4,
        idempotency_key=f"record-{sorted(timing)}" if keyed else None,
        **timing,
    )
    assert created.created
    assert created.task == get_task(db, created.task_id)


def test_a_batch_keeps_its_order_and_its_times(db: QueueDatabase) -> None:
    at = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, UTC)
    tasks = [
        NewTask(type="ordered", payload={"index": index}, priority=1 + index % 3)
        for index in range(250)
    ]
    tasks[10] = NewTask(type="ordered", payload={"index": 10}, run_after_utc=at)
    tasks[20] = NewTask(type="ordered", payload={"index": 20}, delay_seconds=3600)
    before = db_now(db)
    ids = enqueue_many(db, tasks)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(tasks)
    stored = [get_task(db, task_id) for task_id in ids]
    assert [task.payload["index"] for task in stored] == list(range(250))
    assert stored[10].run_after_utc == at
    assert stored[20].run_after_utc - before >= dt.timedelta(seconds=3600) - CLOCK_TOLERANCE
    assert abs(stored[0].run_after_utc - stored[0].created_at_utc) <= CLOCK_TOLERANCE
    assert len({task.created_at_utc for task in stored}) == 1  # one clock reading per batch


def test_a_batch_stores_each_task_as_a_single_enqueue_would(db: QueueDatabase) -> None:
    # A batch sends only what differs from the defaults; what is stored must not show it.
    # Each chosen field once, between tasks that choose nothing, and all of them at once.
    chosen: list[dict[str, Any]] = [
        {"queue": "elsewhere"},
        {"priority": 1},
        {"priority": DEFAULT_PRIORITY + 1},
        {"payload": {"a": [1, {"b": None}]}},
        {"compatibility": {"gpu": False}},
        {"max_attempts": 1},
        {"max_attempts": 100},
        {
            "queue": "all",
            "priority": 7,
            "payload": {"x": 1},
            "compatibility": {"os": "linux"},
            "max_attempts": 9,
        },
    ]
    fields = [field for choice in chosen for field in ({}, choice)] + [{}]
    batch = enqueue_many(db, [NewTask(type="same", **choice) for choice in fields])
    singles = [enqueue(db, "same", **choice).task_id for choice in fields]

    def stored(task_id: int) -> tuple[Any, ...]:
        task = get_task(db, task_id)
        return (
            task.queue,
            task.priority,
            task.payload,
            task.compatibility,
            task.max_attempts,
            task.attempts,
            task.status,
            task.cancel_requested,
            task.run_after_utc == task.created_at_utc,
        )

    assert [stored(task_id) for task_id in batch] == [stored(task_id) for task_id in singles]
    assert stored(batch[0]) == (
        DEFAULT_QUEUE,
        DEFAULT_PRIORITY,
        {},
        {},
        DEFAULT_MAX_ATTEMPTS,
        0,
        TaskStatus.QUEUED,
        False,
        True,
    )


_AWKWARD_PAYLOADS: list[dict[str, Any]] = [
    {},
    {"nested": {"deeper": {"list": [1, 2.5, None, "x", [], {}]}}},
    {"text": 'quotes " and \\ backslashes, tab\t, newline\n, unicode é ✓ 😀'},
    {"spelled_out_nul": "\\u0000 is six characters here, not NUL"},
    {"big": 2**62, "negative": -(2**53) - 1, "float": 0.1, "small": 1.5e-7, "tiny": 5e-324},
    {"flags": [True, False, None], "empty_text": "", "zero": 0},
]


@pytest.mark.parametrize("path", ["enqueue", "enqueue_many"])
def test_payloads_come_back_as_they_went_in(db: QueueDatabase, path: str) -> None:
    # Both enqueue paths encode the payload their own way (a bound value, an element of a
    # batch document); the stored task and the claimed one must both read as sent.
    compatibility = {"gpu": True, "region": "eu-west", "memory_gb": 16, "ratio": 0.5}
    if path == "enqueue":
        ids = [
            enqueue(db, "awkward", payload, compatibility=compatibility).task_id
            for payload in _AWKWARD_PAYLOADS
        ]
    else:
        tasks = [
            NewTask(type="awkward", payload=payload, compatibility=compatibility)
            for payload in _AWKWARD_PAYLOADS
        ]
        ids = enqueue_many(db, tasks)
    assert [get_task(db, task_id).payload for task_id in ids] == _AWKWARD_PAYLOADS
    assert all(get_task(db, task_id).compatibility == compatibility for task_id in ids)
    claimed = claim_tasks(db, "w-test", len(ids), strategy="FIFO", capabilities=compatibility)
    assert [task.payload for task in claimed] == _AWKWARD_PAYLOADS
    assert all(task.compatibility == compatibility for task in claimed)
