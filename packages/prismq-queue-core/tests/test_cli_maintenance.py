"""The operator commands: ``prismq db backup|restore``, ``prismq maintenance ...``,
``prismq stats show``. Run in-process through :func:`prismq.queue.cli.main`.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from conformance_support import count_tasks, db_now
from sqlalchemy import update

from prismq.queue import (
    QueueDatabase,
    TaskNotFoundError,
    claim_tasks,
    complete,
    enqueue,
    fail,
    get_task,
    request_cancel,
)
from prismq.queue.cli import main
from prismq.queue.models import task_table


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_error(err: str) -> None:
    assert err.startswith("prismq: error: ")
    assert "Traceback" not in err


def make_finished(db: QueueDatabase, task_type: str, outcome: str, days_ago: float = 0) -> int:
    task_id = enqueue(db, task_type).task_id
    [claimed] = claim_tasks(db, "cli-worker", 1, strategy="lifo")
    if outcome == "completed":
        complete(db, task_id, claimed.lease_token)
    else:
        fail(db, task_id, claimed.lease_token, "boom", retryable=False)
    if days_ago:
        with db.write() as conn:
            conn.execute(
                update(task_table)
                .where(task_table.c.id == task_id)
                .values(finished_at_utc=db_now(db) - dt.timedelta(days=days_ago))
            )
    return task_id


# -- prismq stats show -------------------------------------------------------------------


def test_stats_prints_a_table(
    db: QueueDatabase, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    enqueue(db, "email")
    make_finished(db, "email", "completed")
    make_finished(db, "resize", "failed")
    request_cancel(db, enqueue(db, "resize").task_id)

    code, out, err = run(capsys, "stats", "show", "--database-url", database_url)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"PrismQ queue at {db.display_url}, ")
    for label, count in [
        ("queued", 1),
        ("processing", 0),
        ("completed", 1),
        ("failed", 1),
        ("cancelled", 1),
        ("total", 4),
    ]:
        assert f"{label:<10}  {count:>5}" in lines
    assert "oldest ready task waiting: " in out
    assert "last 300 s: 1 completed, 1 failed (0.00333/s, success rate 50.0%)" in lines
    assert any(
        line.startswith("processing time: p50 ") and line.endswith(" s (n=1)") for line in lines
    )
    header = "type    queued  leased  completed  failed  cancelled  total"
    assert header in lines
    assert "email        1       0          1       0          0      2" in lines
    assert "resize       0       0          0       1          1      2" in lines
    assert "default       1       0          1       1          1      4" in lines


def test_stats_json(
    db: QueueDatabase, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    enqueue(db, "email", queue="mail")
    make_finished(db, "email", "completed")

    code, out, _ = run(
        capsys, "stats", "show", "--json", "--window", "60", "--database-url", database_url
    )

    assert code == 0
    document = json.loads(out)
    assert document["total_tasks"] == 2
    assert document["queued_tasks"] == 1
    assert document["completed_tasks"] == 1
    assert document["by_queue"]["mail"]["queued"] == 1
    assert document["by_type"]["email"]["total"] == 2
    assert document["throughput"]["window_seconds"] == 60
    assert document["throughput"]["completed"] == 1
    assert document["throughput"]["success_rate"] == 1.0
    assert document["processing_time_seconds"]["sample_size"] == 1


def test_stats_of_an_empty_queue(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", "show", "--database-url", database_url)
    assert code == 0
    assert "oldest ready task waiting: none" in out
    assert "processing time: no completed tasks" in out
    assert "success rate n/a" in out


def test_unreachable_database_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A directory where the file should be: SQLite cannot open it.
    code, _, err = run(capsys, "stats", "show", "--database-url", f"sqlite:///{tmp_path}")
    assert code == 1
    assert_clean_error(err)


# -- prismq maintenance ------------------------------------------------------------------


def test_purge(db: QueueDatabase, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    old_completed = make_finished(db, "t", "completed", days_ago=10)
    old_failed = make_finished(db, "t", "failed", days_ago=10)
    recent = make_finished(db, "t", "completed", days_ago=1)

    code, out, _ = run(
        capsys,
        "maintenance",
        "purge",
        "--older-than-days",
        "7",
        "--status",
        "completed",
        "--logs",
        "--workers",
        "--database-url",
        database_url,
    )

    assert code == 0
    assert "deleted 1 completed tasks older than 7 days" in out
    assert "deleted 0 log lines" in out
    assert "deleted 0 workers" in out
    with pytest.raises(TaskNotFoundError):
        get_task(db, old_completed)
    assert get_task(db, recent).status.value == "completed"
    assert get_task(db, old_failed).status.value == "failed"

    code, out, _ = run(
        capsys, "maintenance", "purge", "--older-than-days", "7", "--database-url", database_url
    )
    assert code == 0
    assert "deleted 1 cancelled/completed/failed tasks" in out
    with pytest.raises(TaskNotFoundError):
        get_task(db, old_failed)
    assert count_tasks(db) == 1


@pytest.mark.parametrize(
    "arguments",
    [
        [],  # --older-than-days is required
        ["--older-than-days", "-1"],
        ["--older-than-days", "soon"],
        ["--older-than-days", "1", "--status", "queued"],
        ["--older-than-days", "1", "--batch-size", "0"],
    ],
)
def test_purge_usage_errors(
    database_url: str, capsys: pytest.CaptureFixture[str], arguments: list[str]
) -> None:
    code, out, err = run(capsys, "maintenance", "purge", *arguments, "--database-url", database_url)
    assert code == 2
    assert out == ""
    assert "usage:" in err
    assert "Traceback" not in err


def test_optimize(database_url: str, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "maintenance", "optimize", "--database-url", database_url)
    assert code == 0
    assert ("VACUUM" if backend == "sqlite" else "VACUUM (ANALYZE)") in out
    assert out.rstrip().splitlines()[-1].startswith("done in ")


def test_integrity_check_ok(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "maintenance", "integrity-check", "--database-url", database_url)
    assert code == 0
    assert out.startswith("ok: ")


@pytest.mark.backend("sqlite")
def test_integrity_check_problems_exit_1(
    db: QueueDatabase, database_url: str, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = sqlite3.connect(db.url.database or "")
    try:
        with raw:  # foreign_keys is off on a plain connection
            raw.execute(
                "INSERT INTO task_logs (task_id, at_utc, level, message)"
                " VALUES (42, '2024-01-01 00:00:00.000000', 'info', 'orphan')"
            )
    finally:
        raw.close()

    code, out, err = run(capsys, "maintenance", "integrity-check", "--database-url", database_url)

    assert code == 1
    assert "failed the integrity check" in err
    assert out == "task_logs row 1: no matching row in task_queue\n"


# -- prismq db backup | restore ----------------------------------------------------------


@pytest.mark.backend("sqlite")
def test_backup_and_restore(
    db: QueueDatabase,
    database_url: str,
    backend: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kept = enqueue(db, "kept").task_id
    target = tmp_path / "backup.db"

    code, out, _ = run(capsys, "db", "backup", str(target), "--database-url", database_url)
    assert code == 0
    assert out == f"backed up {db.display_url} to {target}\n"

    code, _, err = run(capsys, "db", "backup", str(target), "--database-url", database_url)
    assert code == 1
    assert_clean_error(err)
    assert "already exists" in err
    code, _, _ = run(
        capsys, "db", "backup", str(target), "--overwrite", "--database-url", database_url
    )
    assert code == 0

    enqueue(db, "after-backup")
    code, _, err = run(capsys, "db", "restore", str(target), "--database-url", database_url)
    assert code == 1
    assert "--yes" in err
    assert count_tasks(db) == 2

    code, out, _ = run(
        capsys, "db", "restore", str(target), "--yes", "--database-url", database_url
    )
    assert code == 0
    assert "restored" in out
    with QueueDatabase(database_url) as reopened:
        assert count_tasks(reopened) == 1
        assert get_task(reopened, kept).type == "kept"


@pytest.mark.backend("sqlite")
def test_restore_of_a_bad_file_is_a_clean_error(
    database_url: str, backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_text("not a database" * 100)
    code, _, err = run(capsys, "db", "restore", str(bogus), "--yes", "--database-url", database_url)
    assert code == 1
    assert_clean_error(err)
    assert "not a usable SQLite database" in err


@pytest.mark.backend("postgresql")
def test_backup_on_postgresql_points_at_pg_dump(
    database_url: str, backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "db", "backup", str(tmp_path / "b.db"), "--database-url", database_url
    )
    assert code == 1
    assert_clean_error(err)
    assert "pg_dump" in err
    # The password, if any, is never echoed.
    assert "postgresql+psycopg://postgres@" in err
    code, _, err = run(
        capsys, "db", "restore", str(tmp_path / "b.db"), "--yes", "--database-url", database_url
    )
    assert code == 1
    assert_clean_error(err)
    assert "pg_restore" in err
