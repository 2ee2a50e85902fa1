"""The crash test: real ``prismq-worker`` processes SIGKILLed at random lose nothing.

Four workers share one database and work through two thousand ``record`` tasks; every
two to three seconds (and at least once per tenth of the tasks done, up to a dozen times)
one of them, chosen at random, is killed with SIGKILL and a replacement with a new worker
id takes its place. When every task is terminal the
survivors are stopped with SIGTERM, and the queue checker judges the run: nothing lost,
nothing completed twice, nothing unexpected, and a task ran more than once only when the
earlier runs were on a killed process.

The seed of the random choices is printed (``-s``) and can be replayed with
``PRISMQ_CRASH_SEED``; the run's timing still differs, since the processes race.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from process_harness import WorkerFleet, WorkerProcess, all_tasks, all_terminal
from queue_checker import QueueReport, check_queue, read_executions

from prismq.queue import NewTask, QueueDatabase, TaskStatus, enqueue_many, queue_stats

pytestmark = pytest.mark.multiprocess

SEED_ENV = "PRISMQ_CRASH_SEED"
TASKS = 2_000
WORKERS = 4
CONCURRENCY = 2
LEASE_SECONDS = 2.0
HEARTBEAT_SECONDS = 0.5
POLL_SECONDS = 0.1
SHUTDOWN_GRACE_SECONDS = 10.0
#: Each task sleeps a random time in this range, so the run lasts long enough for kills.
TASK_SLEEP_SECONDS = (0.05, 0.1)
#: A kill every this many seconds (drawn uniformly) ...
KILL_EVERY_SECONDS = (2.0, 3.0)
#: ... and, whatever the speed of the machine, at least one kill per this share of the
#: tasks completed, so a fast run is not a run without crashes.
KILLS_BY_PROGRESS = 10
MIN_KILLS = KILLS_BY_PROGRESS - 2
#: No more kills after this many: each replacement costs a second or two of CPU to start,
#: and on a small, busy machine ever more kills would only stretch the run.
MAX_KILLS = 12
MIN_SECONDS_BETWEEN_KILLS = 0.5
#: Generous: a task may be hit by several kills, and each costs it one attempt.
MAX_ATTEMPTS = 50
#: How long the whole queue may take to drain before the test gives up.
DRAIN_DEADLINE_SECONDS = 210.0
#: How often the test looks at the queue while the workers run.
WATCH_INTERVAL_SECONDS = 0.1


@pytest.fixture
def fleet(database_url: str, tmp_path: Path) -> Iterator[WorkerFleet]:
    with WorkerFleet(database_url, tmp_path / "run") as workers:
        yield workers


def crash_seed() -> int:
    configured = os.environ.get(SEED_ENV, "").strip()
    return int(configured) if configured else random.SystemRandom().randrange(2**32)


def enqueue_record_tasks(db: QueueDatabase, rng: random.Random) -> list[int]:
    tasks = [
        NewTask(
            type="record",
            payload={"n": n, "sleep_s": round(rng.uniform(*TASK_SLEEP_SECONDS), 3)},
            max_attempts=MAX_ATTEMPTS,
        )
        for n in range(TASKS)
    ]
    return enqueue_many(db, tasks)


class Chaos:
    """Kills a random live worker now and then, and starts a fresh one in its place."""

    def __init__(self, fleet: WorkerFleet, rng: random.Random) -> None:
        self.fleet = fleet
        self.rng = rng
        self.kills = 0
        self.last_kill = time.monotonic()
        self.next_kill = self.last_kill + rng.uniform(*KILL_EVERY_SECONDS)
        self._worker_numbers = itertools.count(1)

    def start_worker(self) -> WorkerProcess:
        return self.fleet.start(
            f"crash-{next(self._worker_numbers):02d}",
            concurrency=CONCURRENCY,
            lease_seconds=LEASE_SECONDS,
            heartbeat_interval=HEARTBEAT_SECONDS,
            poll_interval=POLL_SECONDS,
            shutdown_grace=SHUTDOWN_GRACE_SECONDS,
        )

    def kill_due(self, completed_share: float) -> bool:
        if self.kills >= MAX_KILLS:
            return False
        now = time.monotonic()
        behind_progress = self.kills < int(completed_share * KILLS_BY_PROGRESS)
        return now >= self.next_kill or (
            behind_progress and now - self.last_kill >= MIN_SECONDS_BETWEEN_KILLS
        )

    def kill_one(self) -> WorkerProcess:
        live = sorted(self.fleet.live(), key=lambda worker: worker.worker_id)
        # Prefer workers that have claimed work: killing one still starting up tests less.
        busy = [worker for worker in live if "event=claimed" in worker.log()]
        victim = self.rng.choice(busy or live)
        self.fleet.kill(victim)
        self.kills += 1
        self.last_kill = time.monotonic()
        self.next_kill = self.last_kill + self.rng.uniform(*KILL_EVERY_SECONDS)
        self.start_worker()
        return victim


def judge(db: QueueDatabase, fleet: WorkerFleet, task_ids: list[int]) -> QueueReport:
    done_reports = [
        (int(event["task_id"]), worker.worker_id)
        for worker in fleet.workers
        for event in worker.events("done")
        if event.get("task_id", "").isdigit()
    ]
    released_ids = [
        int(event["task_id"])
        for worker in fleet.workers
        for event in worker.events("released")
        if event.get("task_id", "").isdigit()
    ]
    return check_queue(
        enqueued_ids=task_ids,
        final_rows=all_tasks(db),
        executions=read_executions(fleet.executions_file),
        killed_pids=fleet.killed_pids(),
        done_reports=done_reports,
        released_ids=released_ids,
    )


def stuck_tasks(db: QueueDatabase, limit: int = 20) -> str:
    stuck = [task for task in all_tasks(db) if not task.status.is_terminal]
    lines = [
        f"  task {t.id}: {t.status.value} attempts={t.attempts} locked_by={t.locked_by}"
        f" lease_until={t.lease_until_utc} run_after={t.run_after_utc}"
        for t in stuck[:limit]
    ]
    return f"{len(stuck)} task(s) not terminal:\n" + "\n".join(lines)


@pytest.mark.timeout(360)
def announce(config: pytest.Config, line: str) -> None:
    """Write ``line`` to the terminal even when output is captured, so CI logs show it."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def test_no_task_is_lost_or_completed_twice_while_workers_are_sigkilled(
    db: QueueDatabase, fleet: WorkerFleet, backend: str, pytestconfig: pytest.Config
) -> None:
    seed = crash_seed()
    rng = random.Random(seed)
    print(f"\n[{backend}] crash test: seed={seed} ({SEED_ENV} replays it)")
    task_ids = enqueue_record_tasks(db, rng)
    chaos = Chaos(fleet, rng)
    for _ in range(WORKERS):
        chaos.start_worker()

    started = time.monotonic()
    deadline = started + DRAIN_DEADLINE_SECONDS
    while not all_terminal(db):
        if dead := fleet.unexpected_exits():
            pytest.fail(f"worker(s) exited unexpectedly: {dead}\n{fleet.logs()}")
        if time.monotonic() >= deadline:
            report = judge(db, fleet, task_ids)
            pytest.fail(
                f"[{backend}] the queue did not drain within {DRAIN_DEADLINE_SECONDS:.0f} s"
                f" (seed={seed}): {report.format()}\n{stuck_tasks(db)}\n{fleet.logs()}"
            )
        stats = queue_stats(db)
        if chaos.kill_due(stats.completed_tasks / TASKS):
            chaos.kill_one()
        time.sleep(WATCH_INTERVAL_SECONDS)
    drained_after = time.monotonic() - started

    survivors = fleet.live()
    for worker in survivors:
        # A replacement started moments ago may still be importing: a SIGTERM before the
        # worker is up would hit the default handler, not the worker's.
        fleet.wait_for_event(worker, "started")
    exit_codes = {worker.worker_id: fleet.stop(worker) for worker in survivors}
    report = judge(db, fleet, task_ids)
    # Diagnostics: a live worker that lost a lease (stalled past it) explains a duplicate.
    lease_lost_events = sum(len(worker.events("lease_lost")) for worker in fleet.workers)
    summary = (
        f"[{backend}] seed={seed} workers_started={len(fleet.workers)}"
        f" drained_in={drained_after:.1f}s lease_lost_events={lease_lost_events}"
        f" {report.format()}"
    )
    announce(pytestconfig, f"\ncrash test: {summary}")

    assert exit_codes == dict.fromkeys(exit_codes, 0), f"{exit_codes}\n{fleet.logs()}"
    for worker in survivors:
        assert worker.events("stopped"), f"{worker.worker_id} logged no event=stopped"
    assert report.lost == 0, summary
    assert report.duplicated == 0, summary
    assert report.unexpected == 0, summary
    assert report.unexecuted == 0, summary
    assert report.completed == TASKS, summary
    assert report.final_statuses == {TaskStatus.COMPLETED.value: TASKS}, summary
    # Every execution beyond one per task is explained by a kill.
    assert report.executions == TASKS + report.reexecuted_after_kill, summary
    assert MIN_KILLS <= report.kills == chaos.kills <= MAX_KILLS, summary
    # The kills did interrupt running handlers, whose tasks then ran again elsewhere:
    # otherwise this run proved nothing about recovery.
    assert report.reexecuted_after_kill > 0, summary
