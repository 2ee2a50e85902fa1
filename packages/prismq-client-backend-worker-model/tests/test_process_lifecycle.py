"""A real ``prismq-worker`` process: shutdown, leases, fencing, cancellation, routing.

Each test starts worker processes with the handlers of :mod:`process_handlers` and
watches the database, the workers' logs and the handlers' executions file until what it
expects has happened (or a deadline passes). Handlers that must still be running at some
moment wait for a gate file the test creates, so nothing depends on a sleep being long
enough.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from process_harness import (
    HANDLERS,
    WorkerFleet,
    WorkerProcess,
    run_worker_to_exit,
    task_in,
    worker_row,
)

from prismq.queue import (
    QueueDatabase,
    TaskStatus,
    enqueue,
    get_task,
    reclaim_expired_leases,
    request_cancel,
)

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(180)]

LEASE_SECONDS = 2.0
HEARTBEAT_SECONDS = 0.5
#: Long enough for anything a worker does on a busy machine; the tests pass much sooner.
PATIENCE_SECONDS = 60.0


@pytest.fixture
def fleet(database_url: str, tmp_path: Path) -> Iterator[WorkerFleet]:
    with WorkerFleet(database_url, tmp_path / "run") as workers:
        yield workers


def start_worker(fleet: WorkerFleet, worker_id: str, **options: Any) -> WorkerProcess:
    """A worker with a short lease and heartbeat, so lease expiry happens within a test."""
    settings: dict[str, Any] = {
        "lease_seconds": LEASE_SECONDS,
        "heartbeat_interval": HEARTBEAT_SECONDS,
        "concurrency": 2,
        **options,
    }
    return fleet.start(worker_id, **settings)


def event_names(events: list[dict[str, str]]) -> list[str]:
    return [event["event"] for event in events]


# --- graceful shutdown -------------------------------------------------------------------


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_stop_signal_lets_a_running_handler_finish_within_the_grace(
    db: QueueDatabase, fleet: WorkerFleet, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    gate = tmp_path / "gate"
    worker = start_worker(fleet, "graceful", shutdown_grace=PATIENCE_SECONDS)
    task_id = enqueue(db, "gated", {"gate": str(gate)}).task_id
    fleet.wait_for_execution(task_id)

    worker.send(stop_signal)
    fleet.wait_for_event(worker, "stopping")
    gate.touch()  # the handler finishes now, well within the grace
    exit_code = worker.wait_exit(timeout=PATIENCE_SECONDS)

    assert exit_code == 0, worker.log_tail()
    task = get_task(db, task_id)
    assert task.status is TaskStatus.COMPLETED, worker.log_tail()
    assert task.attempts == 1
    assert task.result == {"pid": worker.pid, "attempt": 1, "gate_opened": True}
    row = worker_row(db, "graceful")
    assert row is not None
    assert row.stopped_at_utc is not None, "the worker did not mark itself stopped"
    names = event_names(worker.events())
    assert names.index("stopping") < names.index("done") < names.index("stopped"), names


def test_a_handler_running_past_the_grace_is_released_without_counting_the_attempt(
    db: QueueDatabase, fleet: WorkerFleet, tmp_path: Path
) -> None:
    worker = start_worker(fleet, "impatient", shutdown_grace=1.0)
    # The gate never opens: the handler would run for two minutes.
    task_id = enqueue(db, "gated", {"gate": str(tmp_path / "never")}).task_id
    fleet.wait_for_execution(task_id)
    assert get_task(db, task_id).attempts == 1

    worker.send(signal.SIGTERM)
    exit_code = worker.wait_exit(timeout=PATIENCE_SECONDS)

    assert exit_code == 0, worker.log_tail()
    task = get_task(db, task_id)
    assert task.status is TaskStatus.QUEUED, worker.log_tail()
    assert task.attempts == 0
    assert task.locked_by is None
    assert task.result is None
    assert worker.events("released", task_id), worker.log_tail()
    assert not worker.events("done", task_id)
    row = worker_row(db, "impatient")
    assert row is not None
    assert row.stopped_at_utc is not None


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_second_stop_signal_exits_at_once(
    db: QueueDatabase, fleet: WorkerFleet, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    grace = 120.0
    worker = start_worker(fleet, "hurried", shutdown_grace=grace)
    task_id = enqueue(db, "gated", {"gate": str(tmp_path / "never"), "timeout_s": 300}).task_id
    fleet.wait_for_execution(task_id)

    worker.send(stop_signal)
    fleet.wait_for_event(worker, "stopping")
    second_signal_at = time.monotonic()
    worker.send(stop_signal)
    # Zero or not, any exit status will do; what matters is not waiting out the grace.
    exit_code = worker.wait_exit(timeout=grace / 4)
    print(
        f"\nexit code {exit_code} {time.monotonic() - second_signal_at:.2f} s after the"
        f" second {stop_signal.name} (grace {grace:.0f} s)"
    )
    # ... but the worker itself must end the process: not the signal's default action
    # (a negative code), nor an uncaught KeyboardInterrupt with its traceback.
    assert exit_code >= 0, f"killed by signal {-exit_code}\n{worker.log_tail()}"
    assert "Traceback" not in worker.log(), worker.log_tail()
    assert get_task(db, task_id).status is not TaskStatus.COMPLETED


# --- leases and fencing ------------------------------------------------------------------


def test_a_handler_longer_than_its_lease_keeps_it_while_the_worker_lives(
    db: QueueDatabase, fleet: WorkerFleet, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    holder = start_worker(fleet, "holder")
    task_id = enqueue(db, "gated", {"gate": str(gate)}).task_id
    fleet.wait_for_execution(task_id)
    rival = start_worker(fleet, "rival")
    fleet.wait_until(lambda: worker_row(db, "rival"), timeout=PATIENCE_SECONDS, what="rival up")

    first_lease_until = get_task(db, task_id).lease_until_utc
    assert first_lease_until is not None
    renewed_far_enough = first_lease_until + dt.timedelta(seconds=2 * LEASE_SECONDS)

    def renewed_past_two_more_leases() -> bool:
        # Reclaim expired leases all along, as any worker might: a renewed lease never
        # expires, so neither this process nor the rival can take the task.
        reclaimed = reclaim_expired_leases(db)
        assert task_id not in reclaimed.requeued + reclaimed.failed, holder.log_tail()
        task = get_task(db, task_id)
        assert task.status is TaskStatus.LEASED, holder.log_tail()
        assert task.lease_until_utc is not None
        # On the database clock: the first lease ran out long ago, the task is still held.
        return task.lease_until_utc >= renewed_far_enough

    fleet.wait_until(
        renewed_past_two_more_leases,
        timeout=PATIENCE_SECONDS,
        what="the holder to renew its lease past two more lease lengths",
        interval=HEARTBEAT_SECONDS / 5,
    )
    gate.touch()
    task = fleet.wait_for_terminal(db, task_id, timeout=PATIENCE_SECONDS)

    assert task.status is TaskStatus.COMPLETED
    assert task.attempts == 1
    assert task.result == {"pid": holder.pid, "attempt": 1, "gate_opened": True}
    assert fleet.executions(task_id) == [[task_id, 1, holder.pid]]
    assert not rival.events("claimed", task_id)
    assert not holder.events("lease_lost")


def test_a_stalled_worker_past_its_lease_cannot_complete_the_task_it_lost(
    db: QueueDatabase, fleet: WorkerFleet
) -> None:
    zombie = start_worker(fleet, "zombie")
    task_id = enqueue(db, "long", {"seconds": 2 * LEASE_SECONDS}).task_id
    fleet.wait_for_execution(task_id)
    zombie.send(signal.SIGSTOP)
    try:
        rescuer = start_worker(fleet, "rescuer")
        task = fleet.wait_until(
            lambda: task_in(db, task_id, TaskStatus.COMPLETED),
            timeout=PATIENCE_SECONDS,
            what="the rescuer to reclaim and complete the stalled worker's task",
        )
        assert task.result == {"pid": rescuer.pid, "attempt": 2}
    finally:
        zombie.send(signal.SIGCONT)
    # The resumed zombie finds its handler's deadline passed and returns a result at once;
    # the stale lease must throw it away.
    warning = fleet.wait_for_event(zombie, "lease_lost", task_id=task_id)

    print(f"\nzombie's warning: {warning}")
    task = get_task(db, task_id)
    assert task.status is TaskStatus.COMPLETED
    assert task.attempts == 2
    assert task.result == {"pid": rescuer.pid, "attempt": 2}
    assert fleet.executions(task_id) == [[task_id, 1, zombie.pid], [task_id, 2, rescuer.pid]]
    assert not zombie.events("done", task_id)
    assert fleet.stop(zombie) == 0, zombie.log_tail()
    assert fleet.stop(rescuer) == 0, rescuer.log_tail()
    assert get_task(db, task_id).result == {"pid": rescuer.pid, "attempt": 2}


# --- cancellation ------------------------------------------------------------------------


def test_a_cancel_request_reaches_the_running_handler(
    db: QueueDatabase, fleet: WorkerFleet
) -> None:
    worker = start_worker(fleet, "cancellable")
    task_id = enqueue(db, "sleepy", {"seconds": 120}).task_id
    fleet.wait_for_execution(task_id)

    requested_at = time.time()
    assert request_cancel(db, task_id) is TaskStatus.LEASED
    task = fleet.wait_for_terminal(db, task_id, timeout=PATIENCE_SECONDS)

    assert task.status is TaskStatus.CANCELLED, worker.log_tail()
    [seen_at] = fleet.notes(task_id, "cancel_seen")
    print(
        f"\nthe handler saw ctx.cancelled {seen_at - requested_at:.2f} s after the request"
        f" (heartbeat every {HEARTBEAT_SECONDS} s)"
    )
    assert worker.events("cancelled", task_id), worker.log_tail()
    assert not worker.events("done", task_id)


# --- which worker may run what -----------------------------------------------------------


def test_a_task_no_worker_can_run_stays_queued_while_others_complete(
    db: QueueDatabase, fleet: WorkerFleet
) -> None:
    # Enqueued first: a FIFO worker would take them before the rest if it could.
    unhandled = enqueue(db, "nobody_handles_this", {}).task_id
    needs_gpu = enqueue(db, "record", {}, compatibility={"gpu": True}).task_id
    runnable = [
        enqueue(db, "record", {}, compatibility={"gpu": False}).task_id,
        *(enqueue(db, "record", {"n": n}).task_id for n in range(3)),
    ]
    worker = start_worker(fleet, "cpu-only", strategy="fifo", capabilities='{"gpu": false}')

    for task_id in runnable:
        task = fleet.wait_for_terminal(db, task_id, timeout=PATIENCE_SECONDS)
        assert task.status is TaskStatus.COMPLETED, worker.log_tail()
    for task_id in (unhandled, needs_gpu):
        task = get_task(db, task_id)
        assert task.status is TaskStatus.QUEUED
        assert task.attempts == 0
        assert task.locked_by is None
        assert not fleet.executions(task_id)
    assert fleet.stop(worker) == 0


# --- retries and dead letters ------------------------------------------------------------


def test_a_failing_handler_is_retried_and_a_permanent_error_is_a_dead_letter(
    db: QueueDatabase, fleet: WorkerFleet
) -> None:
    flaky = enqueue(db, "flaky", {"fail_times": 1}).task_id
    doomed = enqueue(db, "permanent", {"reason": "the input is invalid"}).task_id
    worker = start_worker(fleet, "retrier")

    finished = {
        task_id: fleet.wait_for_terminal(db, task_id, timeout=PATIENCE_SECONDS)
        for task_id in (flaky, doomed)
    }

    assert finished[flaky].status is TaskStatus.COMPLETED, worker.log_tail()
    assert finished[flaky].attempts == 2
    assert finished[flaky].result == {"pid": worker.pid, "attempt": 2}
    assert [attempt for _, attempt, _ in fleet.executions(flaky)] == [1, 2]
    assert worker.events("retry", flaky), worker.log_tail()
    assert finished[doomed].status is TaskStatus.FAILED, worker.log_tail()
    assert finished[doomed].attempts == 1
    assert "the input is invalid" in (finished[doomed].error_message or "")
    assert len(fleet.executions(doomed)) == 1
    assert worker.events("dead_letter", doomed), worker.log_tail()
    assert fleet.stop(worker) == 0


# --- start-up checks ---------------------------------------------------------------------


def test_an_unmigrated_database_is_refused_with_the_command_to_run(
    empty_url: str, tmp_path: Path
) -> None:
    result = run_worker_to_exit(
        empty_url, "--worker-id", "too-early", "--handlers", HANDLERS, cwd=tmp_path
    )

    assert result.returncode == 2, result.stderr
    assert "prismq db upgrade" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_stop_signal_during_start_up_stops_the_worker_cleanly(
    fleet: WorkerFleet, db: QueueDatabase, tmp_path: Path
) -> None:
    marker, gate = tmp_path / "importing", tmp_path / "gate"
    worker = fleet.start(
        "interrupted-start",
        handlers=["slow_import_handlers:registry"],
        extra_env={"PRISMQ_TEST_IMPORT_MARKER": str(marker), "PRISMQ_TEST_IMPORT_GATE": str(gate)},
    )
    fleet.wait_until(
        lambda: marker.exists() or None, timeout=PATIENCE_SECONDS, what="the handler import"
    )
    worker.send(signal.SIGTERM)  # while the handlers are still being imported
    gate.touch()

    assert worker.wait_exit(PATIENCE_SECONDS) == 0, worker.log_tail()
    assert not worker.events("started"), worker.log_tail()
    assert "Traceback" not in worker.log()
    enqueue(db, "noop")
    assert get_task(db, 1).status is TaskStatus.QUEUED  # it never claimed anything
