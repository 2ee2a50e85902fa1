"""Conformance: fencing, complete, fail/retry/backoff, leases, reclaim, release, cancel.

Runs unchanged on SQLite and PostgreSQL (``PRISMQ_TEST_BACKEND``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

import pytest
from conformance_support import (
    CLOCK_TOLERANCE,
    db_now,
    lease_token_of,
    poll_until,
    raw_task,
)

from prismq.queue import (
    DEFAULT_RETRY_POLICY,
    TERMINAL_STATUSES,
    ClaimedTask,
    InvalidPayloadError,
    InvalidStateTransitionError,
    InvalidTaskError,
    LeaseLostError,
    QueueDatabase,
    RetryPolicy,
    TaskNotFoundError,
    TaskStatus,
    cancel,
    claim_tasks,
    complete,
    enqueue,
    fail,
    get_task,
    reclaim_expired_leases,
    release,
    renew_lease,
    renew_leases,
    request_cancel,
    retry_failed,
    set_progress,
)

UNKNOWN_ID = 987_654_321


def _claim_one(db: QueueDatabase, worker: str = "w", **kwargs: Any) -> ClaimedTask:
    [claimed] = claim_tasks(db, worker, 1, **kwargs)
    return claimed


def _enqueue_and_claim(db: QueueDatabase, **kwargs: Any) -> ClaimedTask:
    task_id = enqueue(db, "t", **kwargs).task_id
    claimed = _claim_one(db)
    assert claimed.id == task_id
    return claimed


def _reclaim_until(db: QueueDatabase, task_ids: set[int]) -> dict[str, set[int]]:
    """Run reclaim until every task in ``task_ids`` was reclaimed; where each one went."""
    went: dict[str, set[int]] = {"requeued": set(), "failed": set(), "cancelled": set()}

    def all_reclaimed() -> bool:
        result = reclaim_expired_leases(db)
        went["requeued"] |= set(result.requeued)
        went["failed"] |= set(result.failed)
        went["cancelled"] |= set(result.cancelled)
        assert result.total == len(result.requeued) + len(result.failed) + len(result.cancelled)
        return task_ids <= went["requeued"] | went["failed"] | went["cancelled"]

    poll_until(all_reclaimed, what=f"the leases of {sorted(task_ids)} to expire")
    return went


# --------------------------------------------------------------------------- fencing

#: Each fenced call, given (db, task id, token); all must raise LeaseLostError on a bad token.
FENCED: dict[str, Callable[[QueueDatabase, int, str], object]] = {
    "complete": lambda db, i, token: complete(db, i, token, {"r": 1}),
    "fail": lambda db, i, token: fail(db, i, token, "boom"),
    "fail-final": lambda db, i, token: fail(db, i, token, "boom", retryable=False),
    "renew_lease": lambda db, i, token: renew_lease(db, i, token, 60),
    "set_progress": lambda db, i, token: set_progress(db, i, token, {"p": 50}),
    "release": release,
}


@pytest.mark.parametrize("action", list(FENCED))
def test_a_wrong_token_changes_nothing(db: QueueDatabase, action: str) -> None:
    claimed = _enqueue_and_claim(db)
    before = raw_task(db, claimed.id)
    for token in ("not-the-token", "", claimed.lease_token.upper() + "x"):
        with pytest.raises(LeaseLostError) as info:
            FENCED[action](db, claimed.id, token)
        assert info.value.task_id == claimed.id
    assert raw_task(db, claimed.id) == before


@pytest.mark.parametrize("action", list(FENCED))
def test_a_stale_token_of_a_reclaimed_task_changes_nothing(db: QueueDatabase, action: str) -> None:
    # A zombie worker: its lease expired, the task was reclaimed and leased to another.
    zombie = _short_lease(db)
    _reclaim_until(db, {zombie.id})
    current = _claim_one(db, "w2", lease_seconds=60)
    assert current.id == zombie.id
    assert current.lease_token != zombie.lease_token
    before = raw_task(db, zombie.id)
    with pytest.raises(LeaseLostError):
        FENCED[action](db, zombie.id, zombie.lease_token)
    assert raw_task(db, zombie.id) == before
    # The new holder's token works.
    assert complete(db, current.id, current.lease_token) is TaskStatus.COMPLETED


def _short_lease(db: QueueDatabase, **kwargs: Any) -> ClaimedTask:
    task_id = enqueue(db, "t", **kwargs).task_id
    claimed = _claim_one(db, lease_seconds=0.05)
    assert claimed.id == task_id
    return claimed


def test_reclaimed_task_is_completed_by_the_new_holder_only(db: QueueDatabase) -> None:
    old = _short_lease(db)
    went = _reclaim_until(db, {old.id})
    assert went["requeued"] == {old.id}
    new = _claim_one(db, "w2", lease_seconds=60)
    assert new.id == old.id
    assert new.attempt == 2
    with pytest.raises(LeaseLostError):
        complete(db, old.id, old.lease_token, "zombie result")
    assert complete(db, new.id, new.lease_token, "real result") is TaskStatus.COMPLETED
    done = get_task(db, old.id)
    assert done.result == "real result"
    assert done.locked_by == "w2"
    assert done.attempts == 2


@pytest.mark.parametrize("action", list(FENCED))
def test_fenced_calls_on_an_unknown_task(db: QueueDatabase, action: str) -> None:
    with pytest.raises(TaskNotFoundError) as info:
        FENCED[action](db, UNKNOWN_ID, "token")
    assert info.value.task_id == UNKNOWN_ID


@pytest.mark.parametrize("action", list(FENCED))
def test_fenced_calls_on_a_queued_task(db: QueueDatabase, action: str) -> None:
    task = enqueue(db, "t").task
    with pytest.raises(LeaseLostError):
        FENCED[action](db, task.id, "token")
    assert get_task(db, task.id) == task


def test_complete_twice_is_rejected(db: QueueDatabase) -> None:
    claimed = _enqueue_and_claim(db)
    assert complete(db, claimed.id, claimed.lease_token, 1) is TaskStatus.COMPLETED
    after_first = raw_task(db, claimed.id)
    with pytest.raises(LeaseLostError):
        complete(db, claimed.id, claimed.lease_token, 2)
    with pytest.raises(LeaseLostError):
        fail(db, claimed.id, claimed.lease_token, "late failure")
    assert raw_task(db, claimed.id) == after_first
    assert get_task(db, claimed.id).result == 1


# --------------------------------------------------------------------------- complete


@pytest.mark.parametrize(
    "result",
    [None, 0, "done", 3.25, True, [1, "two", None], {"rows": 3, "nested": {"ok": [True]}}],
    ids=lambda r: type(r).__name__,
)
def test_complete_stores_the_result(db: QueueDatabase, result: Any) -> None:
    claimed = _enqueue_and_claim(db)
    before = db_now(db)
    assert complete(db, claimed.id, claimed.lease_token, result) is TaskStatus.COMPLETED
    after = db_now(db)
    done = get_task(db, claimed.id)
    assert done.status is TaskStatus.COMPLETED
    assert done.result == result
    assert type(done.result) is type(result)
    assert done.finished_at_utc is not None
    assert before <= done.finished_at_utc <= after
    assert done.updated_at_utc == done.finished_at_utc
    assert done.lease_until_utc is None
    assert done.error_message is None
    assert done.attempts == 1
    assert lease_token_of(db, claimed.id) is None


def test_complete_rejects_a_result_that_is_not_json(db: QueueDatabase) -> None:
    claimed = _enqueue_and_claim(db)
    before = raw_task(db, claimed.id)
    for bad in (object(), {"x": float("nan")}, {1, 2}):
        with pytest.raises(InvalidPayloadError) as info:
            complete(db, claimed.id, claimed.lease_token, bad)
        assert info.value.field == "result"
    assert raw_task(db, claimed.id) == before
    assert complete(db, claimed.id, claimed.lease_token) is TaskStatus.COMPLETED


def test_complete_after_cancel_request_ends_cancelled(db: QueueDatabase) -> None:
    claimed = _enqueue_and_claim(db)
    assert request_cancel(db, claimed.id) is TaskStatus.LEASED
    assert complete(db, claimed.id, claimed.lease_token, {"partial": True}) is (
        TaskStatus.CANCELLED
    )
    done = get_task(db, claimed.id)
    assert done.status is TaskStatus.CANCELLED
    assert done.finished_at_utc is not None
    assert lease_token_of(db, claimed.id) is None


# --------------------------------------------------------------------------- fail and retry


def test_retryable_failure_requeues_with_backoff(db: QueueDatabase) -> None:
    claimed = _enqueue_and_claim(db, max_attempts=3)
    status = fail(db, claimed.id, claimed.lease_token, "temporary outage")
    assert status is TaskStatus.QUEUED
    task = get_task(db, claimed.id)
    assert task.status is TaskStatus.QUEUED
    assert task.error_message == "temporary outage"
    assert task.attempts == 1
    assert task.lease_until_utc is None
    assert task.locked_by is None
    assert task.finished_at_utc is None
    assert lease_token_of(db, claimed.id) is None
    # Default policy: 1 s ± 10 % after the first attempt, on the database clock.
    delay = (task.run_after_utc - task.updated_at_utc).total_seconds()
    assert 0.9 - 0.003 <= delay <= 1.1 + 0.003
    assert claim_tasks(db, "w", 10) == []


POLICY = RetryPolicy(base_seconds=0.2, factor=2, jitter=0.1)


def test_backoff_grows_exponentially_on_the_database_clock(db: QueueDatabase) -> None:
    task_id = enqueue(db, "t", max_attempts=4).task_id
    retry_at = get_task(db, task_id).run_after_utc
    for attempt, nominal in ((1, 0.2), (2, 0.4), (3, 0.8)):
        claimed = poll_until(
            lambda: claim_tasks(db, "w", 1), what=f"attempt {attempt} to become claimable"
        )[0]
        assert (claimed.id, claimed.attempt) == (task_id, attempt)
        # Claimed no earlier than the backoff allowed (database clock).
        reserved = get_task(db, task_id).reserved_at_utc
        assert reserved is not None
        assert reserved >= retry_at
        assert fail(db, task_id, claimed.lease_token, f"e{attempt}", retry_policy=POLICY) is (
            TaskStatus.QUEUED
        )
        task = get_task(db, task_id)
        retry_at = task.run_after_utc
        delay = task.run_after_utc - task.updated_at_utc
        low = dt.timedelta(seconds=nominal * 0.9) - CLOCK_TOLERANCE
        high = dt.timedelta(seconds=nominal * 1.1) + CLOCK_TOLERANCE
        assert low <= delay <= high, (attempt, delay)
        # Not claimable before its time.
        assert claim_tasks(db, "w", 1) == []
    final = poll_until(lambda: claim_tasks(db, "w", 1), what="the last attempt")[0]
    assert final.attempt == 4
    assert fail(db, task_id, final.lease_token, "e4", retry_policy=POLICY) is TaskStatus.FAILED


def test_max_attempts_exhausted_goes_to_dead_letters(db: QueueDatabase) -> None:
    task_id = enqueue(db, "t", max_attempts=2).task_id
    zero_backoff = RetryPolicy(base_seconds=0, jitter=0)
    first = _claim_one(db)
    assert fail(db, task_id, first.lease_token, "one", retry_policy=zero_backoff) is (
        TaskStatus.QUEUED
    )
    second = _claim_one(db)
    assert second.attempt == 2
    before = db_now(db)
    assert fail(db, task_id, second.lease_token, "two", retry_policy=zero_backoff) is (
        TaskStatus.FAILED
    )
    dead = get_task(db, task_id)
    assert dead.status is TaskStatus.FAILED
    assert dead.error_message == "two"
    assert dead.attempts == 2
    assert dead.finished_at_utc is not None
    assert dead.finished_at_utc >= before
    assert dead.lease_until_utc is None
    assert lease_token_of(db, task_id) is None
    assert claim_tasks(db, "w", 10) == []


def test_non_retryable_failure_fails_at_once(db: QueueDatabase) -> None:
    claimed = _enqueue_and_claim(db, max_attempts=5)
    assert fail(db, claimed.id, claimed.lease_token, "bad input", retryable=False) is (
        TaskStatus.FAILED
    )
    dead = get_task(db, claimed.id)
    assert (dead.status, dead.attempts, dead.error_message) == (
        TaskStatus.FAILED,
        1,
        "bad input",
    )
    assert dead.finished_at_utc is not None
    assert claim_tasks(db, "w", 10) == []


def test_fail_after_cancel_request_ends_cancelled(db: QueueDatabase) -> None:
    claimed = _enqueue_and_claim(db)
    request_cancel(db, claimed.id)
    assert fail(db, claimed.id, claimed.lease_token, "interrupted") is TaskStatus.CANCELLED
    task = get_task(db, claimed.id)
    assert task.status is TaskStatus.CANCELLED
    assert task.finished_at_utc is not None


def test_long_error_messages_are_cut(db: QueueDatabase) -> None:
    claimed = _enqueue_and_claim(db)
    fail(db, claimed.id, claimed.lease_token, "x" * 50_000, retryable=False)
    message = get_task(db, claimed.id).error_message
    assert message is not None
    assert 1000 <= len(message) < 50_000
    assert set(message) == {"x"}


# --------------------------------------------------------------------------- RetryPolicy


def test_retry_policy_defaults() -> None:
    assert RetryPolicy() == DEFAULT_RETRY_POLICY
    assert (RetryPolicy().base_seconds, RetryPolicy().factor) == (1.0, 2.0)
    assert (RetryPolicy().max_seconds, RetryPolicy().jitter) == (300.0, 0.1)


def test_retry_policy_without_jitter_is_exact_exponential() -> None:
    policy = RetryPolicy(base_seconds=0.5, factor=3, max_seconds=1000, jitter=0)
    assert [policy.delay_seconds(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 13.5]
    assert policy.delay_seconds(0) == 0.5


def test_retry_policy_is_capped() -> None:
    policy = RetryPolicy(base_seconds=1, factor=2, max_seconds=300, jitter=0.1)
    rng = random.Random(1)
    for attempts in (10, 20, 100, 10_000):
        assert policy.delay_seconds(attempts, rng) <= 300
    assert RetryPolicy(jitter=0).delay_seconds(10_000) == 300


def test_retry_policy_jitter_stays_in_bounds() -> None:
    rng = random.Random(7)
    for attempts, nominal in ((1, 0.2), (2, 0.4), (3, 0.8)):
        delays = [POLICY.delay_seconds(attempts, rng) for _ in range(500)]
        assert all(nominal * 0.9 <= d <= nominal * 1.1 for d in delays)
        # It really spreads: both halves of the band are used.
        assert min(delays) < nominal * 0.95
        assert max(delays) > nominal * 1.05


def test_retry_policy_is_reproducible_with_a_seeded_rng() -> None:
    first = [POLICY.delay_seconds(n, random.Random(42)) for n in range(1, 6)]
    second = [POLICY.delay_seconds(n, random.Random(42)) for n in range(1, 6)]
    assert first == second
    other = [POLICY.delay_seconds(n, random.Random(43)) for n in range(1, 6)]
    assert other != first


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_seconds": -1},
        {"max_seconds": -1},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1},
        {"jitter": 1.5},
    ],
)
def test_invalid_retry_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidTaskError) as info:
        RetryPolicy(**kwargs)
    assert info.value.field == "retry_policy"


# --------------------------------------------------------------------------- leases


def test_renew_lease_extends_it(db: QueueDatabase) -> None:
    claimed = _claim_one_fresh(db, lease_seconds=5)
    assert renew_lease(db, claimed.id, claimed.lease_token, 120) is False
    task = get_task(db, claimed.id)
    assert task.lease_until_utc is not None
    extended = task.lease_until_utc - task.updated_at_utc
    assert abs(extended - dt.timedelta(seconds=120)) <= CLOCK_TOLERANCE
    assert task.status is TaskStatus.LEASED
    assert task.attempts == 1
    assert lease_token_of(db, claimed.id) == claimed.lease_token


def _claim_one_fresh(db: QueueDatabase, **kwargs: Any) -> ClaimedTask:
    task_id = enqueue(db, "t").task_id
    claimed = _claim_one(db, **kwargs)
    assert claimed.id == task_id
    return claimed


def test_a_renewed_lease_is_not_reclaimed(db: QueueDatabase) -> None:
    claimed = _claim_one_fresh(db, lease_seconds=0.2)
    renew_lease(db, claimed.id, claimed.lease_token, 60)
    other = _short_lease(db)
    went = _reclaim_until(db, {other.id})
    assert claimed.id not in went["requeued"] | went["failed"] | went["cancelled"]
    assert get_task(db, claimed.id).status is TaskStatus.LEASED


def test_renew_leases_reports_renewed_lost_and_cancel_requested(db: QueueDatabase) -> None:
    ids = [enqueue(db, "t").task_id for _ in range(5)]
    claimed = {t.id: t for t in claim_tasks(db, "w", 5, lease_seconds=30)}
    keep, cancelled, finished, released, _ = ids
    complete(db, finished, claimed[finished].lease_token)
    release(db, released, claimed[released].lease_token)
    request_cancel(db, cancelled)
    leases = {i: claimed[i].lease_token for i in ids}
    leases[ids[4]] = "forged-token"
    leases[UNKNOWN_ID] = "whatever"
    before = {i: get_task(db, i) for i in ids}

    renewal = renew_leases(db, leases, 90)

    assert renewal.renewed == {keep, cancelled}
    assert renewal.lost == {finished, released, ids[4], UNKNOWN_ID}
    assert renewal.cancel_requested == {cancelled}
    for i in (keep, cancelled):
        until = get_task(db, i).lease_until_utc
        assert until is not None
        assert until > before[i].lease_until_utc  # type: ignore[operator]
    for i in (finished, released, ids[4]):
        assert get_task(db, i) == before[i]
    assert renew_leases(db, {}, 90).renewed == frozenset()


def test_set_progress_stores_json_and_reports_cancel(db: QueueDatabase) -> None:
    claimed = _claim_one_fresh(db)
    assert set_progress(db, claimed.id, claimed.lease_token, {"done": 3, "of": 10}) is False
    assert get_task(db, claimed.id).progress == {"done": 3, "of": 10}
    assert set_progress(db, claimed.id, claimed.lease_token, 0.5) is False
    assert get_task(db, claimed.id).progress == 0.5
    before = raw_task(db, claimed.id)
    with pytest.raises(InvalidPayloadError):
        set_progress(db, claimed.id, claimed.lease_token, object())
    assert raw_task(db, claimed.id) == before
    request_cancel(db, claimed.id)
    assert set_progress(db, claimed.id, claimed.lease_token, {"done": 4}) is True
    assert renew_lease(db, claimed.id, claimed.lease_token) is True


# --------------------------------------------------------------------------- reclaim


def test_reclaim_expired_leases(db: QueueDatabase) -> None:
    requeue = _short_lease(db, max_attempts=5)
    exhausted = _short_lease(db, max_attempts=1)
    cancelled = _short_lease(db, max_attempts=5)
    request_cancel(db, cancelled.id)
    healthy = _claim_one_fresh(db, lease_seconds=300)

    went = _reclaim_until(db, {requeue.id, exhausted.id, cancelled.id})
    assert went == {
        "requeued": {requeue.id},
        "failed": {exhausted.id},
        "cancelled": {cancelled.id},
    }

    back = get_task(db, requeue.id)
    assert back.status is TaskStatus.QUEUED
    assert back.attempts == 1  # the lost attempt stays counted
    assert back.error_message is not None
    assert "lease" in back.error_message
    assert back.lease_until_utc is None
    assert back.locked_by is None
    assert back.finished_at_utc is None
    assert back.run_after_utc <= db_now(db)
    assert lease_token_of(db, requeue.id) is None

    dead = get_task(db, exhausted.id)
    assert dead.status is TaskStatus.FAILED
    assert dead.error_message is not None
    assert dead.finished_at_utc is not None

    gone = get_task(db, cancelled.id)
    assert gone.status is TaskStatus.CANCELLED
    assert gone.finished_at_utc is not None

    # The unexpired lease is untouched.
    still = get_task(db, healthy.id)
    assert still.status is TaskStatus.LEASED
    assert lease_token_of(db, healthy.id) == healthy.lease_token

    # Idempotent: nothing left to reclaim.
    again = reclaim_expired_leases(db)
    assert (again.requeued, again.failed, again.cancelled, again.total) == ([], [], [], 0)

    # The requeued task is ready at once and counts its next attempt.
    retried = _claim_one(db, "w2", lease_seconds=60)
    assert (retried.id, retried.attempt) == (requeue.id, 2)


def test_reclaim_with_nothing_expired(db: QueueDatabase) -> None:
    leased = _claim_one_fresh(db, lease_seconds=300)
    queued = enqueue(db, "t").task
    result = reclaim_expired_leases(db)
    assert result.total == 0
    assert get_task(db, queued.id) == queued
    assert get_task(db, leased.id).status is TaskStatus.LEASED


# --------------------------------------------------------------------------- release


def test_release_gives_the_task_back_without_counting_the_attempt(db: QueueDatabase) -> None:
    claimed = _claim_one_fresh(db, lease_seconds=300)
    assert release(db, claimed.id, claimed.lease_token) is TaskStatus.QUEUED
    task = get_task(db, claimed.id)
    assert task.status is TaskStatus.QUEUED
    assert task.attempts == 0
    assert task.lease_until_utc is None
    assert task.locked_by is None
    assert task.finished_at_utc is None
    assert task.run_after_utc == task.updated_at_utc  # ready now
    assert lease_token_of(db, claimed.id) is None
    again = _claim_one(db, "w2")
    assert (again.id, again.attempt) == (claimed.id, 1)
    assert again.lease_token != claimed.lease_token


def test_release_with_cancel_requested_cancels(db: QueueDatabase) -> None:
    claimed = _claim_one_fresh(db)
    request_cancel(db, claimed.id)
    assert release(db, claimed.id, claimed.lease_token) is TaskStatus.CANCELLED
    task = get_task(db, claimed.id)
    assert task.status is TaskStatus.CANCELLED
    assert task.finished_at_utc is not None
    assert claim_tasks(db, "w", 10) == []


# --------------------------------------------------------------------------- cancel


def test_cancel_a_queued_task(db: QueueDatabase) -> None:
    task = enqueue(db, "t").task
    assert request_cancel(db, task.id) is TaskStatus.CANCELLED
    gone = get_task(db, task.id)
    assert gone.status is TaskStatus.CANCELLED
    assert gone.cancel_requested is True
    assert gone.finished_at_utc is not None
    assert gone.attempts == 0
    assert claim_tasks(db, "w", 10) == []


def test_cancel_a_leased_task_flags_it(db: QueueDatabase) -> None:
    claimed = _claim_one_fresh(db)
    assert cancel(db, claimed.id) is TaskStatus.LEASED
    task = get_task(db, claimed.id)
    assert task.status is TaskStatus.LEASED
    assert task.cancel_requested is True
    assert task.finished_at_utc is None
    assert lease_token_of(db, claimed.id) == claimed.lease_token
    assert renew_lease(db, claimed.id, claimed.lease_token) is True
    assert set_progress(db, claimed.id, claimed.lease_token, 1) is True
    # Asking again is harmless.
    assert request_cancel(db, claimed.id) is TaskStatus.LEASED


def _task_in(db: QueueDatabase, status: TaskStatus) -> int:
    task_id = enqueue(db, "t").task_id
    if status is TaskStatus.QUEUED:
        return task_id
    claimed = _claim_one(db)
    if status is TaskStatus.COMPLETED:
        complete(db, task_id, claimed.lease_token)
    elif status is TaskStatus.FAILED:
        fail(db, task_id, claimed.lease_token, "dead", retryable=False)
    elif status is TaskStatus.CANCELLED:
        request_cancel(db, task_id)
        complete(db, task_id, claimed.lease_token)
    assert get_task(db, task_id).status is status
    return task_id


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES), ids=lambda s: s.value)
def test_cancel_a_finished_task_is_rejected(db: QueueDatabase, status: TaskStatus) -> None:
    task_id = _task_in(db, status)
    before = get_task(db, task_id)
    with pytest.raises(InvalidStateTransitionError) as info:
        request_cancel(db, task_id)
    assert info.value.task_id == task_id
    assert info.value.status == status.value
    assert get_task(db, task_id) == before


def test_cancel_an_unknown_task(db: QueueDatabase) -> None:
    with pytest.raises(TaskNotFoundError):
        request_cancel(db, UNKNOWN_ID)


# --------------------------------------------------------------------------- retry_failed


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.CANCELLED], ids=lambda s: s.value)
def test_retry_failed_queues_the_task_again(db: QueueDatabase, status: TaskStatus) -> None:
    task_id = _task_in(db, status)
    retried = retry_failed(db, task_id)
    assert retried == get_task(db, task_id)
    assert retried.status is TaskStatus.QUEUED
    assert retried.attempts == 0
    assert retried.cancel_requested is False
    assert retried.finished_at_utc is None
    assert retried.result is None
    assert retried.run_after_utc == retried.updated_at_utc  # ready now
    again = _claim_one(db)
    assert (again.id, again.attempt) == (task_id, 1)
    assert complete(db, task_id, again.lease_token, "second time") is TaskStatus.COMPLETED


@pytest.mark.parametrize(
    "status",
    [TaskStatus.QUEUED, TaskStatus.LEASED, TaskStatus.COMPLETED],
    ids=lambda s: s.value,
)
def test_retry_failed_rejects_other_statuses(db: QueueDatabase, status: TaskStatus) -> None:
    task_id = _task_in(db, status)
    before = get_task(db, task_id)
    with pytest.raises(InvalidStateTransitionError) as info:
        retry_failed(db, task_id)
    assert info.value.status == status.value
    assert get_task(db, task_id) == before


def test_retry_failed_unknown_task(db: QueueDatabase) -> None:
    with pytest.raises(TaskNotFoundError):
        retry_failed(db, UNKNOWN_ID)
