"""The whole queue driven over HTTP: the API and two workers, each from its own wheel.

For each backend one database is migrated with ``prismq db upgrade``, ``prismq-api serve``
runs under uvicorn and two ``prismq-worker`` processes run the handlers of
:mod:`integration_handlers`. Each test works in a queue of its own and leaves every task it
made finished, so the counts of the stats and metrics tests can be compared with the
database as a whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from database_views import TableCounts, read_counts
from databases import BACKENDS, fresh_database
from environments import InstalledCommands
from integration_handlers import CANCEL_SEEN_MESSAGE
from prometheus_client.parser import text_string_to_metric_families
from queue_client import QueueClient, expect, timestamp
from services import ServiceProcess, Services, running_api

pytestmark = pytest.mark.timeout(180)

WORKER_IDS = ("http-worker-a", "http-worker-b")
WORKER_CONCURRENCY = 4
STATUSES = ("queued", "leased", "completed", "failed", "cancelled")
#: Far enough ahead that the task cannot become due during the test.
AN_HOUR = 3600


@dataclasses.dataclass(frozen=True)
class Stack:
    """The running services of one backend."""

    backend: str
    database_url: str
    services: Services
    client: QueueClient
    workers: dict[str, ServiceProcess]
    scratch: Path

    def runs_of(self, task_id: int) -> list[tuple[int, int]]:
        """``(attempt, pid)`` of each recorded start of ``task_id``'s handler."""
        return [(e.attempt, e.pid) for e in self.services.executions() if e.task_id == task_id]

    def wait_started(self, task_id: int) -> None:
        """Wait until a worker has started ``task_id``'s handler."""
        self.services.wait_until(
            lambda: self.runs_of(task_id), timeout=60, what=f"task {task_id} to start"
        )

    def wait_quiet(self, *, queued: int = 0) -> TableCounts:
        """Wait until nothing is leased and ``queued`` tasks wait; the counts then."""

        def quiet() -> TableCounts | None:
            counts = read_counts(self.database_url)
            still = counts.by_status["leased"] == 0 and counts.by_status["queued"] == queued
            return counts if still else None

        return self.services.wait_until(quiet, timeout=60, what=f"{queued} queued, 0 leased")


@pytest.fixture(scope="module", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest,
    installed: InstalledCommands,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A migrated database, the API and two workers, shared by this module's tests."""
    backend = str(request.param)
    run_dir = tmp_path_factory.mktemp(f"http-{backend}")
    with (
        fresh_database(backend, run_dir) as url,
        running_api(installed, url, run_dir / "services", workers=WORKER_IDS) as (services, client),
    ):
        workers = {worker_id: services.process(worker_id) for worker_id in WORKER_IDS}
        services.wait_until(
            lambda: set(WORKER_IDS) <= set(client.workers()),
            timeout=60,
            what="both workers to register",
        )
        yield Stack(backend, url, services, client, workers, run_dir)


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> str:
    """A queue of this test's own, named after it."""
    return str(request.node.originalname).removeprefix("test_")[:100]


def test_single_and_batch_enqueues_run_every_task_once(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    client = stack.client
    single = client.enqueue("echo", queue=queue, payload={"value": "single"})
    assert single.status_code == 201, single.text
    assert single.json()["status"] == "queued"
    batch = [{"type": "echo", "queue": queue, "payload": {"value": n}} for n in range(30)]
    batch_ids = client.enqueue_batch(batch)
    ids = [single.json()["task_id"], *batch_ids]
    assert len(set(ids)) == len(ids) == 31, ids

    finished = client.wait_all_finished(ids, timeout=120)

    assert [task["status"] for task in finished] == ["completed"] * len(ids), finished
    assert [task["result"]["echo"] for task in finished] == ["single", *range(30)]
    runs = Counter(e.task_id for e in stack.services.executions() if e.task_id in set(ids))
    assert all(runs[task_id] == 1 for task_id in ids), runs
    pids = {task["result"]["pid"] for task in finished}
    assert pids <= {worker.pid for worker in stack.workers.values()}, pids
    assert sorted(task["id"] for task in client.tasks(queue=queue)) == sorted(ids)
    checked(f"{len(ids)} tasks (1 single, 30 batched) completed once each by {len(pids)} worker(s)")


def test_an_idempotency_key_names_one_task(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    client = stack.client
    key = f"{queue}-{stack.backend}"
    first = client.enqueue("echo", queue=queue, idempotency_key=key, payload={"value": "first"})
    again = client.enqueue("echo", queue=queue, idempotency_key=key, payload={"value": "again"})
    batch_ids = client.enqueue_batch(
        [
            {"type": "echo", "queue": queue, "idempotency_key": key},
            {"type": "echo", "queue": queue, "payload": {"value": "other"}},
        ]
    )

    task_id = first.json()["task_id"]
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert again.json()["task_id"] == task_id
    assert batch_ids[0] == task_id
    assert batch_ids[1] != task_id
    finished = client.wait_all_finished(batch_ids)
    assert finished[0]["result"]["echo"] == "first", "the first enqueue's payload must win"
    assert len(client.tasks(queue=queue)) == 2
    assert len(stack.runs_of(task_id)) == 1
    checked("one key: 201 then 200 and the batch, all naming one task, which ran once")


def test_a_delayed_task_does_not_run_before_its_time(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    delay = 2.0
    response = stack.client.enqueue("echo", queue=queue, delay_seconds=delay)
    task = stack.client.wait_finished(response.json()["task_id"])

    assert task["status"] == "completed", task
    run_after, created = timestamp(task["run_after_utc"]), timestamp(task["created_at_utc"])
    started = timestamp(task["processing_started_utc"])
    assert run_after - created >= dt.timedelta(seconds=delay) - dt.timedelta(milliseconds=1)
    assert started >= run_after, f"claimed at {started}, before its run_after_utc {run_after}"
    checked(f"delay {delay} s: started {(started - run_after).total_seconds():.2f} s after due")


def test_a_failing_task_is_retried_until_it_succeeds(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    response = stack.client.enqueue("flaky", queue=queue, max_attempts=5, payload={"fail_times": 2})
    task = stack.client.wait_finished(response.json()["task_id"], timeout=90)

    assert task["status"] == "completed", task
    assert task["attempts"] == 3
    assert task["result"]["attempt"] == 3
    assert [attempt for attempt, _pid in stack.runs_of(task["id"])] == [1, 2, 3]
    checked("failed twice, retried with backoff, completed at attempt 3")


def test_a_task_failing_every_attempt_is_dead_lettered(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    message = "the upstream service is down"
    response = stack.client.enqueue(
        "broken", queue=queue, max_attempts=3, payload={"message": message}
    )
    task = stack.client.wait_finished(response.json()["task_id"], timeout=90)

    assert task["status"] == "failed", task
    assert task["attempts"] == task["max_attempts"] == 3
    assert message in task["error_message"]
    assert [t["id"] for t in stack.client.tasks(queue=queue, status="failed")] == [task["id"]]
    assert [attempt for attempt, _pid in stack.runs_of(task["id"])] == [1, 2, 3]
    checked("3 attempts failed: the task is dead-lettered (failed) with the handler's error")


def test_a_failed_task_is_run_again_by_a_retry(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    client = stack.client
    needed = stack.scratch / f"{queue}.input"
    response = client.enqueue("needs_file", queue=queue, payload={"path": str(needed)})
    task_id = response.json()["task_id"]
    failed = client.wait_finished(task_id)
    assert (failed["status"], failed["attempts"]) == ("failed", 1), failed

    needed.touch()
    retried = expect(client.retry(task_id), 200).json()
    assert (retried["status"], retried["attempts"]) == ("queued", 0), retried
    done = client.wait_finished(task_id)

    assert (done["status"], done["attempts"]) == ("completed", 1), done
    assert client.retry(task_id).status_code == 409, "retrying a completed task must be refused"
    assert len(stack.runs_of(task_id)) == 2
    checked("failed for good, retried by hand (200, attempts reset), then completed; 409 after")


def test_cancelling_a_queued_task_cancels_it_at_once(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    client = stack.client
    task_id = client.enqueue("echo", queue=queue, delay_seconds=AN_HOUR).json()["task_id"]

    cancelled = expect(client.cancel(task_id), 200).json()

    assert cancelled["status"] == "cancelled", cancelled
    task = client.task(task_id)
    assert (task["status"], task["attempts"]) == ("cancelled", 0), task
    assert client.cancel(task_id).status_code == 409, "cancelling it again must be refused"
    assert stack.runs_of(task_id) == []
    checked("queued task cancelled at once (200), never run; a second cancel is a 409")


def test_cancelling_a_running_task_stops_its_handler(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    client = stack.client
    never_opened = stack.scratch / f"{queue}.gate"
    payload = {"gate": str(never_opened), "timeout_seconds": 120}
    task_id = client.enqueue("hold", queue=queue, payload=payload).json()["task_id"]
    stack.wait_started(task_id)

    requested = expect(client.cancel(task_id), 200).json()
    task = client.wait_finished(task_id)

    assert requested["status"] == "cancel_requested", requested
    assert task["status"] == "cancelled", task
    messages = [line["message"] for line in client.logs(task_id)]
    assert CANCEL_SEEN_MESSAGE in messages, messages
    assert len(stack.runs_of(task_id)) == 1
    checked("running task: cancel_requested, the handler saw ctx.cancelled, task cancelled")


def _waiting_requests(client: QueueClient) -> float:
    for family in text_string_to_metric_families(client.metrics_text()):
        if family.name == "prismq_api_waiting_requests":
            return float(family.samples[0].value)
    raise AssertionError("/metrics has no prismq_api_waiting_requests")


def test_a_long_poll_answers_when_the_task_finishes(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    gate = stack.scratch / f"{queue}.gate"
    response = stack.client.enqueue("hold", queue=queue, payload={"gate": str(gate)})
    task_id = response.json()["task_id"]
    stack.wait_started(task_id)
    unfinished = stack.client.wait(task_id, timeout=0.5)
    assert unfinished["status"] == "leased", unfinished

    waiter = QueueClient(stack.client.base_url, stack.client.token)
    with waiter, ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(waiter.wait, task_id, 60)
        stack.services.wait_until(
            lambda: _waiting_requests(stack.client) >= 1, timeout=30, what="the long-poll to wait"
        )
        gate.touch()
        answer = waiting.result(timeout=90)

    assert answer["status"] == "completed", answer
    assert answer["result"]["gate_opened"] is True
    checked("a wait on an unfinished task returned it leased; a waiting long-poll got it done")


def _stats_counts(section: dict[str, Any]) -> Counter[str]:
    return Counter({status: section[status] for status in STATUSES if section[status]})


def test_stats_and_workers_match_the_database(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    client = stack.client
    ids = client.enqueue_batch([{"type": "echo", "queue": queue} for _ in range(5)])
    delayed = client.enqueue("echo", queue=queue, delay_seconds=AN_HOUR).json()["task_id"]
    client.wait_all_finished(ids)
    before = stack.wait_quiet(queued=1)

    stats = client.stats()
    workers = client.workers()
    after = read_counts(stack.database_url)
    expect(client.cancel(delayed), 200)

    assert before == after, "the database changed while the API was read"
    finished = ("completed", "failed", "cancelled")
    overall = {status: stats[f"{status}_tasks"] for status in ("queued", *finished)}
    assert overall == {status: before.by_status[status] for status in overall}
    assert stats["processing_tasks"] == before.by_status["leased"] == 0
    assert stats["total_tasks"] == before.total
    assert {name: _stats_counts(c) for name, c in stats["by_queue"].items()} == before.by_queue
    assert {name: _stats_counts(c) for name, c in stats["by_type"].items()} == before.by_type
    assert stats["oldest_queued_age_seconds"] is None, "a delayed task is not ready: no age"
    for worker_id, process in stack.workers.items():
        worker = workers[worker_id]
        assert (worker["state"], worker["pid"]) == ("active", process.pid), worker
        assert worker["concurrency"] == WORKER_CONCURRENCY
    checked(
        f"stats = database: {before.total} tasks in {len(before.by_queue)} queues and"
        f" {len(before.by_type)} types; {len(stack.workers)} workers active with their pids"
    )


def _samples(metrics_text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
    }


def test_metrics_match_the_database(
    stack: Stack, queue: str, checked: Callable[[str], None]
) -> None:
    client = stack.client
    ids = client.enqueue_batch([{"type": "echo", "queue": queue} for _ in range(3)])
    broken = {"type": "broken", "queue": queue, "max_attempts": 1, "payload": {"message": "x"}}
    ids += client.enqueue_batch([broken])
    client.wait_all_finished(ids)
    before = stack.wait_quiet()

    samples = _samples(client.metrics_text())
    after = read_counts(stack.database_url)

    assert before == after, "the database changed while /metrics was read"

    def sample(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset(labels.items())))

    assert sample("prismq_database_up") == 1
    compared = 0
    for status in STATUSES:
        assert sample("prismq_tasks", status=status) == before.by_status[status], status
        compared += 1
        for name, counts in before.by_queue.items():
            assert sample("prismq_tasks_by_queue", queue=name, status=status) == counts[status]
            compared += 1
        for name, counts in before.by_type.items():
            assert sample("prismq_tasks_by_type", type=name, status=status) == counts[status]
            compared += 1
    assert sample("prismq_workers", state="active") == len(before.running_workers)
    assert sample("prismq_workers", state="stopped") == len(before.stopped_workers)
    assert sample("prismq_oldest_queued_age_seconds") == 0, "nothing waits"
    checked(f"{compared} task gauges and the worker gauges of /metrics = the database")
