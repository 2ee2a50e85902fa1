"""A queue checker in the spirit of Jepsen's: was every task done, and done once?

It judges a finished multi-process run from what survives a SIGKILL:

- the ids the test enqueued;
- the final task rows (status and stored result);
- the executions file, one ``task_id attempt pid`` line per handler start, each line
  flushed and fsynced before the handler does anything else;
- the pids the test SIGKILLed;
- optionally, the ``event=done`` lines of every worker's log (task id → reporting worker).

Delivery is at least once, so a task may run again after its worker was killed; it must
never be *completed* twice, and a re-execution is only acceptable when every earlier
execution ran on a killed process, each under a claim of its own (a new attempt), and the
stored result comes from the last one.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

COMPLETED = "completed"


class FinalTaskRow(Protocol):
    """What the checker reads of a task row (a :class:`prismq.queue.TaskRecord` fits)."""

    @property
    def id(self) -> int: ...

    @property
    def status(self) -> Any: ...

    @property
    def result(self) -> Any: ...


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Execution:
    """One start of a handler, as the ``record`` handler wrote it."""

    task_id: int
    attempt: int
    pid: int


def parse_executions(lines: Iterable[str]) -> list[Execution]:
    """Executions from ``task_id attempt pid`` lines, in file (that is, start) order.

    A malformed line fails loudly: it would mean the file was not written line-atomically.
    """
    executions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3 or not all(field.isdigit() for field in fields):
            raise ValueError(f"executions line {number} is not 'task_id attempt pid': {line!r}")
        task_id, attempt, pid = (int(field) for field in fields)
        executions.append(Execution(task_id=task_id, attempt=attempt, pid=pid))
    return executions


def read_executions(path: Path) -> list[Execution]:
    """The executions recorded in ``path`` (none if the file was never created)."""
    if not path.exists():
        return []
    return parse_executions(path.read_text(encoding="utf-8").splitlines())


def _status_value(status: Any) -> str:
    return str(getattr(status, "value", status))


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class QueueReport:
    """The checker's verdict: the counts, and the task ids behind each anomaly."""

    enqueued: int
    completed: int
    executions: int
    kills: int
    lost_ids: tuple[int, ...]
    duplicated_ids: tuple[int, ...]
    unexpected_ids: tuple[int, ...]
    unexecuted_ids: tuple[int, ...]
    reexecuted_after_kill: int
    final_statuses: Mapping[str, int]

    @property
    def lost(self) -> int:
        """Enqueued tasks that did not end ``completed``."""
        return len(self.lost_ids)

    @property
    def duplicated(self) -> int:
        """Tasks completed more than once, or re-run without a killed worker to explain it."""
        return len(self.duplicated_ids)

    @property
    def unexpected(self) -> int:
        """Tasks completed, executed or reported done that were never enqueued."""
        return len(self.unexpected_ids)

    @property
    def unexecuted(self) -> int:
        """Tasks stored as completed although no execution of their handler was recorded."""
        return len(self.unexecuted_ids)

    @property
    def ok(self) -> bool:
        """True when nothing was lost, duplicated, unexpected or completed unexecuted."""
        return not (self.lost or self.duplicated or self.unexpected or self.unexecuted)

    def format(self) -> str:
        """A one-line summary, with a few ids of each anomaly."""
        statuses = ",".join(f"{name}:{n}" for name, n in sorted(self.final_statuses.items()))
        line = (
            f"enqueued={self.enqueued} completed={self.completed} lost={self.lost}"
            f" duplicated={self.duplicated} unexpected={self.unexpected}"
            f" unexecuted={self.unexecuted} executions={self.executions}"
            f" reexecuted_after_kill={self.reexecuted_after_kill} kills={self.kills}"
            f" final_statuses={{{statuses}}}"
        )
        for name, ids in (
            ("lost_ids", self.lost_ids),
            ("duplicated_ids", self.duplicated_ids),
            ("unexpected_ids", self.unexpected_ids),
            ("unexecuted_ids", self.unexecuted_ids),
        ):
            if ids:
                more = f"...(+{len(ids) - 10})" if len(ids) > 10 else ""
                line += f" {name}={list(ids[:10])}{more}"
        return line


def _completer_mismatch(row: FinalTaskRow, last: Execution) -> bool:
    """True when the stored result names another execution than the last one.

    Only the holder of the newest lease can complete a task, and the newest lease belongs
    to the last execution: a result from an earlier one slipped past the fencing.
    """
    result = row.result
    if not isinstance(result, dict) or "pid" not in result:
        return False
    return result.get("pid") != last.pid or result.get("attempt", last.attempt) != last.attempt


def check_queue(
    *,
    enqueued_ids: Iterable[int],
    final_rows: Iterable[FinalTaskRow],
    executions: Sequence[Execution],
    killed_pids: Iterable[int],
    done_reports: Iterable[tuple[int, str]] = (),
    released_ids: Iterable[int] = (),
) -> QueueReport:
    """Judge a finished run.

    ``done_reports`` holds ``(task_id, worker_id)`` for every ``event=done`` log line, so a
    completion reported twice is caught even if the database shows one. Each claim counts
    an attempt, so two executions of one attempt mean one lease ran twice, unless the task
    was given back at a graceful shutdown (``released_ids``: that attempt is not counted).
    """
    enqueued = set(enqueued_ids)
    killed = set(killed_pids)
    rows = {row.id: row for row in final_rows}
    completed_ids = {
        task_id for task_id, row in rows.items() if _status_value(row.status) == COMPLETED
    }
    runs: defaultdict[int, list[Execution]] = defaultdict(list)
    for execution in executions:
        runs[execution.task_id].append(execution)
    done_counts = Counter(task_id for task_id, _worker in done_reports)
    released = set(released_ids)

    unexpected = (completed_ids | set(runs) | set(done_counts)) - enqueued
    lost = enqueued - completed_ids
    unexecuted = (completed_ids & enqueued) - set(runs)
    duplicated: set[int] = {task_id for task_id, count in done_counts.items() if count > 1}
    reexecuted_after_kill = 0
    for task_id, task_runs in runs.items():
        earlier, last = task_runs[:-1], task_runs[-1]
        unexplained = any(run.pid not in killed for run in earlier)
        fenced_wrongly = task_id in completed_ids and _completer_mismatch(rows[task_id], last)
        attempts = [run.attempt for run in task_runs]
        one_lease_twice = task_id not in released and len(set(attempts)) < len(attempts)
        if unexplained or fenced_wrongly or one_lease_twice:
            duplicated.add(task_id)
        elif task_id not in duplicated:
            reexecuted_after_kill += len(earlier)

    return QueueReport(
        enqueued=len(enqueued),
        completed=len(completed_ids & enqueued),
        executions=len(executions),
        kills=len(killed),
        lost_ids=tuple(sorted(lost)),
        duplicated_ids=tuple(sorted(duplicated)),
        unexpected_ids=tuple(sorted(unexpected)),
        unexecuted_ids=tuple(sorted(unexecuted)),
        reexecuted_after_kill=reexecuted_after_kill,
        final_statuses=dict(Counter(_status_value(row.status) for row in rows.values())),
    )
