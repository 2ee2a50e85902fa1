"""``prismq`` commands for operators: backup/restore, maintenance and queue statistics.

* ``prismq db backup PATH [--overwrite]`` / ``prismq db restore PATH --yes`` (SQLite)
* ``prismq maintenance purge --older-than-days N [--status S ...] [--logs] [--workers]``
* ``prismq maintenance optimize`` / ``prismq maintenance integrity-check``
* ``prismq stats show [--json] [--window SECONDS]``

Registered into :mod:`prismq.queue.cli` through its :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from prismq.queue import backup, maintenance, metrics
from prismq.queue.cli import (
    EXIT_ERROR,
    EXIT_OK,
    CommandRegistry,
    add_database_url_argument,
    open_database,
)
from prismq.queue.status import TERMINAL_STATUSES, TaskStatus

__all__ = ["register"]

_FINAL_STATUS_NAMES = sorted(status.value for status in TERMINAL_STATUSES)


def register(cli: CommandRegistry) -> None:
    """Add the backup, maintenance and stats commands to ``prismq``.

    ``db`` is a built-in group of :mod:`prismq.queue.cli`, declared before any module's.
    """
    cli.add_command(
        "db",
        "backup",
        help="copy the SQLite database to PATH, consistently, while workers keep running",
        handler=_db_backup,
        arguments=_backup_arguments,
    )
    cli.add_command(
        "db",
        "restore",
        help="replace the SQLite database with the backup at PATH (stop workers and API first)",
        handler=_db_restore,
        arguments=_restore_arguments,
    )
    cli.add_group("maintenance", help="keep the database small and healthy")
    cli.add_command(
        "maintenance",
        "purge",
        help="delete finished tasks (with their logs) older than N days",
        handler=_purge,
        arguments=_purge_arguments,
    )
    cli.add_command(
        "maintenance",
        "optimize",
        help="SQLite: ANALYZE, VACUUM, WAL checkpoint; PostgreSQL: VACUUM (ANALYZE)",
        handler=_optimize,
        arguments=add_database_url_argument,
    )
    cli.add_command(
        "maintenance",
        "integrity-check",
        help="run the database's consistency check; exit 1 if it finds problems",
        handler=_integrity_check,
        arguments=add_database_url_argument,
    )
    cli.add_group("stats", help="queue depth, backlog age, throughput and processing times")
    cli.add_command(
        "stats",
        "show",
        help="print the queue's statistics as a table, or as JSON with --json",
        handler=_stats,
        arguments=_stats_arguments,
    )


# -- argument types ----------------------------------------------------------------------


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= maintenance.MAX_PURGE_BATCH_SIZE:
        raise argparse.ArgumentTypeError(
            f"must be from 1 to {maintenance.MAX_PURGE_BATCH_SIZE}, not {value}"
        )
    return value


# -- prismq db backup | restore ----------------------------------------------------------


def _backup_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_url_argument(parser)
    parser.add_argument("path", metavar="PATH", help="file to write the backup to")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace PATH if it exists (default: refuse)"
    )


def _db_backup(args: argparse.Namespace) -> int:
    with open_database(args) as db:
        written = backup.backup_sqlite(db, args.path, overwrite=args.overwrite)
        print(f"backed up {db.display_url} to {written}")
    return EXIT_OK


def _restore_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_url_argument(parser)
    parser.add_argument("path", metavar="PATH", help="backup file written by `prismq db backup`")
    parser.add_argument(
        "--yes",
        action="store_true",
        help="confirm: the database's current content is replaced by the backup",
    )


def _db_restore(args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            "prismq: error: a restore replaces everything in the database with the backup."
            " Stop every worker and the API, then run again with --yes.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    with open_database(args) as db:
        restored = backup.restore_sqlite(db, args.path)
        print(f"restored {args.path} into {restored}; start the workers and the API again")
    return EXIT_OK


# -- prismq maintenance purge | optimize | integrity-check -------------------------------


def _purge_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_url_argument(parser)
    parser.add_argument(
        "--older-than-days",
        type=_non_negative_float,
        required=True,
        metavar="N",
        help="delete what finished (or was written) more than N days ago; may be fractional",
    )
    parser.add_argument(
        "--status",
        action="append",
        choices=_FINAL_STATUS_NAMES,
        help="purge only tasks of this final status; repeat for several (default: all three)",
    )
    parser.add_argument(
        "--logs",
        action="store_true",
        help="also delete log lines older than N days of the tasks that are kept",
    )
    parser.add_argument(
        "--workers",
        action="store_true",
        help="also delete workers that stopped (or last sent a heartbeat) over N days ago",
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=maintenance.DEFAULT_PURGE_BATCH_SIZE,
        metavar="ROWS",
        help=f"rows deleted per transaction (default: {maintenance.DEFAULT_PURGE_BATCH_SIZE})",
    )


def _purge(args: argparse.Namespace) -> int:
    days: float = args.older_than_days
    statuses = [TaskStatus(name) for name in args.status or _FINAL_STATUS_NAMES]
    with open_database(args) as db:
        tasks = maintenance.purge_finished_tasks(db, days, statuses, batch_size=args.batch_size)
        print(
            f"deleted {tasks} {'/'.join(s.value for s in statuses)} tasks older than {days:g}"
            " days, with their logs"
        )
        if args.logs:
            logs = maintenance.purge_task_logs(db, days, batch_size=args.batch_size)
            print(f"deleted {logs} log lines older than {days:g} days")
        if args.workers:
            workers = maintenance.purge_stopped_workers(db, days, batch_size=args.batch_size)
            print(f"deleted {workers} workers gone for more than {days:g} days")
    return EXIT_OK


def _optimize(args: argparse.Namespace) -> int:
    with open_database(args) as db:
        report = maintenance.optimize(db)
    for operation in report.operations:
        print(operation)
    print(f"done in {report.elapsed_seconds:.2f} s")
    return EXIT_OK


def _integrity_check(args: argparse.Namespace) -> int:
    with open_database(args) as db:
        problems = maintenance.integrity_check(db)
        if not problems:
            print(f"ok: {db.display_url} passed the integrity check")
            return EXIT_OK
        print(f"{db.display_url} failed the integrity check:", file=sys.stderr)
    for problem in problems:
        print(problem)
    return EXIT_ERROR


# -- prismq stats show -------------------------------------------------------------------


def _stats_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_url_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--window",
        type=_positive_float,
        default=metrics.DEFAULT_WINDOW_SECONDS,
        metavar="SECONDS",
        help="look-back of throughput and processing times (default: %(default)g)",
    )


def _stats(args: argparse.Namespace) -> int:
    window: float = args.window
    with open_database(args) as db:
        stats = metrics.queue_stats(db)
        rate = metrics.throughput(db, window)
        times = metrics.processing_time_percentiles(db, window)
        where = db.display_url
    if args.json:
        document = stats.as_dict()
        document["throughput"] = {
            "window_seconds": rate.window_seconds,
            "completed": rate.completed,
            "failed": rate.failed,
            "completed_per_second": rate.completed_per_second,
            "success_rate": rate.success_rate,
        }
        document["processing_time_seconds"] = {
            "window_seconds": times.window_seconds,
            "sample_size": times.sample_size,
            "p50": times.p50,
            "p95": times.p95,
            "p99": times.p99,
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print("\n".join(_stats_lines(where, stats, rate, times)))
    return EXIT_OK


def _stats_lines(
    where: str,
    stats: metrics.QueueStats,
    rate: metrics.Throughput,
    times: metrics.ProcessingTimes,
) -> list[str]:
    age = stats.oldest_queued_age_seconds
    success = "n/a" if rate.success_rate is None else f"{rate.success_rate:.1%}"
    lines = [
        f"PrismQ queue at {where}, {stats.measured_at_utc:%Y-%m-%d %H:%M:%S} UTC",
        "",
        *_table(
            ["tasks", "count"],
            [
                ["queued", stats.queued_tasks],
                ["processing", stats.processing_tasks],
                ["completed", stats.completed_tasks],
                ["failed", stats.failed_tasks],
                ["cancelled", stats.cancelled_tasks],
                ["total", stats.total_tasks],
            ],
        ),
        "",
        "oldest ready task waiting: " + ("none" if age is None else f"{age:.1f} s"),
        f"last {rate.window_seconds:g} s: {rate.completed} completed, {rate.failed} failed"
        f" ({rate.completed_per_second:.3g}/s, success rate {success})",
        "processing time: "
        + (
            "no completed tasks"
            if times.p50 is None or times.p95 is None or times.p99 is None
            else f"p50 {times.p50:.3f} s, p95 {times.p95:.3f} s, p99 {times.p99:.3f} s"
            f" (n={times.sample_size})"
        ),
    ]
    for title, breakdown in (("type", stats.by_type), ("queue", stats.by_queue)):
        if breakdown:
            lines += ["", *_breakdown_table(title, breakdown)]
    return lines


def _breakdown_table(title: str, breakdown: Mapping[str, metrics.StatusCounts]) -> list[str]:
    statuses = [status.value for status in TaskStatus]
    rows: list[list[Any]] = []
    for name, counts in breakdown.items():
        as_dict = counts.as_dict()
        rows.append([name, *(as_dict[status] for status in statuses), counts.total])
    return _table([title, *statuses, "total"], rows)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """Left-aligned first column, right-aligned numbers, columns as wide as their content."""
    cells = [header, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in cells
    ]
