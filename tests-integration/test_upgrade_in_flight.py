"""Upgrading the core with tasks in flight loses none of them.

The core as last released (:data:`previous_release.PREVIOUS_CORE_RELEASE_REF`, built from
the git history) migrates a fresh database with its own ``prismq db upgrade``, enqueues
tasks, leases some and completes a few of those. Then the current ``prismq db upgrade``
and ``prismq db check`` run, current workers start, and every task must end completed
exactly once: the ones the old code completed keep its result and never run again, the
ones it left leased are reclaimed after their lease and run once, no task vanishes and
none appears.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from environments import InstalledCommands, PreviousCore
from queue_client import timestamp
from services import run_command, running_api

TASKS = 12
LEASED_BY_OLD_CODE = 5
COMPLETED_BY_OLD_CODE = 2
#: The old code's leases: short, so the current workers reclaim them soon.
OLD_LEASE_SECONDS = 3
QUEUE = "upgrade"
OLD_RESULT = {"completed_by": "the previous release"}

_PUT_TASKS_IN_FLIGHT = """
import json, sys
from prismq.queue import NewTask, QueueDatabase, claim_tasks, complete, enqueue_many

url, queue, tasks, leased, completed, lease_seconds, result = sys.argv[1:]
with QueueDatabase(url) as db:
    new = [NewTask(type="echo", queue=queue, payload={"value": n}) for n in range(int(tasks))]
    ids = enqueue_many(db, new)
    claimed = claim_tasks(
        db, "previous-release", n=int(leased), queues=[queue], lease_seconds=float(lease_seconds)
    )
    for task in claimed[: int(completed)]:
        complete(db, task.id, task.lease_token, json.loads(result))
leases = {task.id: task.lease_until_utc.isoformat() for task in claimed}
print(json.dumps({"ids": ids, "leased": [task.id for task in claimed], "lease_until": leases}))
"""


@pytest.mark.timeout(360)
def test_an_upgrade_with_tasks_in_flight_completes_every_task_once(
    installed: InstalledCommands,
    previous_core: PreviousCore,
    database_url: str,
    tmp_path: Path,
    checked: Callable[[str], None],
) -> None:
    old_prismq, old_python = previous_core.command("prismq"), previous_core.command("python")
    run_command(old_prismq, "db", "upgrade", "--database-url", database_url, what="old migrate")
    in_flight = json.loads(
        run_command(
            old_python,
            *("-c", _PUT_TASKS_IN_FLIGHT, database_url, QUEUE, str(TASKS)),
            *(str(LEASED_BY_OLD_CODE), str(COMPLETED_BY_OLD_CODE), str(OLD_LEASE_SECONDS)),
            json.dumps(OLD_RESULT),
            what="the previous release's enqueue and claims",
        )
    )
    ids, leased = in_flight["ids"], in_flight["leased"]
    completed_by_old = set(leased[:COMPLETED_BY_OLD_CODE])
    left_leased = set(leased[COMPLETED_BY_OLD_CODE:])
    assert (len(ids), len(leased)) == (TASKS, LEASED_BY_OLD_CODE), in_flight

    prismq = installed.worker("prismq")
    run_command(prismq, "db", "upgrade", "--database-url", database_url, what="current migrate")
    run_command(prismq, "db", "check", "--database-url", database_url, what="current check")
    current = running_api(
        installed, database_url, tmp_path / "services", migrate=False, workers=("new-a", "new-b")
    )
    with current as (services, client):
        finished = {task["id"]: task for task in client.wait_all_finished(ids, timeout=120)}
        listed = sorted(task["id"] for task in client.tasks(queue=QUEUE))
        total = client.stats()["total_tasks"]
        runs = Counter(execution.task_id for execution in services.executions())

    assert listed == sorted(ids), "tasks vanished or appeared across the upgrade"
    assert total == TASKS
    assert {task["status"] for task in finished.values()} == {"completed"}, finished
    for index, task_id in enumerate(ids):
        task = finished[task_id]
        if task_id in completed_by_old:
            assert (task["result"], runs[task_id]) == (OLD_RESULT, 0), task
        else:
            assert runs[task_id] == 1, f"task {task_id} ran {runs[task_id]} times"
            assert task["result"]["echo"] == index, task
        expected_attempts = 2 if task_id in left_leased else 1
        assert task["attempts"] == expected_attempts, task
        if task_id in left_leased:
            lease_end = timestamp(in_flight["lease_until"][str(task_id)])
            started = timestamp(task["processing_started_utc"])
            assert started >= lease_end, f"task {task_id} was taken before its lease ended"
    assert set(runs) <= set(ids), f"handlers ran unknown tasks: {set(runs) - set(ids)}"
    checked(
        f"core {previous_core.ref} -> working tree: {TASKS} tasks, {len(completed_by_old)}"
        f" completed by the old code (not rerun), {len(left_leased)} left leased (taken again"
        f" after their lease, run once at attempt 2), {TASKS - len(leased)} queued (run once);"
        " none lost or added"
    )
