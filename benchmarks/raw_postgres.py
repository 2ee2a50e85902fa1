"""What the hardware allows on PostgreSQL: psycopg 3 loops on a minimal table, no framework.

The same work as PrismQ's workloads, with the same durability (every transaction
committed on the same server): one INSERT per transaction; COPY in batches; claims of
100 with ``FOR UPDATE SKIP LOCKED``, each batch then completed in one UPDATE.
"""

from __future__ import annotations

import functools
import time

import psycopg

from benchmarks.durability import postgres_durability
from benchmarks.errors import BenchmarkError
from benchmarks.results import Measurement, batch_sizes, timed_steps
from benchmarks.scratch import connect_postgres

CLAIM_BATCH = 100

_SCHEMA = """
CREATE TABLE raw_jobs (
    id bigserial PRIMARY KEY,
    status smallint NOT NULL DEFAULT 0,
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX raw_jobs_queued ON raw_jobs (id) WHERE status = 0
"""
_INSERT = "INSERT INTO raw_jobs (payload) VALUES ('{}')"
_COPY = "COPY raw_jobs (payload) FROM STDIN"
_CLAIM = """
WITH claimed AS MATERIALIZED (
    SELECT id FROM raw_jobs WHERE status = 0 ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE raw_jobs SET status = 1 FROM claimed WHERE raw_jobs.id = claimed.id RETURNING raw_jobs.id
"""
_COMPLETE = "UPDATE raw_jobs SET status = 2 WHERE id = ANY(%s)"


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = connect_postgres(url)
    for statement in _SCHEMA.split(";"):
        conn.execute(statement)
    return conn


def enqueue_single(url: str, tasks: int) -> Measurement:
    """One INSERT, one commit (autocommit), per task."""
    with _connect(url) as conn:
        measured = timed_steps(
            tasks, (functools.partial(conn.execute, _INSERT) for _ in range(tasks))
        )
        _require_count(conn, 0, tasks)
    return measured


def _copy_rows(conn: psycopg.Connection[tuple[object, ...]], rows: int) -> None:
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(_COPY) as copy:
        for _ in range(rows):
            copy.write_row(("{}",))


def enqueue_batch(url: str, tasks: int, *, batch_size: int) -> Measurement:
    """COPY in batches of ``batch_size``, each committed."""
    with _connect(url) as conn:
        steps = (
            functools.partial(_copy_rows, conn, size) for size in batch_sizes(tasks, batch_size)
        )
        measured = timed_steps(tasks, steps)
        _require_count(conn, 0, tasks)
    return measured


def drain(url: str, tasks: int) -> Measurement:
    """Claim 100, complete those 100, repeat until nothing is left (two commits a batch)."""
    with _connect(url) as conn:
        _copy_rows(conn, tasks)
        conn.execute("ANALYZE raw_jobs")
        started = time.perf_counter()
        while True:
            with conn.transaction():
                ids = [row[0] for row in conn.execute(_CLAIM, (CLAIM_BATCH,))]
            if not ids:
                break
            with conn.transaction():
                conn.execute(_COMPLETE, (ids,))
        seconds = time.perf_counter() - started
        _require_count(conn, 2, tasks)
    return Measurement(jobs=tasks, seconds=seconds)


def _require_count(
    conn: psycopg.Connection[tuple[object, ...]], status: int, expected: int
) -> None:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = %s), count(*) FROM raw_jobs", (status,)
    ).fetchone()
    if row is None or row[0] != expected or row[1] != expected:
        raise BenchmarkError(
            f"raw PostgreSQL loop: expected {expected} rows of status {status}, found {row}"
        )


def durability(url: str) -> str:
    """The durability these loops run with: the server's own settings."""
    with connect_postgres(url) as conn:
        return postgres_durability(lambda name: _first(conn.execute(f"SHOW {name}").fetchone()))


def _first(row: tuple[object, ...] | None) -> object:
    return None if row is None else row[0]
