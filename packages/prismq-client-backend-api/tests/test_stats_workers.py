"""``GET /api/queue/stats`` and ``GET /api/queue/workers``."""

from __future__ import annotations

from typing import Any

from api_support import Api, api_settings, poll_until
from fastapi.testclient import TestClient

from prismq.api import create_app
from prismq.queue import (
    claim_tasks,
    complete,
    enqueue,
    fail,
    mark_worker_stopped,
    register_worker,
    request_cancel,
)

STATS = "/api/queue/stats"
WORKERS = "/api/queue/workers"


def _run_one(api: Api, task_type: str, *, succeed: bool) -> None:
    [claimed] = claim_tasks(api.db, "w", task_types=[task_type])
    if succeed:
        complete(api.db, claimed.id, claimed.lease_token)
    else:
        fail(api.db, claimed.id, claimed.lease_token, "boom", retryable=False)


def test_stats_of_an_empty_queue(api: Api) -> None:
    stats = api.client.get(STATS, headers=api.reader).json()

    assert stats["total_tasks"] == 0
    assert stats["oldest_queued_age_seconds"] is None
    assert (stats["by_type"], stats["by_queue"]) == ({}, {})


def test_stats_count_every_status_per_type_and_queue(api: Api) -> None:
    for task_type, queue in [("a", "q1"), ("a", "q1"), ("a", "q2"), ("b", "q1"), ("c", "q2")]:
        enqueue(api.db, task_type, queue=queue)
    enqueue(api.db, "later", delay_seconds=3600)
    _run_one(api, "b", succeed=True)
    _run_one(api, "c", succeed=False)
    claim_tasks(api.db, "w", task_types=["a"])  # one "a" leased
    request_cancel(api.db, enqueue(api.db, "d").task_id)

    response = api.client.get(STATS, headers=api.reader)

    assert response.status_code == 200
    stats: dict[str, Any] = response.json()
    assert {key: stats[key] for key in stats if key.endswith("_tasks")} == {
        "total_tasks": 7,
        "queued_tasks": 3,  # two "a" and the delayed one
        "processing_tasks": 1,
        "completed_tasks": 1,
        "failed_tasks": 1,
        "cancelled_tasks": 1,
    }
    assert stats["by_type"]["a"] == {
        "queued": 2, "leased": 1, "completed": 0, "failed": 0, "cancelled": 0, "total": 3
    }  # fmt: skip
    assert stats["by_type"]["c"]["failed"] == 1
    assert stats["by_queue"]["q1"]["completed"] == 1
    assert stats["by_queue"]["q2"]["total"] == 2
    assert stats["oldest_queued_age_seconds"] >= 0
    assert set(stats["by_type"]) == {"a", "b", "c", "d", "later"}


def test_workers_are_listed_with_their_state(api: Api) -> None:
    register_worker(api.db, "busy", queues=["q1", "q2"], capabilities={"gpu": True}, concurrency=4)
    register_worker(api.db, "gone")
    mark_worker_stopped(api.db, "gone")

    response = api.client.get(WORKERS, headers=api.reader)

    assert response.status_code == 200
    workers = {worker["worker_id"]: worker for worker in response.json()["items"]}
    assert set(workers) == {"busy", "gone"}
    busy = workers["busy"]
    assert (busy["state"], busy["queues"], busy["concurrency"]) == ("active", ["q1", "q2"], 4)
    assert busy["capabilities"] == {"gpu": True}
    assert 0 <= busy["heartbeat_age_seconds"] < 60
    assert workers["gone"]["state"] == "stopped"
    assert workers["gone"]["stopped_at_utc"] is not None

    running_only = api.client.get(WORKERS, params={"include_stopped": "false"}, headers=api.reader)
    assert [worker["worker_id"] for worker in running_only.json()["items"]] == ["busy"]


def test_a_silent_worker_is_reported_stale(api: Api, database_url: str) -> None:
    register_worker(api.db, "silent")
    app = create_app(api_settings(database_url, api_stale_worker_seconds=0.05), database=api.db)
    headers = api.reader

    with TestClient(app) as client:

        def silent_state() -> str | None:
            [worker] = client.get(WORKERS, headers=headers).json()["items"]
            return worker["state"] if worker["state"] == "stale" else None

        assert poll_until(silent_state, what="the worker to be stale") == "stale"
