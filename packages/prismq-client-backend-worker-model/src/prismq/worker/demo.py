"""A walkthrough of the worker package: ``python -m prismq.worker.demo``.

It works in a temporary SQLite database of its own (never ``$PRISMQ_DATABASE_URL``):
migrates it, registers handlers, creates workers with several scheduling strategies,
enqueues tasks through the core, runs them, and shows the results and statistics.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prismq.queue import QueueDatabase, RetryPolicy, SchedulingStrategy, enqueue, get_task
from prismq.queue.migrate import upgrade
from prismq.worker.config import WorkerConfig
from prismq.worker.context import TaskContext
from prismq.worker.database import WorkerDatabase
from prismq.worker.engine import WorkerEngine
from prismq.worker.errors import PermanentTaskError
from prismq.worker.registry import TaskHandlerRegistry

RULE = "=" * 70
#: Retries a second apart at most, so the demo never waits long for a retry to be due.
DEMO_RETRY_POLICY = RetryPolicy(base_seconds=0.05, max_seconds=0.2, jitter=0.0)


def section(number: int, title: str) -> None:
    """Print a section banner."""
    print(f"\n{RULE}\nDEMO {number}: {title}\n{RULE}\n")


def check(message: str) -> None:
    """Print one ✓ line."""
    print(f"   ✓ {message}")


def build_registry(seen: list[str]) -> TaskHandlerRegistry:
    """The demo's handlers; ``seen`` collects the labels of the tasks run, in order."""
    registry = TaskHandlerRegistry()

    @registry.handler("test_task", description="echoes its payload")
    def test_task(payload: dict[str, Any]) -> dict[str, Any]:
        seen.append(str(payload.get("label", "")))
        return {"echo": payload}

    @registry.handler("resize_image", description="pretends to resize, reporting progress")
    def resize_image(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        ctx.progress({"percent": 50})
        ctx.log(f"resizing to {payload['width']} px")
        return {"width": payload["width"], "attempt": ctx.attempt}

    @registry.handler("send_email", description="an async handler")
    async def send_email(payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"sent_to": payload["to"]}

    @registry.handler("flaky", description="fails on its first attempt, then succeeds")
    def flaky(payload: dict[str, Any], ctx: TaskContext) -> str:
        if ctx.attempt == 1:
            raise ConnectionError("temporary outage")
        return f"succeeded on attempt {ctx.attempt}"

    @registry.handler("invalid_input", description="fails without retry")
    def invalid_input(payload: dict[str, Any]) -> None:
        raise PermanentTaskError(f"cannot process {payload!r}")

    return registry


def run_until_idle(worker: WorkerEngine, db: QueueDatabase, task_ids: Sequence[int]) -> None:
    """Run rounds until none of ``task_ids`` is waiting any more (retries included)."""
    for _ in range(200):
        worker.run_once()
        if all(get_task(db, task_id).status.is_terminal for task_id in task_ids):
            return
    raise RuntimeError("the demo's tasks did not finish")


def demo_creation(worker_db: WorkerDatabase, registry: TaskHandlerRegistry) -> WorkerEngine:
    """DEMO 1: the database, the registry and a worker."""
    section(1, "Worker Database Creation")
    print("1. Created WorkerDatabase instance")
    check(f"Database initialized: {worker_db.queue_database.display_url}")
    check("Schema created (migrated to the current revision)")
    print("\n2. Created and configured TaskHandlerRegistry")
    for info in registry:
        kind = "async" if info.is_async else "sync"
        check(f"Registered {info.task_type} handler ({kind}): {info.description}")
    print("\n3. Created worker using WorkerDatabase.create_worker()")
    config = WorkerConfig(
        worker_id="worker-01",
        scheduling_strategy=SchedulingStrategy.PRIORITY,
        capabilities={"type": "processor"},
        concurrency=2,
        poll_interval_seconds=0.1,
    )
    worker = worker_db.create_worker("worker-01", config, registry, retry_policy=DEMO_RETRY_POLICY)
    check(f"Worker ID: {worker.worker_id}")
    check(f"Strategy: {worker.config.scheduling_strategy}")
    check(f"Capabilities: {worker.config.capabilities}")
    return worker


def demo_running(worker: WorkerEngine, db: QueueDatabase) -> None:
    """DEMO 2: tasks enqueued through the core, run by the worker."""
    section(2, "Running Tasks")
    task_ids = [
        enqueue(db, "test_task", {"label": "hello"}).task_id,
        enqueue(db, "resize_image", {"width": 640}).task_id,
        enqueue(db, "send_email", {"to": "ada@example.com"}).task_id,
    ]
    print(f"1. Enqueued {len(task_ids)} tasks through prismq.queue.enqueue")
    run_until_idle(worker, db, task_ids)
    print("\n2. Ran them with worker.run_once()")
    for task_id in task_ids:
        task = get_task(db, task_id)
        check(f"task {task.id} ({task.type}): {task.status.value}, result {task.result}")


def demo_failures(worker: WorkerEngine, db: QueueDatabase) -> None:
    """DEMO 3: a retried failure and a permanent one."""
    section(3, "Failures, Retries and Dead Letters")
    flaky_id = enqueue(db, "flaky", {}).task_id
    invalid_id = enqueue(db, "invalid_input", {"n": -1}).task_id
    run_until_idle(worker, db, [flaky_id, invalid_id])
    flaky = get_task(db, flaky_id)
    invalid = get_task(db, invalid_id)
    check(f"flaky: {flaky.status.value} after {flaky.attempts} attempts ({flaky.result})")
    error = (invalid.error_message or "").splitlines()[0]
    check(f"invalid_input: {invalid.status.value} after {invalid.attempts} attempt ({error})")


def demo_strategies(
    worker_db: WorkerDatabase, registry: TaskHandlerRegistry, seen: list[str]
) -> None:
    """DEMO 4: the same tasks claimed in each strategy's order (``seen`` records it)."""
    section(4, "Multiple Worker Strategies")
    db = worker_db.queue_database
    for strategy in SchedulingStrategy:
        queue = f"demo-{strategy.value}"
        task_ids = [
            enqueue(
                db, "test_task", {"label": f"p{priority}"}, queue=queue, priority=priority
            ).task_id
            for priority in (50, 10, 90, 30)
        ]
        config = WorkerConfig(
            worker_id=f"worker-{strategy.value}",
            scheduling_strategy=strategy,
            queues=(queue,),
            concurrency=1,
        )
        worker = worker_db.create_worker(config.worker_id, config, registry)
        seen.clear()
        run_until_idle(worker, db, task_ids)
        worker.stop()
        order = " ".join(seen)
        check(f"{strategy.value:<15} ran p50 p10 p90 p30 (enqueued in that order) as: {order}")


def demo_stats(worker_db: WorkerDatabase, worker: WorkerEngine) -> None:
    """DEMO 5: what the database and the engine know about a worker."""
    section(5, "Worker Statistics")
    worker.stop()
    stats = worker_db.get_worker_stats(worker.worker_id)
    check(f"worker {stats['worker_id']} on {stats['hostname']} (pid {stats['pid']})")
    check(f"stopped cleanly: {stats['stopped_at_utc'] is not None}")
    check(f"tasks still leased: {stats['leased_tasks']}")
    check(f"engine counters: {stats['engine']}")


def show_worker_warnings() -> None:
    """Print the worker's warnings (failed attempts, dead letters) inline, indented."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("   · worker log: %(message)s"))
    worker_logger = logging.getLogger("prismq.worker")
    worker_logger.addHandler(handler)
    worker_logger.setLevel(logging.WARNING)
    worker_logger.propagate = False


def main() -> int:
    """Run every section in a temporary database; returns the exit status."""
    show_worker_warnings()
    with tempfile.TemporaryDirectory(prefix="prismq-demo-") as folder:
        url = f"sqlite:///{Path(folder) / 'demo.db'}"
        with QueueDatabase(url) as db:
            upgrade(db)
        seen: list[str] = []
        registry = build_registry(seen)
        with WorkerDatabase(url) as worker_db:
            worker = demo_creation(worker_db, registry)
            demo_running(worker, worker_db.queue_database)
            demo_failures(worker, worker_db.queue_database)
            demo_strategies(worker_db, registry, seen)
            demo_stats(worker_db, worker)
            print("\n4. Database closed cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
