"""Fencing and reclaim across real processes: a stale lease can never finish a task."""

from __future__ import annotations

import time

import pytest
from mp_workers import (
    CTX,
    Children,
    claim_one_and_complete,
    expired_lease_ids,
    race_completer,
    race_reclaimer,
    reclaim_worker,
    task_states,
    wait_until,
    zombie_holder,
)

from prismq.queue import (
    NewTask,
    QueueDatabase,
    TaskStatus,
    claim_tasks,
    enqueue,
    enqueue_many,
    get_task,
    reclaim_expired_leases,
)

pytestmark = pytest.mark.multiprocess

COMPLETED = TaskStatus.COMPLETED.value
QUEUED = TaskStatus.QUEUED.value
LEASED = TaskStatus.LEASED.value
FAILED = TaskStatus.FAILED.value


@pytest.mark.timeout(120)
def test_zombie_cannot_complete_a_task_reclaimed_and_done_by_another_process(
    db: QueueDatabase, database_url: str, backend: str
) -> None:
    task_id = enqueue(db, "fenced", {"x": 1}).task_id
    outbox = CTX.Queue()
    go = CTX.Event()
    with Children() as children:
        children.start("A", zombie_holder, database_url, "worker-A", 0.5, outbox, go)
        [(claimed, _token)] = outbox.get(timeout=60)
        assert claimed == task_id
        # A now stalls like a zombie; its lease runs out on the database clock.
        requeued = wait_until(
            lambda: reclaim_expired_leases(db).requeued,
            timeout=30,
            what="worker A's lease to expire and be reclaimed",
        )
        assert requeued == [task_id]
        children.start("B", claim_one_and_complete, database_url, "worker-B")
        b = children.collect(["B"], timeout=60)["B"]
        assert b == {"claimed": task_id, "attempt": 2, "status": COMPLETED}
        go.set()
        a = children.collect(["A"], timeout=60)["A"]
    outbox.close()

    print(f"\n[{backend}] zombie A with a stale token: {a}; B: {b}")
    assert a == {
        "claimed": task_id,
        "complete": "LeaseLostError",
        "fail": "LeaseLostError",
        "renew": "LeaseLostError",
        "progress": "LeaseLostError",
    }
    task = get_task(db, task_id)
    assert task.status is TaskStatus.COMPLETED
    assert task.attempts == 2
    assert task.result == {"by": "worker-B"}
    assert task.progress is None
    assert task.error_message is None


@pytest.mark.timeout(120)
def test_concurrent_reclaimers_reclaim_each_expired_lease_once(
    db: QueueDatabase, database_url: str, backend: str
) -> None:
    waves = 10
    ids = enqueue_many(
        db,
        [NewTask(type="requeue") for _ in range(20 * waves)]
        + [NewTask(type="exhausted", max_attempts=1) for _ in range(10 * waves)]
        + [NewTask(type="kept") for _ in range(20)]
        + [NewTask(type="waiting") for _ in range(20)],
    )
    waiting = set(ids[-20:])
    processes = 4
    barrier = CTX.Barrier(processes + 1)
    go = CTX.Event()
    requeue: set[int] = set()
    exhausted: set[int] = set()
    with Children() as children:
        for index in range(processes):
            children.start(
                f"r{index}",
                reclaim_worker,
                database_url,
                barrier,
                go,
                ["requeue", "exhausted"],
                60.0,
            )
        barrier.wait(60)  # every reclaimer is connected
        # Waves of leases expiring 0.1 s apart, so the reclaimers meet on each wave.
        for wave in range(waves):
            lease = 0.3 + 0.1 * wave
            requeue |= {
                t.id for t in claim_tasks(db, "w", 20, task_types=["requeue"], lease_seconds=lease)
            }
            exhausted |= {
                t.id
                for t in claim_tasks(db, "w", 10, task_types=["exhausted"], lease_seconds=lease)
            }
        kept = {t.id for t in claim_tasks(db, "w", 1000, task_types=["kept"], lease_seconds=600)}
        go.set()
        results = children.collect(timeout=100)
    assert (len(requeue), len(exhausted), len(kept)) == (20 * waves, 10 * waves, 20)
    expired = requeue | exhausted

    outcomes = [run for result in results.values() for run in result["outcomes"]]
    requeued = [i for run in outcomes for i in run["requeued"]]
    failed = [i for run in outcomes for i in run["failed"]]
    cancelled = [i for run in outcomes for i in run["cancelled"]]
    per_process = {
        name: sum(len(run["requeued"]) + len(run["failed"]) for run in result["outcomes"])
        for name, result in results.items()
    }
    reclaimed = requeued + failed + cancelled
    duplicated = len(reclaimed) - len(set(reclaimed))
    print(
        f"\n[{backend}] {processes} concurrent reclaimers: expired={len(expired)}"
        f" reclaimed={len(reclaimed)} (requeued={len(requeued)} failed={len(failed)})"
        f" duplicated={duplicated} in {len(outcomes)} non-empty reclaims;"
        f" reclaimed per process {per_process}"
    )
    assert not [name for name, result in results.items() if result["timed_out"]]
    assert duplicated == 0, "a task was reclaimed by two reclaimers"
    assert set(requeued) == requeue
    assert set(failed) == exhausted
    assert not cancelled
    states = task_states(db)
    assert {i for i, s in states.items() if s[0] == QUEUED} == requeue | waiting
    assert {i for i, s in states.items() if s[0] == FAILED} == exhausted
    assert {i for i, s in states.items() if s[0] == LEASED} == kept
    assert all(states[i][1] == 1 for i in expired | kept)
    assert all(states[i][1] == 0 for i in waiting)


@pytest.mark.timeout(120)
def test_complete_and_reclaim_racing_on_an_expired_lease_never_both_win(
    db: QueueDatabase, database_url: str, backend: str
) -> None:
    rounds = 50
    enqueue_many(db, [NewTask(type=f"race-{i}") for i in range(rounds)])
    to_completer = CTX.Queue()
    to_reclaimer = CTX.Queue()
    outbox = CTX.Queue()
    barrier = CTX.Barrier(2)
    outcomes: dict[int, tuple[str, list[int]]] = {}
    started = time.monotonic()
    with Children() as children:
        children.start("completer", race_completer, database_url, to_completer, barrier, outbox)
        children.start("reclaimer", race_reclaimer, database_url, to_reclaimer, barrier, outbox)
        for index in range(rounds):
            [task] = claim_tasks(db, "holder", 1, task_types=[f"race-{index}"], lease_seconds=0.001)
            task_id = task.id
            wait_until(
                lambda: task_id in expired_lease_ids(db),  # noqa: B023 - used at once
                timeout=30,
                interval=0.005,
                what=f"the lease of task {task.id} to expire",
            )
            # The completer holds the expired lease; both go at once after the barrier.
            to_completer.put((task.id, task.lease_token))
            to_reclaimer.put(index)
            reports = {}
            for _ in range(2):
                role, key, value = outbox.get(timeout=60)
                reports[role] = (key, value)
            assert reports["completer"][0] == task.id
            assert reports["reclaimer"][0] == index
            outcomes[task.id] = (reports["completer"][1], reports["reclaimer"][1])
        to_completer.put(None)
        to_reclaimer.put(None)
        assert children.collect(timeout=60) == {"completer": rounds, "reclaimer": rounds}
    for channel in (to_completer, to_reclaimer, outbox):
        channel.close()
    elapsed = time.monotonic() - started

    completes_won = sorted(i for i, (done, _) in outcomes.items() if done == COMPLETED)
    reclaims_won = sorted(i for i, (_, reclaimed) in outcomes.items() if i in reclaimed)
    both = sorted(set(completes_won) & set(reclaims_won))
    print(
        f"\n[{backend}] complete vs reclaim x{rounds}: complete won {len(completes_won)},"
        f" reclaim won {len(reclaims_won)}, both={len(both)} in {elapsed:.1f} s"
    )
    assert not both, f"completed and requeued at once: {both}"
    states = task_states(db)
    for task_id, (done, reclaimed) in outcomes.items():
        # Only this round's task was leased, so a reclaim can have returned nothing else.
        assert set(reclaimed) <= {task_id}
        if done == COMPLETED:
            assert states[task_id] == (COMPLETED, 1, {"by": "holder"})
        else:
            assert done == "LeaseLostError", (task_id, done)
            assert reclaimed == [task_id], (task_id, done, reclaimed)
            assert states[task_id] == (QUEUED, 1, None)
    assert len(completes_won) + len(reclaims_won) == rounds
