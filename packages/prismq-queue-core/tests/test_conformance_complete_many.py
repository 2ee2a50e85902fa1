"""Conformance: completing a batch of leased tasks in one transaction.

Runs unchanged on SQLite and PostgreSQL (``PRISMQ_TEST_BACKEND``).
"""

from __future__ import annotations

import pytest
from conformance_support import lease_token_of, raw_task

from prismq.queue import (
    Completion,
    InvalidPayloadError,
    InvalidTaskError,
    NewTask,
    QueueDatabase,
    TaskStatus,
    claim_tasks,
    complete_many,
    enqueue_many,
    get_task,
    reclaim_expired_leases,
    request_cancel,
)


def test_completes_every_held_task_with_its_own_result(db: QueueDatabase) -> None:
    enqueue_many(db, [NewTask(type="t") for _ in range(5)])
    claimed = claim_tasks(db, "w", 5)
    report = complete_many(
        db,
        [Completion(task_id=t.id, lease_token=t.lease_token, result={"n": t.id}) for t in claimed],
    )
    assert report.lost == frozenset()
    assert report.finished == {t.id: TaskStatus.COMPLETED for t in claimed}
    for task in claimed:
        record = get_task(db, task.id)
        assert record.status is TaskStatus.COMPLETED
        assert record.result == {"n": task.id}
        assert record.finished_at_utc is not None
        assert lease_token_of(db, task.id) is None


def test_a_lost_lease_is_reported_and_left_alone_while_the_rest_complete(
    db: QueueDatabase,
) -> None:
    enqueue_many(db, [NewTask(type="t") for _ in range(3)])
    first, second, third = claim_tasks(db, "w", 3, strategy="fifo")
    request_cancel(db, third.id)
    before = raw_task(db, second.id)

    report = complete_many(
        db,
        [
            Completion(task_id=first.id, lease_token=first.lease_token, result=1),
            Completion(task_id=second.id, lease_token="not-the-token", result=2),
            Completion(task_id=third.id, lease_token=third.lease_token, result=3),
            Completion(task_id=10_000_000, lease_token="no-such-task"),
        ],
    )

    assert report.finished == {first.id: TaskStatus.COMPLETED, third.id: TaskStatus.CANCELLED}
    assert report.lost == frozenset({second.id, 10_000_000})
    assert raw_task(db, second.id) == before


def test_a_reclaimed_task_cannot_be_completed_by_its_former_holder(db: QueueDatabase) -> None:
    enqueue_many(db, [NewTask(type="t")])
    [zombie] = claim_tasks(db, "zombie", lease_seconds=0.001)
    # The lease is a millisecond long: reclaim it as soon as it has expired.
    while reclaim_expired_leases(db).total == 0:
        pass
    [owner] = claim_tasks(db, "owner")
    report = complete_many(db, [Completion(task_id=zombie.id, lease_token=zombie.lease_token)])
    assert report.lost == frozenset({zombie.id})
    assert get_task(db, owner.id).status is TaskStatus.LEASED
    assert get_task(db, owner.id).locked_by == "owner"


def test_an_empty_batch_does_nothing(db: QueueDatabase) -> None:
    report = complete_many(db, [])
    assert report.finished == {}
    assert report.lost == frozenset()


def test_bad_input_is_refused_before_anything_is_written(db: QueueDatabase) -> None:
    enqueue_many(db, [NewTask(type="t") for _ in range(2)])
    good, other = claim_tasks(db, "w", 2)
    with pytest.raises(InvalidPayloadError) as info:
        complete_many(
            db,
            [
                Completion(task_id=good.id, lease_token=good.lease_token, result="fine"),
                Completion(task_id=other.id, lease_token=other.lease_token, result=object()),
            ],
        )
    assert info.value.field == "completions[1].result"
    with pytest.raises(InvalidTaskError) as not_a_completion:
        complete_many(db, [(good.id, good.lease_token)])  # type: ignore[list-item]
    assert not_a_completion.value.field == "completions[0]"
    assert get_task(db, good.id).status is TaskStatus.LEASED
