"""Conformance: claiming (strategies, filters, capability matching, lease fields).

Runs unchanged on SQLite and PostgreSQL (``PRISMQ_TEST_BACKEND``).
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import math
import sqlite3
from typing import Any

import pytest
from conformance_support import CLOCK_TOLERANCE, db_now, is_utc, lease_token_of, raw_task
from scipy.stats import chisquare

from prismq.queue import (
    MAX_CLAIM_BATCH,
    WEIGHTED_RANDOM_WINDOW,
    DatabaseError,
    InvalidPayloadError,
    InvalidTaskError,
    NewTask,
    QueueDatabase,
    SchedulingStrategy,
    TaskStatus,
    UnknownStrategyError,
    claim_tasks,
    enqueue,
    enqueue_many,
    get_task,
    list_tasks,
    release,
    seconds_until_next_due,
)

#: Priorities of the mixed set the order tests claim from, in enqueue order.
MIXED_PRIORITIES = [5, 1, 5, 3, 1, 9, 3, 5, 1000, 1]


def _mixed_set(db: QueueDatabase) -> list[tuple[int, int]]:
    """Enqueue the mixed set; returns (id, priority) in enqueue order."""
    ids = enqueue_many(
        db,
        [
            NewTask(type="t", priority=p, queue="a" if i % 2 else "b")
            for i, p in enumerate(MIXED_PRIORITIES)
        ],
    )
    return list(zip(ids, MIXED_PRIORITIES, strict=True))


def _expected_order(tasks: list[tuple[int, int]], strategy: SchedulingStrategy) -> list[int]:
    if strategy is SchedulingStrategy.FIFO:
        return sorted(task_id for task_id, _ in tasks)
    if strategy is SchedulingStrategy.LIFO:
        return sorted((task_id for task_id, _ in tasks), reverse=True)
    return [task_id for task_id, _ in sorted(tasks, key=lambda t: (t[1], t[0]))]


ORDERED = [SchedulingStrategy.FIFO, SchedulingStrategy.LIFO, SchedulingStrategy.PRIORITY]


def test_strategy_is_priority_by_default(db: QueueDatabase) -> None:
    tasks = _mixed_set(db)
    claimed = [t.id for t in claim_tasks(db, "w", 3)]
    assert claimed == _expected_order(tasks, SchedulingStrategy.PRIORITY)[:3]


@pytest.mark.parametrize("strategy", ORDERED, ids=lambda s: s.value)
def test_claims_one_at_a_time_follow_the_strategy(
    db: QueueDatabase, strategy: SchedulingStrategy
) -> None:
    # One task per claim: the order comes from the SQL, not from sorting a batch.
    tasks = _mixed_set(db)
    sequence = []
    while claimed := claim_tasks(db, "w", 1, strategy=strategy):
        assert len(claimed) == 1
        sequence.append(claimed[0].id)
    assert sequence == _expected_order(tasks, strategy)


@pytest.mark.parametrize("strategy", ORDERED, ids=lambda s: s.value)
def test_a_batch_takes_the_first_n_in_strategy_order(
    db: QueueDatabase, strategy: SchedulingStrategy
) -> None:
    tasks = _mixed_set(db)
    expected = _expected_order(tasks, strategy)
    first = claim_tasks(db, "w", 4, strategy=strategy.value)
    assert [t.id for t in first] == expected[:4]
    rest = claim_tasks(db, "w", 100, strategy=strategy)
    assert [t.id for t in rest] == expected[4:]
    assert claim_tasks(db, "w", 100, strategy=strategy) == []


@pytest.mark.parametrize("name", ["fifo", "FIFO", " Lifo ", "priority", "WEIGHTED_RANDOM"])
def test_strategy_names_are_accepted_in_any_case(db: QueueDatabase, name: str) -> None:
    task = enqueue(db, "t").task
    assert [t.id for t in claim_tasks(db, "w", strategy=name)] == [task.id]


@pytest.mark.parametrize("name", ["random", "", "fifo2", None, 3])
def test_unknown_strategy_is_rejected(db: QueueDatabase, name: object) -> None:
    task = enqueue(db, "t").task
    with pytest.raises(UnknownStrategyError) as info:
        claim_tasks(db, "w", strategy=name)  # type: ignore[arg-type]
    assert repr(name) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert get_task(db, task.id).status is TaskStatus.QUEUED


def test_weighted_random_claims_every_eligible_task(db: QueueDatabase) -> None:
    tasks = _mixed_set(db)
    claimed = claim_tasks(db, "w", 100, strategy=SchedulingStrategy.WEIGHTED_RANDOM)
    assert sorted(t.id for t in claimed) == sorted(task_id for task_id, _ in tasks)
    assert claim_tasks(db, "w", 100, strategy=SchedulingStrategy.WEIGHTED_RANDOM) == []


# --------------------------------------------------------------------------- filters


def test_n_limits_the_batch(db: QueueDatabase) -> None:
    enqueue_many(db, [NewTask(type="t") for _ in range(7)])
    assert claim_tasks(db, "w", 0) == []
    assert len(claim_tasks(db, "w", 3)) == 3
    assert len(claim_tasks(db, "w", 3)) == 3
    assert len(claim_tasks(db, "w", 3)) == 1
    assert claim_tasks(db, "w", 3) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": -1}, "n"),
        ({"n": MAX_CLAIM_BATCH + 1}, "n"),
        ({"n": True}, "n"),
        ({"n": 1.0}, "n"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"lease_seconds": -5}, "lease_seconds"),
        ({"lease_seconds": float("nan")}, "lease_seconds"),
        ({"worker_id": ""}, "worker_id"),
        ({"worker_id": "w" * 201}, "worker_id"),
        # A lone string is not a list of names (it must not be split into letters).
        ({"queues": "default"}, "queues"),
        ({"queues": [1]}, "queues"),
        ({"task_types": "t"}, "task_types"),
        ({"capabilities": ["gpu"]}, "capabilities"),
        ({"capabilities": "gpu"}, "capabilities"),
        ({"capabilities": {"gpu": object()}}, "capabilities"),
    ],
)
def test_invalid_claim_arguments(db: QueueDatabase, kwargs: dict[str, Any], field: str) -> None:
    task = enqueue(db, "t").task
    arguments: dict[str, Any] = {"worker_id": "w", **kwargs}
    with pytest.raises(InvalidTaskError) as info:
        claim_tasks(db, **arguments)
    assert info.value.field == field
    assert get_task(db, task.id) == task


def test_queues_filter(db: QueueDatabase) -> None:
    ids = {q: enqueue_many(db, [NewTask(type="t", queue=q) for _ in range(2)]) for q in "abc"}
    got = claim_tasks(db, "w", 100, queues=["a", "c"])
    assert sorted(t.id for t in got) == sorted(ids["a"] + ids["c"])
    assert {t.queue for t in got} == {"a", "c"}
    assert claim_tasks(db, "w", 100, queues=["a", "c"]) == []
    assert claim_tasks(db, "w", 100, queues=[]) == []
    assert claim_tasks(db, "w", 100, queues=["nope"]) == []
    assert sorted(t.id for t in claim_tasks(db, "w", 100, queues=None)) == sorted(ids["b"])


def test_task_types_filter(db: QueueDatabase) -> None:
    ids = {kind: enqueue(db, kind).task_id for kind in ("email", "sms", "push")}
    assert claim_tasks(db, "w", 100, task_types=[]) == []
    got = claim_tasks(db, "w", 100, task_types=["email", "push", "unknown"])
    assert sorted(t.id for t in got) == sorted([ids["email"], ids["push"]])
    assert claim_tasks(db, "w", 100, task_types=["email"]) == []
    assert [t.id for t in claim_tasks(db, "w", 100, task_types=None)] == [ids["sms"]]


def test_queue_and_type_filters_combine(db: QueueDatabase) -> None:
    wanted = enqueue(db, "email", queue="mail").task_id
    enqueue(db, "email", queue="other")
    enqueue(db, "sms", queue="mail")
    got = claim_tasks(db, "w", 100, queues=["mail"], task_types=["email"])
    assert [t.id for t in got] == [wanted]


# --------------------------------------------------------------------------- capabilities

#: (task compatibility, worker capabilities, whether the worker may run the task).
CAPABILITY_CASES: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = [
    ({}, None, True),
    ({}, {}, True),
    ({}, {"gpu": True}, True),
    ({"gpu": True}, {"gpu": True}, True),
    ({"gpu": True}, {"gpu": True, "region": "eu", "mem_gb": 64}, True),
    ({"gpu": True}, {"gpu": False}, False),
    ({"gpu": True}, {}, False),
    ({"gpu": True}, None, False),
    ({"gpu": True}, {"GPU": True}, False),
    ({"gpu": True}, {"gpu": 1}, False),
    ({"gpu": True}, {"gpu": "true"}, False),
    ({"n": 1}, {"n": 1}, True),
    ({"n": 1}, {"n": True}, False),
    ({"n": 1}, {"n": "1"}, False),
    ({"n": "1"}, {"n": 1}, False),
    ({"n": 0}, {"n": False}, False),
    ({"n": 0}, {"n": None}, False),
    ({"n": None}, {"n": None}, True),
    ({"n": None}, {}, False),
    ({"n": 1}, {"n": 1.0}, True),
    ({"os": "linux"}, {"os": {"name": "linux"}}, False),
    ({"tags": "a"}, {"tags": ["a", "b"]}, False),
    ({"region": "eu"}, {"region": "eu"}, True),
    ({"region": "eu"}, {"region": "us"}, False),
    ({"region": "eu"}, {"region": "EU"}, False),
    ({"gpu": True, "region": "eu"}, {"gpu": True, "region": "eu"}, True),
    ({"gpu": True, "region": "eu"}, {"region": "eu", "gpu": True, "x": 1}, True),
    ({"gpu": True, "region": "eu"}, {"gpu": True}, False),
    ({"gpu": True, "region": "eu"}, {"region": "eu"}, False),
    ({"gpu": True, "region": "eu"}, {"gpu": True, "region": "us"}, False),
    ({"gpu": True, "region": "eu"}, {"gpu": False, "region": "eu"}, False),
]


def test_capability_matching(db: QueueDatabase) -> None:
    # Each case in a queue of its own, so one claim answers exactly that case.
    ids = enqueue_many(
        db,
        [
            NewTask(type="t", queue=f"case{i}", compatibility=compatibility)
            for i, (compatibility, _, _) in enumerate(CAPABILITY_CASES)
        ],
    )
    wrong = []
    for i, (compatibility, capabilities, runs) in enumerate(CAPABILITY_CASES):
        claimed = claim_tasks(db, "w", 5, queues=[f"case{i}"], capabilities=capabilities)
        if [t.id for t in claimed] != ([ids[i]] if runs else []):
            wrong.append((compatibility, capabilities, runs))
    assert wrong == [], "capability cases answered wrongly: (task, worker, expected)"


def test_numbers_in_capabilities_compare_by_value(db: QueueDatabase) -> None:
    # As in JSON (and jsonb): 1 and 1.0 are the same number; true is not 1.
    task = enqueue(db, "t", compatibility={"n": 1}).task
    assert claim_tasks(db, "w", capabilities={"n": True}) == []
    assert [t.id for t in claim_tasks(db, "w", capabilities={"n": 1.0})] == [task.id]


@pytest.mark.parametrize("nested", [{"name": "linux"}, ["a", "b"]], ids=["object", "array"])
def test_nested_compatibility_values_are_refused(db: QueueDatabase, nested: object) -> None:
    with pytest.raises(InvalidPayloadError) as info:
        enqueue(db, "t", compatibility={"os": nested})
    assert info.value.field == "compatibility"
    assert list_tasks(db).items == []


def test_a_task_no_worker_can_run_stays_queued(db: QueueDatabase) -> None:
    blocked = enqueue(db, "t", compatibility={"gpu": True}, priority=1).task
    runnable = enqueue(db, "t", priority=500).task
    # The blocked task has the better priority but is skipped, not failed, not counted.
    assert [t.id for t in claim_tasks(db, "w", 10, capabilities={"cpu": 8})] == [runnable.id]
    for _ in range(3):
        assert claim_tasks(db, "w", 10, capabilities={"gpu": False}) == []
    assert get_task(db, blocked.id) == blocked
    assert [t.id for t in claim_tasks(db, "w", 10, capabilities={"gpu": True})] == [blocked.id]


# --------------------------------------------------------------------------- claim fields


def test_claim_leases_the_task(db: QueueDatabase) -> None:
    task = enqueue(
        db, "t", {"a": 1}, queue="q", priority=7, compatibility={"gpu": True}, max_attempts=3
    ).task
    before = db_now(db)
    [claimed] = claim_tasks(db, "worker-1", capabilities={"gpu": True}, lease_seconds=12.5)
    after = db_now(db)

    assert claimed.id == task.id
    assert (claimed.type, claimed.queue, claimed.priority) == ("t", "q", 7)
    assert claimed.payload == {"a": 1}
    assert claimed.compatibility == {"gpu": True}
    assert claimed.attempt == 1
    assert claimed.max_attempts == 3
    assert claimed.created_at_utc == task.created_at_utc
    assert isinstance(claimed.lease_token, str)
    assert len(claimed.lease_token) >= 16

    stored = get_task(db, task.id)
    assert stored.status is TaskStatus.LEASED
    assert stored.locked_by == "worker-1"
    assert stored.attempts == 1
    assert stored.lease_until_utc == claimed.lease_until_utc
    assert is_utc(claimed.lease_until_utc)
    reserved = stored.reserved_at_utc
    assert reserved is not None
    assert before <= reserved <= after
    assert stored.processing_started_utc == reserved
    assert stored.updated_at_utc == reserved
    # The lease runs lease_seconds from the claim, on the database clock.
    lease = claimed.lease_until_utc - reserved
    assert abs(lease - dt.timedelta(seconds=12.5)) <= CLOCK_TOLERANCE
    assert lease_token_of(db, task.id) == claimed.lease_token
    # Everything the claim does not own is unchanged.
    assert (stored.payload, stored.run_after_utc, stored.created_at_utc) == (
        task.payload,
        task.run_after_utc,
        task.created_at_utc,
    )


def test_every_claim_issues_a_fresh_token(db: QueueDatabase) -> None:
    task = enqueue(db, "t").task
    tokens = []
    for _ in range(5):
        [claimed] = claim_tasks(db, "w")
        assert claimed.attempt == 1  # release does not count the attempt
        tokens.append(claimed.lease_token)
        release(db, claimed.id, claimed.lease_token)
    assert len(set(tokens)) == 5
    assert get_task(db, task.id).attempts == 0


def test_a_batch_gets_one_token_per_task(db: QueueDatabase) -> None:
    enqueue_many(db, [NewTask(type="t") for _ in range(6)])
    claimed = claim_tasks(db, "w", 6)
    assert len({t.lease_token for t in claimed}) == 6
    for t in claimed:
        assert raw_task(db, t.id)["lease_token"] == t.lease_token


def test_claimed_tasks_are_not_claimed_again(db: QueueDatabase) -> None:
    ids = enqueue_many(db, [NewTask(type="t") for _ in range(3)])
    first = claim_tasks(db, "w1", 10, lease_seconds=60)
    assert sorted(t.id for t in first) == sorted(ids)
    for strategy in SchedulingStrategy:
        assert claim_tasks(db, "w2", 10, strategy=strategy) == []
    assert {get_task(db, i).locked_by for i in ids} == {"w1"}


def test_future_run_after_is_not_claimed(db: QueueDatabase) -> None:
    later = enqueue(db, "t", delay_seconds=3600, priority=1).task
    due = enqueue(db, "t", priority=1000).task
    for strategy in SchedulingStrategy:
        got = claim_tasks(db, "w", 10, strategy=strategy)
        assert [t.id for t in got] == [due.id], strategy
        release(db, due.id, got[0].lease_token)
    assert get_task(db, later.id) == later


# --------------------------------------------------------------------------- weighted random

#: One draw's set of tasks: two at each of the priorities 1, 2 and 4.
WEIGHTED_GROUP = (1, 1, 2, 2, 4, 4)
WEIGHTED_PICKS = 3
WEIGHTED_CLAIMS = 1000


def _top_k_set_probability(weights: list[float], subset: tuple[int, ...]) -> float:
    """P(a claim of len(subset) tasks takes exactly ``subset``) under weighted random.

    Picking each task with probability proportional to its weight, then the next among
    the rest, and so on (what ``ORDER BY -ln(U) * priority`` does): sum over the orders.
    """
    total = 0.0
    for order in itertools.permutations(subset):
        probability, remaining = 1.0, sum(weights)
        for index in order:
            probability *= weights[index] / remaining
            remaining -= weights[index]
        total += probability
    return total


def test_weighted_random_picks_in_proportion_to_inverse_priority(db: QueueDatabase) -> None:
    # WEIGHTED_CLAIMS independent claims of WEIGHTED_PICKS tasks each (3000 picks). Every
    # claim has a queue of its own holding the same six tasks, so it needs no release and
    # draws from the same set. The first pick must be a task with probability
    # (1/priority) / sum(1/priority), the next the same among the rest, ...: the
    # distribution of the picked set is known exactly and checked with a chi-square test.
    ids = enqueue_many(
        db,
        [
            NewTask(type="t", queue=f"draw{d}", priority=p)
            for d in range(WEIGHTED_CLAIMS)
            for p in WEIGHTED_GROUP
        ],
    )
    position = {task_id: i % len(WEIGHTED_GROUP) for i, task_id in enumerate(ids)}

    outcomes: collections.Counter[tuple[int, ...]] = collections.Counter()
    for d in range(WEIGHTED_CLAIMS):
        claimed = claim_tasks(
            db, "w", WEIGHTED_PICKS, strategy="weighted_random", queues=[f"draw{d}"]
        )
        assert len(claimed) == WEIGHTED_PICKS
        outcomes[tuple(sorted(position[t.id] for t in claimed))] += 1

    weights = [1 / p for p in WEIGHTED_GROUP]
    subsets = list(itertools.combinations(range(len(WEIGHTED_GROUP)), WEIGHTED_PICKS))
    probabilities = [_top_k_set_probability(weights, s) for s in subsets]
    assert math.isclose(sum(probabilities), 1.0)
    expected = [WEIGHTED_CLAIMS * p for p in probabilities]
    observed = [outcomes[s] for s in subsets]
    assert sum(observed) == WEIGHTED_CLAIMS
    assert min(expected) >= 5  # chi-square is valid
    assert chisquare(observed, expected).pvalue > 0.001, list(
        zip(subsets, observed, expected, strict=True)
    )

    # And per pick: the priority-1 tasks are in the picked sets most often, then 2, then 4.
    picked: collections.Counter[int] = collections.Counter()
    for subset, count in outcomes.items():
        for index in subset:
            picked[WEIGHTED_GROUP[index]] += count
    assert picked[1] > picked[2] > picked[4]


def test_weighted_random_draws_among_the_oldest_window(db: QueueDatabase) -> None:
    # The window's oldest tasks all have the worst priority; the newer ones beyond it the
    # best. Without the window nearly every pick would be a newer task.
    old = enqueue_many(
        db, [NewTask(type="t", priority=1000) for _ in range(WEIGHTED_RANDOM_WINDOW)]
    )
    new = enqueue_many(db, [NewTask(type="t", priority=1) for _ in range(200)])
    assert min(new) > max(old)
    old_ids = set(old)

    for _ in range(20):
        [claimed] = claim_tasks(db, "w", 1, strategy=SchedulingStrategy.WEIGHTED_RANDOM)
        assert claimed.id in old_ids
        release(db, claimed.id, claimed.lease_token)

    batch = claim_tasks(db, "w", 200, strategy=SchedulingStrategy.WEIGHTED_RANDOM)
    assert len(batch) == 200
    assert {t.id for t in batch} <= old_ids


# -- seconds_until_next_due ----------------------------------------------------------------


def test_seconds_until_next_due(db: QueueDatabase) -> None:
    assert seconds_until_next_due(db) is None
    enqueue(db, "t", delay_seconds=30)
    enqueue(db, "t", delay_seconds=60)
    first_due = seconds_until_next_due(db)
    assert first_due is not None
    assert 25 < first_due <= 30
    enqueue(db, "t")
    assert seconds_until_next_due(db) == 0.0


def test_seconds_until_next_due_respects_the_workers_filters(db: QueueDatabase) -> None:
    enqueue(db, "report", queue="slow", delay_seconds=60)
    enqueue(db, "email", queue="fast", delay_seconds=10)
    enqueue(db, "render", compatibility={"gpu": True})
    # The render task is due now, but only a GPU worker can run it.
    for_email = seconds_until_next_due(db, task_types=["email", "report"])
    assert for_email is not None
    assert 5 < for_email <= 10
    for_slow = seconds_until_next_due(db, queues=["slow"])
    assert for_slow is not None
    assert 55 < for_slow <= 60
    assert seconds_until_next_due(db, task_types=["render"]) is None
    assert seconds_until_next_due(db, task_types=["render"], capabilities={"gpu": True}) == 0.0
    assert seconds_until_next_due(db, queues=[]) is None
    claimed = claim_tasks(db, "w", capabilities={"gpu": True}, task_types=["render"])
    assert len(claimed) == 1
    # Leased tasks are not waiting to be claimed.
    assert seconds_until_next_due(db, task_types=["render"], capabilities={"gpu": True}) is None


@pytest.mark.backend("sqlite")
def test_an_idle_sqlite_claim_does_not_wait_for_the_write_lock(database_url: str) -> None:
    # A claim that finds nothing due must not queue behind a writer: idle workers would
    # otherwise hold up producers (and each other) on SQLite's single write lock.
    with QueueDatabase(database_url, sqlite_busy_timeout_ms=200) as quick:
        enqueue(quick, "later", delay_seconds=60)
        enqueue(quick, "gpu-only", compatibility={"gpu": True})
        writer = sqlite3.connect(quick.url.database or "", isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            assert claim_tasks(quick, "idle-worker") == []
            assert claim_tasks(quick, "idle-worker", task_types=["later"]) == []
            # Something is due for this worker: it does need the lock, and says so.
            with pytest.raises(DatabaseError, match="locked"):
                claim_tasks(quick, "gpu-worker", capabilities={"gpu": True})
        finally:
            writer.rollback()
            writer.close()
        assert [t.type for t in claim_tasks(quick, "gpu-worker", capabilities={"gpu": True})] == [
            "gpu-only"
        ]
