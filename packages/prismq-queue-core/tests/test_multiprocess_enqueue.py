"""Processes enqueueing at once, one task per call and in batches, lose nothing.

A single unkeyed enqueue is one statement, its own transaction, run below SQLAlchemy's
``execute`` (see ``prismq.queue.driver_statements``). Here it races other writers: on SQLite
every one of its statements must wait its turn for the write lock instead of failing.
"""

from __future__ import annotations

import pytest
from mp_workers import CTX, Children, enqueue_singles_worker
from sqlalchemy import select

from prismq.queue import QueueDatabase, TaskStatus
from prismq.queue.models import task_table

pytestmark = pytest.mark.multiprocess

_t = task_table.c


@pytest.mark.timeout(120)
def test_single_enqueues_racing_other_writers_all_land_once(
    db: QueueDatabase, database_url: str, backend: str
) -> None:
    # Three processes enqueue one task per call while a fourth holds the write lock again
    # and again with batches of 250.
    per_process = {"single-0": (200, 0), "single-1": (200, 0), "single-2": (200, 0)}
    per_process["batches"] = (2_000, 250)
    barrier = CTX.Barrier(len(per_process))
    with Children() as children:
        for index, (name, (count, batch_size)) in enumerate(per_process.items()):
            children.start(
                name, enqueue_singles_worker, database_url, index, count, batch_size, barrier
            )
        results = children.collect(timeout=100)

    with db.read() as conn:
        rows = conn.execute(select(_t.id, _t.payload, _t.status, _t.attempts)).all()
    stored = {row.id: (row.payload["by"], row.payload["n"]) for row in rows}
    sent = {
        task_id: (index, n)
        for index, name in enumerate(per_process)
        for n, task_id in results[name]["ids"].items()
    }
    total = sum(count for count, _ in per_process.values())
    print(f"\n[{backend}] racing enqueues: sent={len(sent)} stored={len(stored)} of {total}")
    # Every call returned its own id, and each id holds the task that call sent.
    assert len(sent) == total
    assert stored == sent
    assert all((row.status, row.attempts) == (TaskStatus.QUEUED.value, 0) for row in rows)
    for index, name in enumerate(per_process):
        for n, record in results[name]["records"].items():
            assert record == {"created": True, "payload": {"by": index, "n": n}}
