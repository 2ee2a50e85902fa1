"""What the hardware allows on SQLite: sqlite3 loops on a minimal table, no framework.

WAL, ``synchronous`` as given (NORMAL unless told otherwise), write transactions opened
with ``BEGIN IMMEDIATE`` like PrismQ's: one INSERT per transaction; batches inserted with
``executemany`` in one transaction; claims of 100 (``UPDATE ... WHERE id IN (SELECT ...
LIMIT 100) RETURNING``), each batch then completed in one UPDATE.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import make_url

from benchmarks.durability import sqlite_durability
from benchmarks.errors import BenchmarkError
from benchmarks.results import Measurement, batch_sizes, timed_steps

CLAIM_BATCH = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_jobs (
    id INTEGER PRIMARY KEY,
    status INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
CREATE INDEX IF NOT EXISTS raw_jobs_queued ON raw_jobs (id) WHERE status = 0;
"""
_INSERT = "INSERT INTO raw_jobs (payload) VALUES ('{}')"
_CLAIM = (
    "UPDATE raw_jobs SET status = 1 WHERE id IN"
    " (SELECT id FROM raw_jobs WHERE status = 0 ORDER BY id LIMIT ?) RETURNING id"
)


@contextmanager
def _connection(url: str, synchronous: str) -> Iterator[sqlite3.Connection]:
    path = make_url(url).database or ""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.executescript(_SCHEMA)
        yield conn
    finally:
        conn.close()


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def durability(url: str, synchronous: str) -> str:
    """The durability these loops run with."""
    with _connection(url, synchronous) as conn:
        return sqlite_durability(
            lambda name: conn.execute(f"PRAGMA {name}").fetchone()[0],
            make_url(url).database or "",
        )


def enqueue_single(url: str, tasks: int, *, synchronous: str) -> Measurement:
    """One INSERT, one committed transaction, per task."""
    with _connection(url, synchronous) as conn:
        measured = timed_steps(tasks, (functools.partial(_insert_one, conn) for _ in range(tasks)))
        _require_count(conn, 0, tasks)
    return measured


def _insert_one(conn: sqlite3.Connection) -> None:
    with _write(conn):
        conn.execute(_INSERT)


def _insert_rows(conn: sqlite3.Connection, rows: int) -> None:
    with _write(conn):
        conn.executemany(
            "INSERT INTO raw_jobs (payload) VALUES (?)", (("{}",) for _ in range(rows))
        )


def enqueue_batch(url: str, tasks: int, *, batch_size: int, synchronous: str) -> Measurement:
    """``executemany`` of ``batch_size`` rows per committed transaction."""
    with _connection(url, synchronous) as conn:
        steps = (
            functools.partial(_insert_rows, conn, size) for size in batch_sizes(tasks, batch_size)
        )
        measured = timed_steps(tasks, steps)
        _require_count(conn, 0, tasks)
    return measured


def drain(url: str, tasks: int, *, synchronous: str) -> Measurement:
    """Claim 100, complete those 100, repeat until nothing is left (two commits a batch)."""
    with _connection(url, synchronous) as conn:
        _insert_rows(conn, tasks)
        started = time.perf_counter()
        while True:
            with _write(conn):
                ids = [row[0] for row in conn.execute(_CLAIM, (CLAIM_BATCH,)).fetchall()]
            if not ids:
                break
            marks = ",".join("?" * len(ids))
            with _write(conn):
                conn.execute(f"UPDATE raw_jobs SET status = 2 WHERE id IN ({marks})", ids)
        seconds = time.perf_counter() - started
        _require_count(conn, 2, tasks)
    return Measurement(jobs=tasks, seconds=seconds)


def _require_count(conn: sqlite3.Connection, status: int, expected: int) -> None:
    row = conn.execute("SELECT sum(status = ?), count(*) FROM raw_jobs", (status,)).fetchone()
    if row is None or row[0] != expected or row[1] != expected:
        raise BenchmarkError(
            f"raw SQLite loop: expected {expected} rows of status {status}, found {row}"
        )
