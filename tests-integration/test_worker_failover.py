"""A worker killed mid-run loses no task, and a worker told to stop stops cleanly.

One worker takes some slow tasks and is SIGKILLed while it holds their leases; the other
worker must reclaim them once the (short) leases expire and complete them. Then the
survivor gets SIGTERM: it must exit 0, and the API must report it stopped. Everything is
observed over HTTP, plus the handlers' record of which process ran what.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from environments import InstalledCommands
from queue_client import QueueClient
from services import running_api

TASKS = 6
#: Tasks the first worker holds when it is killed (its concurrency).
HELD = 2
LEASE_SECONDS = 2.0
QUEUE = "failover"


def _leased_to(client: QueueClient, worker_id: str, count: int) -> list[int] | None:
    """The ids of the tasks leased to ``worker_id``, once there are ``count`` of them."""
    leased = client.tasks(queue=QUEUE, status="leased")
    ids = sorted(task["id"] for task in leased if task["locked_by"] == worker_id)
    return ids if len(ids) == count else None


@pytest.mark.timeout(240)
def test_a_killed_workers_tasks_are_reclaimed_and_a_stopped_worker_exits_cleanly(
    installed: InstalledCommands,
    database_url: str,
    tmp_path: Path,
    checked: Callable[[str], None],
) -> None:
    gate = tmp_path / "gate"
    with running_api(installed, database_url, tmp_path / "services") as (services, client):
        doomed = services.start_worker("doomed", concurrency=HELD, lease_seconds=LEASE_SECONDS)
        tasks = [{"type": "hold", "queue": QUEUE, "payload": {"gate": str(gate)}}] * TASKS
        ids = client.enqueue_batch(tasks)
        held = services.wait_until(
            lambda: _leased_to(client, "doomed", HELD), timeout=60, what="doomed to hold 2 tasks"
        )
        services.wait_until(
            lambda: {e.task_id for e in services.executions()} >= set(held),
            timeout=60,
            what="doomed to start its handlers",
        )
        survivor = services.start_worker("survivor", concurrency=TASKS, lease_seconds=LEASE_SECONDS)
        services.wait_until(
            lambda: _leased_to(client, "survivor", TASKS - HELD),
            timeout=60,
            what="survivor to take the other tasks",
        )

        doomed.kill_group()
        gate.touch()
        finished = {task["id"]: task for task in client.wait_all_finished(ids, timeout=120)}

        runs: dict[int, list[tuple[int, int]]] = {task_id: [] for task_id in ids}
        for execution in services.executions():
            runs[execution.task_id].append((execution.attempt, execution.pid))
        assert {task["status"] for task in finished.values()} == {"completed"}, finished
        for task_id in held:
            assert finished[task_id]["attempts"] == 2, finished[task_id]
            assert runs[task_id] == [(1, doomed.pid), (2, survivor.pid)], runs[task_id]
            assert finished[task_id]["result"]["pid"] == survivor.pid
        for task_id in set(ids) - set(held):
            assert runs[task_id] == [(1, survivor.pid)], runs[task_id]

        exit_code = survivor.stop(signal.SIGTERM)
        workers = client.workers()

    assert exit_code == 0, f"survivor exited {exit_code} after SIGTERM"
    assert workers["survivor"]["state"] == "stopped", workers["survivor"]
    assert workers["survivor"]["stopped_at_utc"] is not None
    assert workers["doomed"]["state"] != "stopped", "a SIGKILLed worker cannot have said so"
    executions = sum(len(started) for started in runs.values())
    checked(
        f"{TASKS} tasks completed: {HELD} held by the SIGKILLed worker reclaimed and completed"
        f" by the other at attempt 2, {TASKS - HELD} at attempt 1; {executions} executions;"
        " SIGTERM: exit 0 and the worker reported stopped"
    )
