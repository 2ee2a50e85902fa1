"""Metrics: depth, backlog age, throughput and processing-time percentiles.

Runs unchanged on SQLite and PostgreSQL (``PRISMQ_TEST_BACKEND``). Tasks are brought into
their states through the public API; only their timestamps are moved into the past by
direct SQL, relative to the database clock, so every expected value is exact.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from conformance_support import db_now
from sqlalchemy import update

from prismq.queue import (
    NewTask,
    QueueDatabase,
    StatusCounts,
    TaskStatus,
    claim_tasks,
    complete,
    enqueue,
    enqueue_many,
    fail,
    oldest_queued_age_seconds,
    processing_time_percentiles,
    queue_depth,
    queue_stats,
    request_cancel,
    throughput,
)
from prismq.queue.models import task_table

# Generous: the database clock moves on between setting a timestamp and measuring an age.
AGE_SLACK_SECONDS = 10.0


def set_columns(db: QueueDatabase, task_ids: list[int], **values: Any) -> None:
    """Overwrite columns of tasks directly: the only way to put their times in the past."""
    with db.write() as conn:
        conn.execute(update(task_table).where(task_table.c.id.in_(task_ids)).values(**values))


def finish(db: QueueDatabase, task_type: str, outcome: str, *, queue: str = "default") -> int:
    """Enqueue one task and take it to ``outcome``: completed, failed, leased, cancelled."""
    task_id = enqueue(db, task_type, queue=queue).task_id
    if outcome == "cancelled":
        assert request_cancel(db, task_id) is TaskStatus.CANCELLED
        return task_id
    # LIFO: the task just enqueued, not an older queued one of the same type.
    [claimed] = claim_tasks(
        db, "metrics-worker", 1, strategy="lifo", task_types=[task_type], queues=[queue]
    )
    assert claimed.id == task_id
    if outcome == "completed":
        assert complete(db, task_id, claimed.lease_token) is TaskStatus.COMPLETED
    elif outcome == "failed":
        status = fail(db, task_id, claimed.lease_token, "boom", retryable=False)
        assert status is TaskStatus.FAILED
    else:
        assert outcome == "leased"
    return task_id


# -- queue_depth / queue_stats -----------------------------------------------------------


def test_empty_queue_reports_zeros_and_none(db: QueueDatabase) -> None:
    depth = queue_depth(db)
    assert depth.by_status == StatusCounts()
    assert depth.by_status.total == 0
    assert depth.by_type == {}
    assert depth.by_queue == {}
    assert oldest_queued_age_seconds(db) is None
    rate = throughput(db)
    assert (rate.completed, rate.failed, rate.completed_per_second) == (0, 0, 0.0)
    assert rate.success_rate is None
    times = processing_time_percentiles(db)
    assert (times.sample_size, times.p50, times.p95, times.p99) == (0, None, None, None)
    stats = queue_stats(db)
    assert stats.total_tasks == 0
    assert stats.oldest_queued_age_seconds is None


def test_queue_depth_counts_every_status_per_type_and_queue(db: QueueDatabase) -> None:
    enqueue_many(db, [NewTask(type="email"), NewTask(type="email"), NewTask(type="resize")])
    enqueue(db, "email", queue="bulk")
    finish(db, "email", "leased")
    finish(db, "email", "completed")
    finish(db, "email", "completed", queue="bulk")
    finish(db, "resize", "failed")
    finish(db, "resize", "cancelled")
    finish(db, "report", "completed", queue="bulk")

    depth = queue_depth(db)

    assert depth.by_status == StatusCounts(queued=4, leased=1, completed=3, failed=1, cancelled=1)
    assert depth.by_status.total == 10
    assert depth.by_type == {
        "email": StatusCounts(queued=3, leased=1, completed=2),
        "report": StatusCounts(completed=1),
        "resize": StatusCounts(queued=1, failed=1, cancelled=1),
    }
    assert list(depth.by_type) == ["email", "report", "resize"]
    assert depth.by_queue == {
        "bulk": StatusCounts(queued=1, completed=2),
        "default": StatusCounts(queued=3, leased=1, completed=1, failed=1, cancelled=1),
    }
    assert depth.by_type["resize"].count(TaskStatus.FAILED) == 1
    assert depth.by_type["resize"].count("queued") == 1
    assert depth.by_queue["bulk"].as_dict() == {
        "queued": 1,
        "leased": 0,
        "completed": 2,
        "failed": 0,
        "cancelled": 0,
        "total": 3,
    }


def test_queue_stats_bundles_counts_breakdowns_and_backlog_age(db: QueueDatabase) -> None:
    queued = enqueue(db, "email").task_id
    finish(db, "email", "leased")
    finish(db, "resize", "completed", queue="images")
    finish(db, "resize", "failed", queue="images")
    finish(db, "email", "cancelled")
    two_minutes_ago = db_now(db) - dt.timedelta(seconds=120)
    set_columns(db, [queued], created_at_utc=two_minutes_ago, run_after_utc=two_minutes_ago)

    stats = queue_stats(db)

    assert (
        stats.total_tasks,
        stats.queued_tasks,
        stats.processing_tasks,
        stats.completed_tasks,
        stats.failed_tasks,
        stats.cancelled_tasks,
    ) == (5, 1, 1, 1, 1, 1)
    assert stats.oldest_queued_age_seconds is not None
    assert 120.0 <= stats.oldest_queued_age_seconds < 120.0 + AGE_SLACK_SECONDS
    assert stats.by_type == {
        "email": StatusCounts(queued=1, leased=1, cancelled=1),
        "resize": StatusCounts(completed=1, failed=1),
    }
    assert stats.by_queue == {
        "default": StatusCounts(queued=1, leased=1, cancelled=1),
        "images": StatusCounts(completed=1, failed=1),
    }
    assert stats.measured_at_utc.utcoffset() == dt.timedelta(0)
    document = json.loads(json.dumps(stats.as_dict()))
    assert document["processing_tasks"] == 1
    assert document["by_queue"]["images"] == {
        "queued": 0,
        "leased": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
        "total": 2,
    }
    assert dt.datetime.fromisoformat(document["measured_at_utc"]) == stats.measured_at_utc


# -- oldest_queued_age_seconds -----------------------------------------------------------


def test_oldest_age_counts_only_ready_tasks_from_when_they_became_ready(
    db: QueueDatabase,
) -> None:
    now = db_now(db)
    created_long_ago_ready_recently = enqueue(db, "t").task_id
    set_columns(
        db,
        [created_long_ago_ready_recently],
        created_at_utc=now - dt.timedelta(seconds=5000),
        run_after_utc=now - dt.timedelta(seconds=30),
    )
    # Older still, but not backlog: delayed into the future, running, or finished.
    delayed = enqueue(db, "t", delay_seconds=3600).task_id
    leased = finish(db, "t", "leased")
    cancelled = finish(db, "t", "cancelled")
    set_columns(db, [delayed, leased, cancelled], created_at_utc=now - dt.timedelta(days=3))

    age = oldest_queued_age_seconds(db)
    assert age is not None
    assert 30.0 <= age < 30.0 + AGE_SLACK_SECONDS

    ready_since_creation = enqueue(db, "t").task_id
    set_columns(
        db,
        [ready_since_creation],
        created_at_utc=now - dt.timedelta(seconds=200),
        run_after_utc=now - dt.timedelta(seconds=900),  # an explicit time in the past
    )
    age = oldest_queued_age_seconds(db)
    assert age is not None
    assert 200.0 <= age < 200.0 + AGE_SLACK_SECONDS


def test_oldest_age_is_none_when_every_queued_task_waits_for_later(db: QueueDatabase) -> None:
    enqueue(db, "t", delay_seconds=600)
    finish(db, "t", "completed")
    assert oldest_queued_age_seconds(db) is None
    assert queue_stats(db).oldest_queued_age_seconds is None


# -- throughput --------------------------------------------------------------------------


def test_throughput_counts_outcomes_finished_within_the_window(db: QueueDatabase) -> None:
    recent_completed = [finish(db, "t", "completed") for _ in range(3)]
    recent_failed = finish(db, "t", "failed")
    old_completed = [finish(db, "t", "completed") for _ in range(2)]
    old_failed = finish(db, "t", "failed")
    finish(db, "t", "cancelled")  # neither a success nor a failure
    finish(db, "t", "leased")
    # A failed attempt that will be retried has not finished.
    retried = enqueue(db, "retry-me").task_id
    [claimed] = claim_tasks(db, "w", 1, task_types=["retry-me"])
    assert fail(db, retried, claimed.lease_token, "transient") is TaskStatus.QUEUED

    now = db_now(db)
    set_columns(
        db, [*recent_completed, recent_failed], finished_at_utc=now - dt.timedelta(seconds=60)
    )
    set_columns(db, [*old_completed, old_failed], finished_at_utc=now - dt.timedelta(seconds=1000))

    rate = throughput(db, window_seconds=300)
    assert rate.window_seconds == 300.0
    assert (rate.completed, rate.failed) == (3, 1)
    assert rate.completed_per_second == pytest.approx(3 / 300)
    assert rate.success_rate == pytest.approx(0.75)

    wide = throughput(db, window_seconds=3600)
    assert (wide.completed, wide.failed) == (5, 2)
    assert wide.success_rate == pytest.approx(5 / 7)

    narrow = throughput(db, window_seconds=10)
    assert (narrow.completed, narrow.failed, narrow.success_rate) == (0, 0, None)


def test_success_rate_is_zero_when_everything_failed(db: QueueDatabase) -> None:
    finish(db, "t", "failed")
    rate = throughput(db)
    assert (rate.completed, rate.failed, rate.success_rate) == (0, 1, 0.0)


# -- processing_time_percentiles ---------------------------------------------------------


@pytest.fixture
def twenty_completions(db: QueueDatabase) -> QueueDatabase:
    """Task i (1..20) finished 10*i seconds ago after running exactly i seconds."""
    ids = [finish(db, "t", "completed") for _ in range(20)]
    now = db_now(db)
    for i, task_id in enumerate(ids, start=1):
        finished = now - dt.timedelta(seconds=10 * i)
        set_columns(
            db,
            [task_id],
            finished_at_utc=finished,
            processing_started_utc=finished - dt.timedelta(seconds=i),
        )
    # Outside every window used below, or not completed: never part of the sample.
    old = finish(db, "t", "completed")
    set_columns(
        db,
        [old],
        finished_at_utc=now - dt.timedelta(seconds=5000),
        processing_started_utc=now - dt.timedelta(seconds=9000),
    )
    failed = finish(db, "t", "failed")
    set_columns(db, [failed], processing_started_utc=now - dt.timedelta(seconds=7000))
    return db


def test_percentiles_interpolate_between_closest_ranks(twenty_completions: QueueDatabase) -> None:
    times = processing_time_percentiles(twenty_completions, window_seconds=300)
    assert times.window_seconds == 300.0
    assert times.sample_size == 20
    # Durations 1..20: rank q*(n-1) interpolated linearly.
    assert times.p50 == pytest.approx(10.5)
    assert times.p95 == pytest.approx(19.05)
    assert times.p99 == pytest.approx(19.81)


def test_percentiles_only_see_the_window(twenty_completions: QueueDatabase) -> None:
    # Finished 10..100 s ago (durations 1..10) are in; 110 s ago is out.
    times = processing_time_percentiles(twenty_completions, window_seconds=105)
    assert times.sample_size == 10
    assert times.p50 == pytest.approx(5.5)
    assert times.p95 == pytest.approx(9.55)
    assert times.p99 == pytest.approx(9.91)


def test_percentiles_sample_the_most_recent_completions(
    twenty_completions: QueueDatabase,
) -> None:
    times = processing_time_percentiles(twenty_completions, window_seconds=300, sample_limit=4)
    assert times.sample_size == 4
    assert times.p50 == pytest.approx(2.5)
    assert times.p95 == pytest.approx(3.85)
    assert times.p99 == pytest.approx(3.97)


def test_percentiles_of_a_single_completion_all_equal_it(db: QueueDatabase) -> None:
    task_id = finish(db, "t", "completed")
    now = db_now(db)
    set_columns(
        db,
        [task_id],
        finished_at_utc=now - dt.timedelta(seconds=1),
        processing_started_utc=now - dt.timedelta(seconds=3.25),
    )
    times = processing_time_percentiles(db)
    assert times.sample_size == 1
    assert times.p50 == times.p95 == times.p99 == pytest.approx(2.25)


@pytest.mark.parametrize("window", [0, -1, float("nan"), float("inf"), True])
def test_windows_must_be_positive_finite_seconds(db: QueueDatabase, window: float) -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        throughput(db, window_seconds=window)
    with pytest.raises(ValueError, match="window_seconds"):
        processing_time_percentiles(db, window_seconds=window)


@pytest.mark.parametrize("limit", [0, -5, True, 2.5])
def test_sample_limit_must_be_a_positive_integer(db: QueueDatabase, limit: Any) -> None:
    with pytest.raises(ValueError, match="sample_limit"):
        processing_time_percentiles(db, sample_limit=limit)
