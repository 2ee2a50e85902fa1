"""WorkerEngine in-process: handlers, concurrency, leases, failures, filters, fencing, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Any

import pytest
from worker_support import (
    FAST_RETRY,
    make_engine,
    poll_until,
    running_loop,
    wait_for_status,
)

from prismq.queue import (
    ClaimedTask,
    DatabaseUnavailableError,
    LeaseRenewal,
    QueueDatabase,
    SchemaNotMigratedError,
    TaskStatus,
    claim_tasks,
    complete,
    enqueue,
    get_task,
    list_workers,
    mark_worker_stopped,
    reclaim_expired_leases,
    request_cancel,
)
from prismq.queue.notifications import TaskListener
from prismq.worker import (
    PermanentTaskError,
    TaskContext,
    TaskHandlerRegistry,
    WorkerEngine,
    WorkerError,
)
from prismq.worker import engine as engine_module
from prismq.worker import idle_wait as idle_wait_module
from prismq.worker import lease_keeper as lease_keeper_module
from prismq.worker.config import WorkerConfig


def _echo_registry() -> TaskHandlerRegistry:
    registry = TaskHandlerRegistry()
    registry.register_handler("echo", lambda payload: payload)
    return registry


# -- handlers and results -------------------------------------------------------------------


def test_runs_sync_async_one_and_two_argument_handlers(db: QueueDatabase) -> None:
    registry = TaskHandlerRegistry()

    @registry.handler("sync_one")
    def sync_one(payload: dict[str, Any]) -> dict[str, Any]:
        return {"kind": "sync_one", "n": payload["n"]}

    @registry.handler("sync_two")
    def sync_two(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        return {"kind": "sync_two", "task_id": ctx.task_id, "attempt": ctx.attempt}

    @registry.handler("async_one")
    async def async_one(payload: dict[str, Any]) -> list[int]:
        await asyncio.sleep(0)
        return [payload["n"], 1]

    @registry.handler("async_two")
    async def async_two(payload: dict[str, Any], ctx: TaskContext) -> str:
        await asyncio.sleep(0)
        return f"{ctx.task_type}:{ctx.worker_id}"

    ids = {
        name: enqueue(db, name, {"n": index}).task_id
        for index, name in enumerate(["sync_one", "sync_two", "async_one", "async_two"])
    }
    engine = make_engine(db, registry, concurrency=4)
    with running_loop(engine):
        tasks = {name: wait_for_status(db, i, TaskStatus.COMPLETED) for name, i in ids.items()}
    assert tasks["sync_one"].result == {"kind": "sync_one", "n": 0}
    assert tasks["sync_two"].result == {
        "kind": "sync_two",
        "task_id": ids["sync_two"],
        "attempt": 1,
    }
    assert tasks["async_one"].result == [2, 1]
    assert tasks["async_two"].result == f"async_two:{engine.worker_id}"
    assert engine.stats.completed == 4
    assert engine.stats.claimed == 4


def test_run_once_runs_one_round_and_waits_for_it(db: QueueDatabase) -> None:
    ids = [enqueue(db, "echo", {"i": i}).task_id for i in range(5)]
    engine = make_engine(db, _echo_registry(), concurrency=3)
    try:
        assert engine.run_once() == 3
        statuses = [get_task(db, i).status for i in ids]
        assert statuses.count(TaskStatus.COMPLETED) == 3
        assert statuses.count(TaskStatus.QUEUED) == 2
        assert engine.running_task_ids == frozenset()
        assert engine.run_once() == 2
        assert engine.run_once() == 0
    finally:
        engine.stop()
    assert all(get_task(db, i).status is TaskStatus.COMPLETED for i in ids)


def test_run_loop_returns_after_max_iterations(db: QueueDatabase) -> None:
    ids = [enqueue(db, "echo", {"i": i}).task_id for i in range(2)]
    engine = make_engine(db, _echo_registry(), concurrency=2)
    engine.run_loop(max_iterations=1, install_signal_handlers=False)
    assert not engine.is_running
    assert all(get_task(db, i).status is TaskStatus.COMPLETED for i in ids)
    # A stopped worker does not start again.
    assert engine.run_once() == 0


def test_a_result_that_is_not_json_fails_without_retry(db: QueueDatabase) -> None:
    registry = TaskHandlerRegistry()
    registry.register_handler("bad_result", lambda payload: {"when": object()})
    task_id = enqueue(db, "bad_result", {}, max_attempts=5).task_id
    engine = make_engine(db, registry)
    with running_loop(engine):
        task = wait_for_status(db, task_id, TaskStatus.FAILED)
    assert task.attempts == 1
    assert "not JSON" in (task.error_message or "")


# -- concurrency and batching ---------------------------------------------------------------


def test_concurrency_caps_the_handlers_in_flight(db: QueueDatabase) -> None:
    concurrency = 3
    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()
    release = threading.Event()
    registry = TaskHandlerRegistry()

    @registry.handler("gated")
    def gated(payload: dict[str, Any]) -> None:
        nonlocal in_flight, most_in_flight
        with lock:
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
        release.wait(30)
        with lock:
            in_flight -= 1

    ids = [enqueue(db, "gated", {}).task_id for _ in range(concurrency * 3)]
    engine = make_engine(db, registry, concurrency=concurrency)
    with running_loop(engine):
        poll_until(lambda: in_flight == concurrency, what="every slot busy")
        # Full: nothing more is claimed while every slot is busy.
        leased = [i for i in ids if get_task(db, i).status is TaskStatus.LEASED]
        assert len(leased) == concurrency
        release.set()
        for task_id in ids:
            wait_for_status(db, task_id, TaskStatus.COMPLETED)
    assert most_in_flight == concurrency


def test_the_next_claim_overlaps_the_commit_of_the_last_results(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One slot: the second task can only start once the first one's slot is free. It must
    # not wait for the first one's completion to be committed, and meanwhile the first
    # task stays leased to this worker, its lease renewed, nothing reported done.
    second_started = threading.Event()
    commit_may_go = threading.Event()
    registry = TaskHandlerRegistry()
    registry.register_handler("first", lambda payload: "one")

    @registry.handler("second")
    def second(payload: dict[str, Any]) -> str:
        second_started.set()
        return "two"

    engine = make_engine(db, registry, concurrency=1, heartbeat_interval_seconds=0.1)
    real_record = engine.executor.record_results

    def held_up_record(pending: Any) -> Any:
        if any(task.type == "first" for task, _, _ in pending):
            assert commit_may_go.wait(30)
        return real_record(pending)

    monkeypatch.setattr(engine.executor, "record_results", held_up_record)
    first_id = enqueue(db, "first", priority=1).task_id
    second_id = enqueue(db, "second", priority=2).task_id
    with running_loop(engine):
        assert second_started.wait(30), "the second task waited for the first one's commit"
        first = get_task(db, first_id)
        assert first.status is TaskStatus.LEASED
        renewed_until = first.lease_until_utc
        assert renewed_until is not None
        poll_until(
            lambda: (get_task(db, first_id).lease_until_utc or renewed_until) > renewed_until,
            what="the waiting result's lease to be renewed",
        )
        assert engine.running_task_ids <= {second_id}
        commit_may_go.set()
        wait_for_status(db, first_id, TaskStatus.COMPLETED)
        wait_for_status(db, second_id, TaskStatus.COMPLETED)
    assert get_task(db, first_id).result == "one"


def test_claims_in_batches_of_at_most_the_free_slots(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    concurrency = 4
    requests: list[tuple[int, int]] = []
    engine = make_engine(db, _echo_registry(), concurrency=concurrency)
    real_claim = engine_module.claim_tasks

    def recording_claim(*args: Any, **kwargs: Any) -> Any:
        requests.append((kwargs["n"], len(engine.running_task_ids)))
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(engine_module, "claim_tasks", recording_claim)
    ids = [enqueue(db, "echo", {"i": i}).task_id for i in range(20)]
    with running_loop(engine):
        for task_id in ids:
            wait_for_status(db, task_id, TaskStatus.COMPLETED)
    assert requests
    assert requests[0][0] == concurrency  # the first claim takes a whole batch
    for n, running in requests:
        assert 1 <= n <= concurrency - running


# -- leases ------------------------------------------------------------------------------------


def test_a_handler_longer_than_its_lease_keeps_it(db: QueueDatabase) -> None:
    finished = threading.Event()
    registry = TaskHandlerRegistry()

    @registry.handler("long")
    def long(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        # Outlive several leases; reclaim runs meanwhile (this worker's keeper, and here).
        while not finished.wait(0.05):
            reclaim_expired_leases(db)
        return {"lease_lost": ctx.lease_lost}

    task_id = enqueue(db, "long", {}).task_id
    engine = make_engine(db, registry, lease_seconds=1.0, heartbeat_interval_seconds=0.3)
    with running_loop(engine):
        poll_until(lambda: task_id in engine.running_task_ids, what="the handler to start")
        first_lease = get_task(db, task_id).lease_until_utc
        assert first_lease is not None
        poll_until(
            lambda: (get_task(db, task_id).lease_until_utc or first_lease) > first_lease,
            what="a lease renewal",
        )
        # Well past the first lease's end, the task is still this worker's.
        poll_until(
            lambda: engine.stats.claimed == 1 and _seconds_leased(db, task_id) > 2.5,
            what="2.5 s of running",
        )
        finished.set()
        task = wait_for_status(db, task_id, TaskStatus.COMPLETED)
    assert task.attempts == 1
    assert task.result == {"lease_lost": False}
    assert engine.stats.lost == 0


def _seconds_leased(db: QueueDatabase, task_id: int) -> float:
    task = get_task(db, task_id)
    if task.processing_started_utc is None or task.lease_until_utc is None:
        return 0.0
    return (task.lease_until_utc - task.processing_started_utc).total_seconds()


def test_fencing_discards_the_result_of_a_worker_whose_lease_was_taken(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The zombie's keeper stalls (renews nothing), so its lease runs out while its
    # handler is still busy; another worker then claims and completes the task.
    def stalled_renewal(_db: Any, leases: Any, _seconds: float) -> LeaseRenewal:
        return LeaseRenewal(renewed=frozenset(), lost=frozenset(), cancel_requested=frozenset())

    monkeypatch.setattr(lease_keeper_module, "renew_leases", stalled_renewal)
    release = threading.Event()
    registry = TaskHandlerRegistry()

    @registry.handler("slow")
    def slow(payload: dict[str, Any]) -> dict[str, str]:
        release.wait(30)
        return {"by": "zombie"}

    task_id = enqueue(db, "slow", {}).task_id
    zombie = make_engine(db, registry, concurrency=1, lease_seconds=0.5)
    with running_loop(zombie):
        poll_until(lambda: task_id in zombie.running_task_ids, what="the zombie to start")
        stolen = _take_over_after_expiry(db, task_id, "thief")
        assert complete(db, stolen.id, stolen.lease_token, {"by": "thief"}) is TaskStatus.COMPLETED
        release.set()
        poll_until(lambda: zombie.stats.lost == 1, what="the zombie's outcome to be discarded")
    task = get_task(db, task_id)
    assert task.status is TaskStatus.COMPLETED
    assert task.result == {"by": "thief"}
    assert zombie.stats.completed == 0


def _take_over_after_expiry(db: QueueDatabase, task_id: int, thief: str) -> ClaimedTask:
    """Wait for the task's lease to expire and be reclaimed, then lease it to ``thief``."""
    poll_until(
        lambda: (
            task_id in reclaim_expired_leases(db).requeued
            or get_task(db, task_id).status is TaskStatus.QUEUED
        ),
        what=f"the lease of task {task_id} to be reclaimed",
    )
    [taken] = claim_tasks(db, thief, n=1, task_types=[get_task(db, task_id).type])
    assert taken.id == task_id
    return taken


# -- failures --------------------------------------------------------------------------------


def test_permanent_task_error_fails_at_once(db: QueueDatabase) -> None:
    registry = TaskHandlerRegistry()

    @registry.handler("invalid")
    def invalid(payload: dict[str, Any]) -> None:
        raise PermanentTaskError("the image is corrupt")

    task_id = enqueue(db, "invalid", {}, max_attempts=5).task_id
    engine = make_engine(db, registry)
    with running_loop(engine):
        task = wait_for_status(db, task_id, TaskStatus.FAILED)
    assert task.attempts == 1
    assert (task.error_message or "").startswith("PermanentTaskError: the image is corrupt")
    assert engine.stats.failed == 1
    assert engine.stats.retried == 0


def test_other_errors_are_retried_then_dead_lettered(db: QueueDatabase) -> None:
    attempts: list[int] = []
    registry = TaskHandlerRegistry()

    @registry.handler("flaky")
    def flaky(payload: dict[str, Any], ctx: TaskContext) -> None:
        attempts.append(ctx.attempt)
        raise ConnectionError(f"outage on attempt {ctx.attempt}")

    task_id = enqueue(db, "flaky", {}, max_attempts=3).task_id
    engine = make_engine(db, registry, retry_policy=FAST_RETRY)
    with running_loop(engine):
        task = wait_for_status(db, task_id, TaskStatus.FAILED)
    assert attempts == [1, 2, 3]
    assert task.attempts == 3
    assert (task.error_message or "").startswith("ConnectionError: outage on attempt 3")
    assert engine.stats.retried == 2
    assert engine.stats.failed == 1


# -- which tasks a worker claims --------------------------------------------------------------


def test_task_types_without_a_handler_stay_queued(db: QueueDatabase) -> None:
    orphan = enqueue(db, "nobody_handles_this", {}).task_id
    handled = enqueue(db, "echo", {}).task_id
    engine = make_engine(db, _echo_registry())
    with running_loop(engine):
        wait_for_status(db, handled, TaskStatus.COMPLETED)
    task = get_task(db, orphan)
    assert task.status is TaskStatus.QUEUED
    assert task.attempts == 0


def test_only_the_configured_queues_are_served(db: QueueDatabase) -> None:
    mine = enqueue(db, "echo", {}, queue="images").task_id
    other = enqueue(db, "echo", {}, queue="emails").task_id
    engine = make_engine(db, _echo_registry(), queues=("images",))
    with running_loop(engine):
        wait_for_status(db, mine, TaskStatus.COMPLETED)
    assert get_task(db, other).status is TaskStatus.QUEUED


def test_tasks_needing_capabilities_the_worker_lacks_stay_queued(db: QueueDatabase) -> None:
    gpu_task = enqueue(db, "echo", {}, compatibility={"gpu": True}).task_id
    cpu_task = enqueue(db, "echo", {}, compatibility={"gpu": False}).task_id
    plain = enqueue(db, "echo", {}).task_id
    engine = make_engine(db, _echo_registry(), capabilities={"gpu": False})
    with running_loop(engine):
        wait_for_status(db, cpu_task, TaskStatus.COMPLETED)
        wait_for_status(db, plain, TaskStatus.COMPLETED)
    assert get_task(db, gpu_task).status is TaskStatus.QUEUED


def test_a_delayed_task_is_run_when_due(db: QueueDatabase) -> None:
    engine = make_engine(db, _echo_registry(), poll_interval_seconds=0.05)
    with running_loop(engine):
        task_id = enqueue(db, "echo", {"late": True}, delay_seconds=0.5).task_id
        assert get_task(db, task_id).status is TaskStatus.QUEUED
        task = wait_for_status(db, task_id, TaskStatus.COMPLETED)
    assert task.processing_started_utc is not None
    assert task.processing_started_utc >= task.run_after_utc


def test_a_delayed_task_is_run_when_due_even_with_a_long_poll_interval(
    db: QueueDatabase,
) -> None:
    # The idle wait ends when the next delayed task is due, not at the poll interval.
    engine = make_engine(db, _echo_registry(), poll_interval_seconds=600)
    task_id = enqueue(db, "echo", {}, delay_seconds=0.5).task_id
    with running_loop(engine):
        wait_for_status(db, task_id, TaskStatus.COMPLETED, timeout=60)


def test_an_idle_worker_wakes_on_the_databases_hint_not_its_poll_interval(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a 600 s poll interval only the wake-up hint (PostgreSQL NOTIFY, SQLite's change
    # counter) can get the task claimed within the test's deadline. The task is enqueued
    # once the worker is inside its listener's wait, past any look at the queue.
    idle = threading.Event()
    open_listener = idle_wait_module.open_task_listener

    def noting_listener(*args: Any, **kwargs: Any) -> TaskListener:
        listener = open_listener(*args, **kwargs)
        wait = listener.wait

        def noting_wait(timeout: float) -> bool:
            idle.set()
            return wait(timeout)

        monkeypatch.setattr(listener, "wait", noting_wait)
        return listener

    monkeypatch.setattr(idle_wait_module, "open_task_listener", noting_listener)
    engine = make_engine(db, _echo_registry(), poll_interval_seconds=600)
    with running_loop(engine):
        assert idle.wait(60), "the worker never went idle"
        task_id = enqueue(db, "echo", {"wake": True}).task_id
        task = wait_for_status(db, task_id, TaskStatus.COMPLETED, timeout=60)
    assert task.result == {"wake": True}


# -- cancellation --------------------------------------------------------------------------------


def test_a_cancel_request_reaches_the_running_handler(db: QueueDatabase) -> None:
    seen_cancel = threading.Event()
    registry = TaskHandlerRegistry()

    @registry.handler("cancellable")
    def cancellable(payload: dict[str, Any], ctx: TaskContext) -> str:
        if ctx.wait_cancelled(30):
            seen_cancel.set()
        return "stopped early"

    task_id = enqueue(db, "cancellable", {}).task_id
    engine = make_engine(db, registry, lease_seconds=3.0, heartbeat_interval_seconds=0.2)
    with running_loop(engine):
        poll_until(lambda: task_id in engine.running_task_ids, what="the handler to start")
        request_cancel(db, task_id)
        assert seen_cancel.wait(30)
        task = wait_for_status(db, task_id, TaskStatus.CANCELLED)
    assert engine.stats.cancelled == 1
    assert task.finished_at_utc is not None


# -- the worker row and stopping ------------------------------------------------------------


def test_the_worker_registers_heartbeats_and_is_marked_stopped(db: QueueDatabase) -> None:
    engine = make_engine(
        db,
        _echo_registry(),
        lease_seconds=1.0,
        heartbeat_interval_seconds=0.1,
        capabilities={"region": "eu"},
        queues=("a", "b"),
    )

    def row() -> Any:
        return next((w for w in list_workers(db) if w.worker_id == engine.worker_id), None)

    with running_loop(engine):
        first = poll_until(row, what="the worker row")
        assert first.stopped_at_utc is None
        assert first.capabilities == {"region": "eu"}
        assert first.queues == ["a", "b"]
        assert first.concurrency == 2
        poll_until(lambda: row().heartbeat_utc > first.heartbeat_utc, what="a heartbeat")
    assert row().stopped_at_utc is not None


def test_graceful_stop_releases_a_handler_running_past_the_grace(db: QueueDatabase) -> None:
    release = threading.Event()
    registry = TaskHandlerRegistry()

    @registry.handler("stuck")
    def stuck(payload: dict[str, Any]) -> str:
        release.wait(30)
        return "too late"

    task_id = enqueue(db, "stuck", {}).task_id
    engine = make_engine(db, registry, shutdown_grace_seconds=0.2)
    with running_loop(engine):
        poll_until(lambda: task_id in engine.running_task_ids, what="the handler to start")
    task = get_task(db, task_id)
    assert task.status is TaskStatus.QUEUED
    assert task.attempts == 0  # a released attempt is not counted
    assert engine.stats.released == 1
    # The handler's late result is discarded by fencing.
    release.set()
    poll_until(lambda: engine.stats.lost == 1, what="the late result to be discarded")
    assert get_task(db, task_id).status is TaskStatus.QUEUED


def test_graceful_stop_lets_a_short_handler_finish(db: QueueDatabase) -> None:
    started = threading.Event()
    release = threading.Event()
    registry = TaskHandlerRegistry()

    @registry.handler("short")
    def short(payload: dict[str, Any]) -> str:
        started.set()
        release.wait(30)
        return "finished"

    task_id = enqueue(db, "short", {}).task_id
    engine = make_engine(db, registry, shutdown_grace_seconds=30)
    with running_loop(engine) as loop_thread:
        assert started.wait(30)
        engine.stop()
        release.set()
        loop_thread.join(30)
    assert get_task(db, task_id).status is TaskStatus.COMPLETED
    assert engine.stats.released == 0


def test_stop_ends_an_idle_wait_promptly(db: QueueDatabase) -> None:
    engine = make_engine(db, _echo_registry(), poll_interval_seconds=600)
    with running_loop(engine) as loop_thread:
        poll_until(lambda: engine.is_running, what="the worker to start")
        engine.stop()
        loop_thread.join(10)
        assert not loop_thread.is_alive()


def test_sigterm_stops_run_loop_in_the_main_thread(db: QueueDatabase) -> None:
    assert threading.current_thread() is threading.main_thread()
    task_id = enqueue(db, "echo", {}).task_id
    engine = make_engine(db, _echo_registry())
    previous = signal.getsignal(signal.SIGTERM)

    def send_sigterm_when_done() -> None:
        wait_for_status(db, task_id, TaskStatus.COMPLETED)
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send_sigterm_when_done, daemon=True)
    sender.start()
    engine.run_loop()
    sender.join(10)
    assert not engine.is_running
    assert signal.getsignal(signal.SIGTERM) is previous
    assert next(w for w in list_workers(db) if w.worker_id == engine.worker_id).stopped_at_utc


# -- resilience ----------------------------------------------------------------------------------


def test_the_loop_backs_off_and_resumes_after_database_errors(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = 2
    real_claim = engine_module.claim_tasks

    def unreliable_claim(*args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise DatabaseUnavailableError("cannot connect to the test database")
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(engine_module, "claim_tasks", unreliable_claim)
    task_id = enqueue(db, "echo", {}).task_id
    engine = make_engine(db, _echo_registry())
    with running_loop(engine):
        wait_for_status(db, task_id, TaskStatus.COMPLETED)
    assert failures == 0
    assert engine.stats.completed == 1


def test_a_keeper_error_is_logged_and_the_worker_goes_on(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = 0

    def failing_reclaim(_db: Any) -> Any:
        nonlocal ticks
        ticks += 1
        raise DatabaseUnavailableError("database restarting")

    monkeypatch.setattr(lease_keeper_module, "reclaim_expired_leases", failing_reclaim)
    engine = make_engine(
        db,
        _echo_registry(),
        lease_seconds=1.0,
        heartbeat_interval_seconds=0.05,
        reclaim_interval_seconds=0.05,
    )
    with running_loop(engine):
        poll_until(lambda: ticks >= 3, what="several failed reclaims")
        task_id = enqueue(db, "echo", {}).task_id
        wait_for_status(db, task_id, TaskStatus.COMPLETED)


def test_a_worker_without_handlers_refuses_to_start(db: QueueDatabase) -> None:
    engine = WorkerEngine(db, WorkerConfig(worker_id="empty"), TaskHandlerRegistry())
    with pytest.raises(WorkerError, match="no task handlers"):
        engine.run_once()


def test_an_unmigrated_database_is_refused_with_the_command_to_run(empty_url: str) -> None:
    with QueueDatabase(empty_url) as empty:
        engine = WorkerEngine(empty, WorkerConfig(worker_id="w"), _echo_registry())
        with pytest.raises(SchemaNotMigratedError, match="prismq db upgrade"):
            engine.run_loop(install_signal_handlers=False)


def test_completions_are_one_per_task(db: QueueDatabase) -> None:
    # Every task is completed exactly once, whatever the batch sizes.
    ids = [enqueue(db, "echo", {"i": i}).task_id for i in range(30)]
    engine = make_engine(db, _echo_registry(), concurrency=5)
    with running_loop(engine):
        for task_id in ids:
            wait_for_status(db, task_id, TaskStatus.COMPLETED)
    assert engine.stats.completed == 30
    assert engine.stats.claimed == 30
    assert [get_task(db, i).result for i in ids] == [{"i": i} for i in range(30)]


def test_the_keeper_tells_a_handler_its_lease_was_lost(
    db: QueueDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renewals stall until another worker has taken the task; the next real renewal then
    # reports the lease lost, and the handler sees it while still running.
    stalled = True
    real_renew = lease_keeper_module.renew_leases

    def renew(db_: Any, leases: Any, seconds: float) -> LeaseRenewal:
        if stalled:
            return LeaseRenewal(renewed=frozenset(), lost=frozenset(), cancel_requested=frozenset())
        return real_renew(db_, leases, seconds)

    monkeypatch.setattr(lease_keeper_module, "renew_leases", renew)
    saw_loss = threading.Event()
    registry = TaskHandlerRegistry()

    @registry.handler("watchful")
    def watchful(payload: dict[str, Any], ctx: TaskContext) -> str:
        ctx.wait_cancelled(30)
        if ctx.lease_lost:
            saw_loss.set()
        return "discarded"

    task_id = enqueue(db, "watchful", {}).task_id
    engine = make_engine(
        db, registry, concurrency=1, lease_seconds=0.5, heartbeat_interval_seconds=0.1
    )
    with running_loop(engine):
        poll_until(lambda: task_id in engine.running_task_ids, what="the handler to start")
        taken = _take_over_after_expiry(db, task_id, "other-worker")
        stalled = False
        assert saw_loss.wait(30)
        poll_until(lambda: engine.stats.lost == 1, what="the outcome to be discarded")
    assert get_task(db, taken.id).locked_by == "other-worker"


def test_a_worker_row_marked_stopped_while_running_is_registered_again(
    db: QueueDatabase,
) -> None:
    engine = make_engine(db, _echo_registry(), lease_seconds=1.0, heartbeat_interval_seconds=0.05)

    def row() -> Any:
        return next((w for w in list_workers(db) if w.worker_id == engine.worker_id), None)

    with running_loop(engine):
        poll_until(row, what="the worker row")
        mark_worker_stopped(db, engine.worker_id)
        poll_until(lambda: row().stopped_at_utc is None, what="the worker to register again")
    assert row().stopped_at_utc is not None
