"""Processes enqueueing the same idempotency keys at once all get the same tasks."""

from __future__ import annotations

import pytest
from conformance_support import count_tasks
from mp_workers import CTX, Children, enqueue_keys_worker, task_states

from prismq.queue import QueueDatabase, TaskStatus

pytestmark = pytest.mark.multiprocess


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("many", "shuffle"),
    [(False, False), (False, True), (True, False), (True, True)],
    ids=["enqueue", "enqueue-any-order", "enqueue_many", "enqueue_many-any-order"],
)
def test_concurrent_enqueues_of_the_same_keys_make_one_task_per_key(
    db: QueueDatabase,
    database_url: str,
    backend: str,
    many: bool,
    shuffle: bool,
    request: pytest.FixtureRequest,
) -> None:
    keys = [f"key-{i:02d}" for i in range(50)]
    processes = 4
    barrier = CTX.Barrier(processes)
    with Children() as children:
        for index in range(processes):
            children.start(
                f"p{index}",
                enqueue_keys_worker,
                database_url,
                index,
                keys,
                barrier,
                many,
                shuffle,
            )
        results = children.collect(timeout=100)

    ids_by_process = {name: result["ids"] for name, result in results.items()}
    reference = ids_by_process["p0"]
    disagreements = {
        key: {name: ids[key] for name, ids in ids_by_process.items()}
        for key in keys
        if len({ids[key] for ids in ids_by_process.values()}) != 1
    }
    rows = count_tasks(db)
    creators = {
        key: [name for name, result in results.items() if result["created"].get(key)]
        for key in keys
    }
    print(
        f"\n[{backend}] idempotency race ({'enqueue_many' if many else 'enqueue'},"
        f" {'each process its own key order' if shuffle else 'same key order'}):"
        f" {processes} processes x {len(keys)} keys -> rows={rows},"
        f" disagreements={len(disagreements)}"
    )
    assert not disagreements
    assert sorted(reference) == keys
    assert len(set(reference.values())) == len(keys)
    assert rows == len(keys)
    states = task_states(db)
    assert set(states) == set(reference.values())
    assert all(state[:2] == (TaskStatus.QUEUED.value, 0) for state in states.values())
    if not many:
        # Exactly one process created each task; the others were handed the existing one.
        assert all(len(names) == 1 for names in creators.values()), creators
