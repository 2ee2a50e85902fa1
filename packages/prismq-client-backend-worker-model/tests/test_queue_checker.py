"""The queue checker itself, on synthetic histories: it must fail when it should."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from queue_checker import Execution, check_queue, parse_executions, read_executions

KILLED = 1111
ALIVE_A = 2222
ALIVE_B = 3333


@dataclasses.dataclass(frozen=True)
class Row:
    id: int
    status: str
    result: Any = None


def completed_by(task_id: int, pid: int, attempt: int = 1) -> Row:
    return Row(task_id, "completed", {"pid": pid, "attempt": attempt})


def run(task_id: int, pid: int, attempt: int = 1) -> Execution:
    return Execution(task_id=task_id, attempt=attempt, pid=pid)


def test_a_clean_history_passes() -> None:
    report = check_queue(
        enqueued_ids=[1, 2, 3],
        final_rows=[completed_by(1, ALIVE_A), completed_by(2, ALIVE_B), completed_by(3, ALIVE_A)],
        executions=[run(1, ALIVE_A), run(2, ALIVE_B), run(3, ALIVE_A)],
        killed_pids=[],
        done_reports=[(1, "a"), (2, "b"), (3, "a")],
    )
    assert report.ok
    assert (report.enqueued, report.completed, report.executions) == (3, 3, 3)
    assert (report.lost, report.duplicated, report.unexpected, report.unexecuted) == (0, 0, 0, 0)
    assert report.reexecuted_after_kill == 0
    assert report.final_statuses == {"completed": 3}


def test_a_task_never_completed_is_lost() -> None:
    report = check_queue(
        enqueued_ids=[1, 2, 3],
        final_rows=[completed_by(1, ALIVE_A), Row(2, "queued")],  # 3 has no row at all
        executions=[run(1, ALIVE_A)],
        killed_pids=[],
    )
    assert not report.ok
    assert report.lost_ids == (2, 3)
    assert report.completed == 1
    assert "lost=2" in report.format()
    assert "lost_ids=[2, 3]" in report.format()


def test_a_failed_or_leased_task_is_lost_too() -> None:
    report = check_queue(
        enqueued_ids=[1, 2],
        final_rows=[Row(1, "failed"), Row(2, "leased")],
        executions=[run(1, ALIVE_A), run(2, KILLED)],
        killed_pids=[KILLED],
    )
    assert report.lost_ids == (1, 2)
    assert report.final_statuses == {"failed": 1, "leased": 1}


def test_two_done_reports_are_a_duplicate_even_if_the_database_shows_one() -> None:
    report = check_queue(
        enqueued_ids=[1],
        final_rows=[completed_by(1, ALIVE_B)],
        executions=[run(1, ALIVE_B)],
        killed_pids=[],
        done_reports=[(1, "worker-a"), (1, "worker-b")],
    )
    assert report.duplicated_ids == (1,)
    assert not report.ok


def test_a_reexecution_after_a_live_worker_is_a_duplicate() -> None:
    # Two executions and nobody was killed: the task ran twice for no reason.
    report = check_queue(
        enqueued_ids=[1],
        final_rows=[completed_by(1, ALIVE_B, attempt=2)],
        executions=[run(1, ALIVE_A, 1), run(1, ALIVE_B, 2)],
        killed_pids=[KILLED],
    )
    assert report.duplicated_ids == (1,)
    assert report.reexecuted_after_kill == 0


def test_a_reexecution_explained_by_a_killed_worker_is_not_a_duplicate() -> None:
    report = check_queue(
        enqueued_ids=[1, 2],
        final_rows=[completed_by(1, ALIVE_A, attempt=3), completed_by(2, ALIVE_A)],
        executions=[run(1, KILLED, 1), run(1, 4444, 2), run(2, ALIVE_A), run(1, ALIVE_A, 3)],
        killed_pids=[KILLED, 4444],
        done_reports=[(1, "a"), (2, "a")],
    )
    assert report.ok, report.format()
    assert report.reexecuted_after_kill == 2
    assert report.executions == 4
    assert "kills=2" in report.format()


def test_a_kill_explains_only_the_earlier_executions() -> None:
    # The killed pid ran last; the earlier run on a live worker is still unexplained.
    report = check_queue(
        enqueued_ids=[1],
        final_rows=[completed_by(1, KILLED, attempt=2)],
        executions=[run(1, ALIVE_A, 1), run(1, KILLED, 2)],
        killed_pids=[KILLED],
    )
    assert report.duplicated_ids == (1,)


def test_a_result_from_an_earlier_execution_slipped_past_the_fencing() -> None:
    # The killed worker's result is stored although a later execution held the lease.
    report = check_queue(
        enqueued_ids=[1],
        final_rows=[completed_by(1, KILLED, attempt=1)],
        executions=[run(1, KILLED, 1), run(1, ALIVE_A, 2)],
        killed_pids=[KILLED],
    )
    assert report.duplicated_ids == (1,)


def test_one_attempt_run_twice_is_a_duplicate_even_on_a_killed_worker() -> None:
    # The same lease ran twice in the process that was later killed.
    report = check_queue(
        enqueued_ids=[1],
        final_rows=[completed_by(1, ALIVE_A, attempt=2)],
        executions=[run(1, KILLED, 1), run(1, KILLED, 1), run(1, ALIVE_A, 2)],
        killed_pids=[KILLED],
    )
    assert report.duplicated_ids == (1,)


def test_a_released_task_may_run_its_attempt_again() -> None:
    # Given back at a graceful shutdown: the attempt was not counted, the rerun is fine.
    report = check_queue(
        enqueued_ids=[1],
        final_rows=[completed_by(1, ALIVE_B, attempt=1)],
        executions=[run(1, KILLED, 1), run(1, ALIVE_B, 1)],
        killed_pids=[KILLED],
        released_ids=[1],
    )
    assert report.ok, report.format()
    assert report.reexecuted_after_kill == 1


def test_ids_never_enqueued_are_unexpected() -> None:
    report = check_queue(
        enqueued_ids=[1],
        final_rows=[completed_by(1, ALIVE_A), completed_by(7, ALIVE_A), Row(8, "queued")],
        executions=[run(1, ALIVE_A), run(7, ALIVE_A), run(9, ALIVE_A)],
        killed_pids=[],
        done_reports=[(1, "a"), (7, "a"), (10, "a")],
    )
    assert report.unexpected_ids == (7, 9, 10)
    assert report.completed == 1  # only enqueued tasks count as completed
    assert report.lost == 0


def test_a_completed_task_without_a_recorded_execution_is_flagged() -> None:
    report = check_queue(
        enqueued_ids=[1, 2],
        final_rows=[completed_by(1, ALIVE_A), completed_by(2, ALIVE_A)],
        executions=[run(1, ALIVE_A)],
        killed_pids=[],
    )
    assert report.unexecuted_ids == (2,)
    assert not report.ok


def test_format_is_one_line_with_every_count() -> None:
    report = check_queue(
        enqueued_ids=range(1, 30),
        final_rows=[],
        executions=[],
        killed_pids=[KILLED],
    )
    line = report.format()
    assert "\n" not in line
    for name in ("enqueued=29", "completed=0", "lost=29", "duplicated=0", "unexpected=0"):
        assert name in line
    assert "reexecuted_after_kill=0" in line
    assert "kills=1" in line
    assert "...(+19)" in line


def test_executions_are_parsed_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "executions.log"
    assert read_executions(path) == []
    path.write_text("5 1 100\n\n3 2 200\n", encoding="utf-8")
    assert read_executions(path) == [run(5, 100, 1), run(3, 200, 2)]


@pytest.mark.parametrize("line", ["5 1", "5 1 100 7", "5 x 100", "task 1 100"])
def test_a_torn_or_malformed_execution_line_fails_loudly(line: str) -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_executions(["1 1 1", line])
