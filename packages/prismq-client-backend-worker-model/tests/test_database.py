"""WorkerDatabase, TaskExecutor and create_worker_from_config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from worker_support import FAST_RETRY

from prismq.queue import (
    QueueDatabase,
    SchedulingStrategy,
    TaskStatus,
    enqueue,
    get_task,
    list_workers,
    mark_worker_stopped,
    request_cancel,
)
from prismq.worker import (
    PermanentTaskError,
    TaskContext,
    TaskExecutor,
    TaskHandlerRegistry,
    TaskOutcome,
    WorkerConfig,
    WorkerDatabase,
    WorkerEngine,
    WorkerNotFoundError,
    create_worker_from_config,
)


@pytest.fixture
def worker_db(database_url: str) -> Any:
    with WorkerDatabase(database_url) as opened:
        yield opened


def _registry() -> TaskHandlerRegistry:
    registry = TaskHandlerRegistry()
    registry.register_handler("echo", lambda payload: payload)
    return registry


# -- opening -----------------------------------------------------------------------------------


def test_opens_the_url_given(worker_db: WorkerDatabase, database_url: str) -> None:
    assert isinstance(worker_db.queue_database, QueueDatabase)
    assert worker_db.queue_database.url.database == QueueDatabase(database_url).url.database
    assert "WorkerDatabase(" in repr(worker_db)


def test_defaults_to_the_database_url_variable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRISMQ_DATABASE_URL", database_url)
    with WorkerDatabase() as opened:
        assert opened.queue_database.url.database == QueueDatabase(database_url).url.database


def test_the_context_manager_stops_running_workers_and_closes(database_url: str) -> None:
    with WorkerDatabase(database_url) as opened:
        worker = opened.create_worker("ctx-w", handler_registry=_registry())
        assert worker.run_once() == 0
        assert worker.is_running
    assert not worker.is_running
    with QueueDatabase(database_url) as db:
        [row] = [w for w in list_workers(db) if w.worker_id == "ctx-w"]
        assert row.stopped_at_utc is not None


# -- create_worker ---------------------------------------------------------------------------


def test_create_worker_with_the_default_config(worker_db: WorkerDatabase) -> None:
    worker = worker_db.create_worker("worker-01")
    assert isinstance(worker, WorkerEngine)
    assert worker.worker_id == "worker-01"
    assert worker.config == WorkerConfig(worker_id="worker-01")
    assert len(worker.registry) == 0


def test_create_worker_uses_its_worker_id_over_the_configs(worker_db: WorkerDatabase) -> None:
    config = WorkerConfig(worker_id="other", scheduling_strategy="fifo", concurrency=3)
    registry = _registry()
    worker = worker_db.create_worker("worker-02", config, registry)
    assert worker.worker_id == "worker-02"
    assert worker.config.scheduling_strategy is SchedulingStrategy.FIFO
    assert worker.config.concurrency == 3
    assert worker.registry is registry


def test_a_created_worker_runs_tasks_on_this_database(worker_db: WorkerDatabase) -> None:
    db = worker_db.queue_database
    task_id = enqueue(db, "echo", {"x": 1}).task_id
    worker = worker_db.create_worker("worker-03", handler_registry=_registry())
    assert worker.run_once() == 1
    worker.stop()
    assert get_task(db, task_id).result == {"x": 1}


# -- register_worker_heartbeat -------------------------------------------------------------


def test_register_worker_heartbeat_registers_then_heartbeats(worker_db: WorkerDatabase) -> None:
    db = worker_db.queue_database
    assert worker_db.register_worker_heartbeat("hb", {"gpu": True}) is True
    [row] = list_workers(db)
    assert row.capabilities == {"gpu": True}
    assert worker_db.register_worker_heartbeat("hb") is False
    [again] = list_workers(db)
    assert again.heartbeat_utc >= row.heartbeat_utc
    assert again.capabilities == {"gpu": True}


def test_register_worker_heartbeat_registers_a_stopped_worker_again(
    worker_db: WorkerDatabase,
) -> None:
    db = worker_db.queue_database
    worker_db.register_worker_heartbeat("hb")
    mark_worker_stopped(db, "hb")
    assert worker_db.register_worker_heartbeat("hb") is True
    [row] = list_workers(db)
    assert row.stopped_at_utc is None


# -- claim_task ------------------------------------------------------------------------------


def test_claim_task_leases_one_task_by_strategy(worker_db: WorkerDatabase) -> None:
    db = worker_db.queue_database
    low = enqueue(db, "echo", {}, priority=500).task_id
    urgent = enqueue(db, "echo", {}, priority=5).task_id
    claimed = worker_db.claim_task("c1", strategy=SchedulingStrategy.PRIORITY)
    assert claimed is not None
    assert claimed.id == urgent
    fifo = worker_db.claim_task("c1", strategy="fifo", lease_seconds=5)
    assert fifo is not None
    assert fifo.id == low
    assert worker_db.claim_task("c1") is None


def test_claim_task_filters(worker_db: WorkerDatabase) -> None:
    db = worker_db.queue_database
    enqueue(db, "echo", {}, queue="a", compatibility={"gpu": True})
    assert worker_db.claim_task("c2", queues=["b"]) is None
    assert worker_db.claim_task("c2", task_types=["other"]) is None
    assert worker_db.claim_task("c2", capabilities={"gpu": False}) is None
    claimed = worker_db.claim_task("c2", queues=["a"], capabilities={"gpu": True})
    assert claimed is not None
    assert claimed.queue == "a"


# -- the executor ----------------------------------------------------------------------------


def _claim(worker_db: WorkerDatabase, task_type: str = "echo", **task: Any) -> Any:
    enqueue(worker_db.queue_database, task_type, {"n": 1}, **task)
    claimed = worker_db.claim_task("executor", task_types=[task_type])
    assert claimed is not None
    return claimed


def test_executor_lifecycle_calls(worker_db: WorkerDatabase) -> None:
    db = worker_db.queue_database
    executor = worker_db.get_executor(worker_id="executor")
    assert isinstance(executor, TaskExecutor)

    task = _claim(worker_db)
    assert executor.renew(task, lease_seconds=60) is False
    assert executor.complete(task, {"ok": True}) is TaskStatus.COMPLETED
    assert get_task(db, task.id).result == {"ok": True}

    task = _claim(worker_db)
    assert executor.fail(task, "boom") is TaskStatus.QUEUED

    task = _claim(worker_db, max_attempts=5)
    assert executor.fail(task, "bad input", retryable=False) is TaskStatus.FAILED

    task = _claim(worker_db)
    assert executor.release(task) is TaskStatus.QUEUED
    assert get_task(db, task.id).attempts == 0


def test_executor_run_records_each_outcome(worker_db: WorkerDatabase) -> None:
    db = worker_db.queue_database
    executor = worker_db.get_executor(worker_id="executor", retry_policy=FAST_RETRY)
    registry = TaskHandlerRegistry()
    contexts: list[TaskContext] = []

    @registry.handler("ok")
    def ok(payload: dict[str, Any], ctx: TaskContext) -> int:
        contexts.append(ctx)
        return payload["n"] + 1

    @registry.handler("permanent")
    def permanent(payload: dict[str, Any]) -> None:
        raise PermanentTaskError("no")

    def transient(payload: dict[str, Any]) -> None:
        raise TimeoutError("slow upstream")

    registry.register_handler("transient", transient)
    registry.register_handler("transient_last", transient)

    ok_task = _claim(worker_db, "ok")
    assert executor.run(ok_task, registry) is TaskOutcome.COMPLETED
    assert get_task(db, ok_task.id).result == 2
    assert contexts[0].worker_id == "executor"

    assert executor.run(_claim(worker_db, "permanent"), registry) is TaskOutcome.DEAD_LETTERED
    assert executor.run(_claim(worker_db, "transient"), registry) is TaskOutcome.RETRYING

    last = _claim(worker_db, "transient_last", max_attempts=1)
    assert executor.run(last, registry) is TaskOutcome.DEAD_LETTERED

    cancelled = _claim(worker_db, "ok")
    request_cancel(db, cancelled.id)
    assert executor.run(cancelled, registry) is TaskOutcome.CANCELLED
    assert get_task(db, cancelled.id).status is TaskStatus.CANCELLED

    lost = _claim(worker_db, "ok")
    executor.release(lost)
    assert executor.run(lost, registry) is TaskOutcome.LEASE_LOST
    executor.close()


def test_executor_run_fails_a_task_without_handler_for_good(worker_db: WorkerDatabase) -> None:
    executor = worker_db.get_executor()
    task = _claim(worker_db, "unknown_type", max_attempts=5)
    assert executor.run(task, TaskHandlerRegistry()) is TaskOutcome.DEAD_LETTERED
    stored = get_task(worker_db.queue_database, task.id)
    assert stored.status is TaskStatus.FAILED
    assert "no handler is registered for task type 'unknown_type'" in (stored.error_message or "")


# -- statistics ------------------------------------------------------------------------------


def test_get_worker_stats(worker_db: WorkerDatabase) -> None:
    db = worker_db.queue_database
    worker = worker_db.create_worker(
        "stats-w", WorkerConfig(worker_id="stats-w", capabilities={"os": "linux"}), _registry()
    )
    enqueue(db, "echo", {})
    assert worker.run_once() == 1
    held = worker_db.claim_task("stats-w", task_types=["other"])  # nothing of that type
    assert held is None
    enqueue(db, "other", {})
    leased = worker_db.claim_task("stats-w")
    assert leased is not None

    stats = worker_db.get_worker_stats("stats-w")
    assert stats["worker_id"] == "stats-w"
    assert stats["capabilities"] == {"os": "linux"}
    assert stats["is_active"] is True
    assert stats["stopped_at_utc"] is None
    assert stats["leased_tasks"] == 1
    assert stats["leased_task_ids"] == [leased.id]
    assert stats["engine"]["completed"] == 1
    assert stats["heartbeat_age_seconds"] >= 0

    worker.stop()
    assert worker_db.get_worker_stats("stats-w")["is_active"] is False


def test_get_worker_stats_of_an_unknown_worker(worker_db: WorkerDatabase) -> None:
    with pytest.raises(WorkerNotFoundError, match="no worker 'ghost'") as raised:
        worker_db.get_worker_stats("ghost")
    assert raised.value.worker_id == "ghost"
    assert isinstance(raised.value, LookupError)


def test_get_worker_stats_of_a_worker_registered_elsewhere(worker_db: WorkerDatabase) -> None:
    worker_db.register_worker_heartbeat("remote")
    stats = worker_db.get_worker_stats("remote")
    assert stats["leased_tasks"] == 0
    assert "engine" not in stats


# -- create_worker_from_config -------------------------------------------------------------


HANDLERS_MODULE = """
def double(payload):
    return payload["n"] * 2
"""


def test_create_worker_from_config(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config_handlers.py").write_text(HANDLERS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config_file = tmp_path / "worker.toml"
    config_file.write_text(
        '[worker]\nworker_id = "from-file"\nconcurrency = 2\nstrategy = "lifo"\n\n'
        '[[handlers]]\ntask_type = "double"\nmodule = "config_handlers"\nfunction = "double"\n'
    )
    worker = create_worker_from_config("cfg-w", config_file, database_url=database_url)
    assert worker.worker_id == "cfg-w"
    assert worker.config.scheduling_strategy is SchedulingStrategy.LIFO
    assert worker.registry.get_registered_types() == ["double"]
    task_id = enqueue(worker.db, "double", {"n": 21}).task_id
    assert worker.run_once() == 1
    assert get_task(worker.db, task_id).result == 42
    worker.stop()


def test_create_worker_from_config_with_a_registry_and_no_file(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRISMQ_WORKER_CONCURRENCY", "7")
    worker = create_worker_from_config(
        "env-w", handler_registry=_registry(), database_url=database_url
    )
    assert worker.config.concurrency == 7
    assert worker.run_once() == 0
    worker.stop()
