"""``WorkerDatabase``: the worker-side view of a PrismQ database, and a factory of workers.

It opens a core :class:`~prismq.queue.QueueDatabase` (the URL given, else
``$PRISMQ_DATABASE_URL``, else the per-user SQLite file) and offers what a worker process
needs: create engines, register and heartbeat a worker, claim one task, an executor, and a
worker's statistics. It never migrates: a worker refuses to start on a database that is not
at the schema this code expects (:class:`~prismq.queue.SchemaNotMigratedError` names the
``prismq db upgrade`` command to run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import Any

from prismq.queue import (
    DEFAULT_LEASE_SECONDS,
    ClaimedTask,
    QueueDatabase,
    RetryPolicy,
    SchedulingStrategy,
    TaskStatus,
    claim_tasks,
    heartbeat,
    list_tasks,
    list_workers,
    register_worker,
)
from prismq.worker.config import WorkerConfig
from prismq.worker.engine import WorkerEngine
from prismq.worker.errors import WorkerError
from prismq.worker.execution import TaskExecutor
from prismq.worker.registry import TaskHandlerRegistry

#: Page size when counting a worker's leased tasks.
_PAGE = 500


class WorkerNotFoundError(WorkerError, LookupError):
    """No worker with that id has ever registered in this database."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"no worker {worker_id!r} is registered in this database")
        self.worker_id = worker_id


class WorkerDatabase:
    """Worker-side operations on one PrismQ database. Use as a context manager or close()."""

    def __init__(self, database_url: str | None = None) -> None:
        self._db = QueueDatabase(database_url)
        self._engines: dict[str, WorkerEngine] = {}

    @property
    def queue_database(self) -> QueueDatabase:
        """The core database underneath, for the lifecycle functions of ``prismq.queue``."""
        return self._db

    def create_worker(
        self,
        worker_id: str,
        config: WorkerConfig | None = None,
        handler_registry: TaskHandlerRegistry | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
    ) -> WorkerEngine:
        """A :class:`WorkerEngine` on this database, named ``worker_id``.

        ``config`` defaults to ``WorkerConfig(worker_id=worker_id)``; a config naming
        another worker id is used with ``worker_id`` instead. The engine checks the schema
        and registers itself when it starts running.
        """
        if config is None:
            config = WorkerConfig(worker_id=worker_id)
        elif config.worker_id != worker_id:
            config = dataclasses.replace(config, worker_id=worker_id)
        engine = WorkerEngine(
            self._db, config, handler_registry or TaskHandlerRegistry(), retry_policy=retry_policy
        )
        self._engines[worker_id] = engine
        return engine

    def register_worker_heartbeat(
        self, worker_id: str, capabilities: dict[str, Any] | None = None
    ) -> bool:
        """Heartbeat ``worker_id``, registering it first if it is unknown or was stopped.

        Returns True when the worker was (re-)registered, False for a plain heartbeat.
        """
        if heartbeat(self._db, worker_id):
            return False
        register_worker(self._db, worker_id, capabilities=capabilities or {})
        return True

    def claim_task(
        self,
        worker_id: str,
        *,
        strategy: SchedulingStrategy | str = SchedulingStrategy.PRIORITY,
        queues: Collection[str] | None = None,
        task_types: Collection[str] | None = None,
        capabilities: dict[str, Any] | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> ClaimedTask | None:
        """Lease the next eligible task to ``worker_id``, or None when there is none."""
        claimed = claim_tasks(
            self._db,
            worker_id,
            n=1,
            strategy=strategy,
            queues=queues,
            task_types=task_types,
            capabilities=capabilities,
            lease_seconds=lease_seconds,
        )
        return claimed[0] if claimed else None

    def get_executor(
        self, *, worker_id: str = "", retry_policy: RetryPolicy | None = None
    ) -> TaskExecutor:
        """A :class:`TaskExecutor`: complete, fail, release, renew or run claimed tasks."""
        return TaskExecutor(self._db, worker_id=worker_id, retry_policy=retry_policy)

    def get_worker_stats(self, worker_id: str) -> dict[str, Any]:
        """The worker's registry row, its heartbeat age, the tasks it holds leased now and,
        for a worker created here, its in-process counters (``engine``).

        Raises :class:`WorkerNotFoundError` for an id that never registered.
        """
        worker = next((w for w in list_workers(self._db) if w.worker_id == worker_id), None)
        if worker is None:
            raise WorkerNotFoundError(worker_id)
        leased = self._leased_task_ids(worker_id)
        stats: dict[str, Any] = {
            "worker_id": worker.worker_id,
            "hostname": worker.hostname,
            "pid": worker.pid,
            "capabilities": worker.capabilities,
            "queues": worker.queues,
            "strategy": worker.strategy,
            "concurrency": worker.concurrency,
            "started_at_utc": worker.started_at_utc,
            "heartbeat_utc": worker.heartbeat_utc,
            "stopped_at_utc": worker.stopped_at_utc,
            "heartbeat_age_seconds": worker.heartbeat_age_seconds,
            "is_stale": worker.is_stale,
            "is_active": worker.is_active,
            "leased_tasks": len(leased),
            "leased_task_ids": leased,
        }
        engine = self._engines.get(worker_id)
        if engine is not None:
            stats["engine"] = engine.stats.as_dict()
        return stats

    def _leased_task_ids(self, worker_id: str) -> list[int]:
        # Leased tasks number at most the fleet's total concurrency: a few pages at most.
        ids: list[int] = []
        cursor: str | None = None
        while True:
            page = list_tasks(self._db, status=TaskStatus.LEASED, limit=_PAGE, cursor=cursor)
            ids.extend(task.id for task in page.items if task.locked_by == worker_id)
            cursor = page.next_cursor
            if cursor is None:
                return sorted(ids)

    def close(self) -> None:
        """Stop the workers created here that still run, then close the database."""
        for engine in self._engines.values():
            if engine.is_running:
                engine.stop()
        self._db.close()

    def __enter__(self) -> WorkerDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WorkerDatabase({self._db.display_url!r})"


def create_worker_from_config(
    worker_id: str,
    config_path: str | Path | None = None,
    handler_registry: TaskHandlerRegistry | None = None,
    database_url: str | None = None,
) -> WorkerEngine:
    """A worker built from a config file (and ``PRISMQ_WORKER_*`` variables).

    ``worker_id`` and ``database_url`` override the file and the environment. Without a
    ``handler_registry`` the handlers come from the config file's ``handlers`` list. The
    engine owns its database connection and closes it when it stops.
    """
    config = WorkerConfig.load(config_path, worker_id=worker_id, database_url=database_url)
    if handler_registry is None:
        handler_registry = TaskHandlerRegistry()
        if config_path is not None:
            handler_registry.load_file(config_path)
    db = QueueDatabase(config.database_url)
    return WorkerEngine(db, config, handler_registry, owns_database=True)
