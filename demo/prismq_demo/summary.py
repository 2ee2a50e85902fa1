"""The summary printed once the workload is finished, from the tasks as the API returned them:
a table with one row per task type, then the special tasks and what became of them."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

FINAL_STATUSES = ("completed", "failed", "cancelled")
_HEADERS = ("task type", "tasks", *FINAL_STATUSES, "attempts", "mean wait s", "mean run s")


def parse_time(text: str | None) -> dt.datetime | None:
    """An API timestamp (RFC 3339; Python 3.10's ``fromisoformat`` does not take ``Z``)."""
    if text is None:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds(start: str | None, end: str | None) -> float | None:
    begun, ended = parse_time(start), parse_time(end)
    if begun is None or ended is None:
        return None
    return (ended - begun).total_seconds()


def _mean(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    return f"{statistics.fmean(known):.2f}" if known else "-"


def _row(label: str, tasks: list[dict[str, Any]]) -> tuple[str, ...]:
    by_status = {
        status: sum(task["status"] == status for task in tasks) for status in FINAL_STATUSES
    }
    return (
        label,
        str(len(tasks)),
        *(str(by_status[status]) for status in FINAL_STATUSES),
        str(sum(task["attempts"] for task in tasks)),
        # Waiting: from enqueue to the start of the last attempt (retry backoffs included).
        _mean([_seconds(task["created_at_utc"], task["processing_started_utc"]) for task in tasks]),
        # Running: the last attempt, from its start to its end.
        _mean(
            [_seconds(task["processing_started_utc"], task["finished_at_utc"]) for task in tasks]
        ),
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells))
    return lines


def type_table(tasks: list[dict[str, Any]]) -> list[str]:
    """One row per task type (and a total): counts per final status, attempts, mean times."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        by_type[task["type"]].append(task)
    rows: list[tuple[str, ...]] = [_HEADERS]
    rows += [_row(task_type, by_type[task_type]) for task_type in sorted(by_type)]
    rows.append(_row("all", tasks))
    lines = _table(rows)
    lines.insert(1, "  " + "-" * (len(lines[0]) - 2))
    lines.insert(len(lines) - 1, lines[1])
    return lines


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def describe_special(role: str, task: dict[str, Any]) -> str:
    """What became of one special task, in one line."""
    head = f"  {role:<14} task {task['id']:<6} {task['type']:<15}"
    attempts = f"{task['attempts']} of {task['max_attempts']} attempts"
    status = task["status"]
    if role == "delayed":
        due, started = task["run_after_utc"], task["processing_started_utc"]
        late = _seconds(due, started)
        after_due = f", {late:.2f} s after it was due" if late is not None else ""
        created = _seconds(task["created_at_utc"], due)
        scheduled = f"scheduled {created:.1f} s after it was enqueued" if created else "scheduled"
        return f"{head}{status}: {scheduled}; started {_clock(started)}{after_due}"
    error = _first_line(task["error_message"])
    said = f"; last error: {error}" if error else ""
    return f"{head}{status} after {attempts}{said}"


def _clock(text: str | None) -> str:
    moment = parse_time(text)
    return moment.strftime("%H:%M:%S.%f")[:-3] + " UTC" if moment else "never"


def special_lines(
    roles: Mapping[int, str], tasks: Mapping[int, dict[str, Any]], logs: Mapping[int, list[str]]
) -> list[str]:
    """One line per special task; ``logs`` adds, per task id, the log lines worth showing."""
    lines = []
    for task_id, role in roles.items():
        lines.append(describe_special(role, tasks[task_id]))
        lines += [f"  {'':<14} {'':<6}  log: {line}" for line in logs.get(task_id, [])]
    return lines
