"""Worker registration, heartbeats, and who is alive."""

from __future__ import annotations

import os
import socket
from collections.abc import Collection
from typing import Any

from sqlalchemy import select, update

from prismq.queue.database import QueueDatabase
from prismq.queue.records import WorkerRecord
from prismq.queue.strategies import SchedulingStrategy
from prismq.queue.tables import DEFAULT_QUEUE, worker_table
from prismq.queue.validation import check_json_object, check_name, check_names, check_seconds

_w = worker_table.c
#: A worker whose heartbeat is older than this is reported stale.
DEFAULT_STALE_AFTER_SECONDS = 60.0


def register_worker(
    db: QueueDatabase,
    worker_id: str,
    *,
    capabilities: dict[str, Any] | None = None,
    queues: Collection[str] = (DEFAULT_QUEUE,),
    strategy: SchedulingStrategy | str = SchedulingStrategy.PRIORITY,
    concurrency: int = 1,
    hostname: str | None = None,
    pid: int | None = None,
) -> None:
    """Record a worker as started now (again, if the id was used before)."""
    check_name("worker_id", worker_id, 200)
    values: dict[str, Any] = {
        "hostname": hostname if hostname is not None else socket.gethostname(),
        "pid": pid if pid is not None else os.getpid(),
        "capabilities": check_json_object("capabilities", capabilities),
        "queues": check_names("queues", queues),
        "strategy": SchedulingStrategy.parse(strategy).value,
        "concurrency": int(concurrency),
        "started_at_utc": db.dialect.now(),
        "heartbeat_utc": db.dialect.now(),
        "stopped_at_utc": None,
    }
    statement = db.dialect.insert_or_update(
        worker_table, {"worker_id": worker_id, **values}, ["worker_id"], values
    )
    with db.write() as conn:
        conn.execute(statement)


def heartbeat(db: QueueDatabase, worker_id: str) -> bool:
    """Note that the worker is alive; False if it is unknown or was marked stopped.

    A late heartbeat never brings a stopped worker back: only :func:`register_worker` does.
    """
    with db.write_statement() as conn:
        updated = conn.execute(
            update(worker_table)
            .where(_w.worker_id == worker_id, _w.stopped_at_utc.is_(None))
            .values(heartbeat_utc=db.dialect.now())
            .returning(_w.worker_id)
        ).first()
    return updated is not None


def mark_worker_stopped(db: QueueDatabase, worker_id: str) -> bool:
    """Record a clean stop; returns False if the worker was never registered."""
    with db.write() as conn:
        updated = conn.execute(
            update(worker_table)
            .where(_w.worker_id == worker_id)
            .values(stopped_at_utc=db.dialect.now())
            .returning(_w.worker_id)
        ).first()
    return updated is not None


def list_workers(
    db: QueueDatabase,
    *,
    stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS,
    include_stopped: bool = True,
) -> list[WorkerRecord]:
    """Every registered worker with its heartbeat age on the database clock."""
    stale_after = check_seconds("stale_after_seconds", stale_after_seconds)
    query = select(worker_table, db.dialect.now().label("db_now")).order_by(_w.worker_id)
    if not include_stopped:
        query = query.where(_w.stopped_at_utc.is_(None))
    with db.read() as conn:
        rows = conn.execute(query).mappings().all()
    workers = []
    for row in rows:
        age = (row["db_now"] - row["heartbeat_utc"]).total_seconds()
        workers.append(
            WorkerRecord(
                worker_id=row["worker_id"],
                hostname=row["hostname"],
                pid=row["pid"],
                capabilities=row["capabilities"],
                queues=list(row["queues"]),
                strategy=row["strategy"],
                concurrency=row["concurrency"],
                started_at_utc=row["started_at_utc"],
                heartbeat_utc=row["heartbeat_utc"],
                stopped_at_utc=row["stopped_at_utc"],
                heartbeat_age_seconds=max(age, 0.0),
                is_stale=row["stopped_at_utc"] is None and age > stale_after,
            )
        )
    return workers


def list_stale_workers(
    db: QueueDatabase, *, stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS
) -> list[WorkerRecord]:
    """Workers not stopped cleanly whose heartbeat is older than ``stale_after_seconds``."""
    return [
        worker
        for worker in list_workers(
            db, stale_after_seconds=stale_after_seconds, include_stopped=False
        )
        if worker.is_stale
    ]
