"""Process entry points and helpers for the multi-process tests.

Children start from a fresh interpreter (``forkserver`` or ``spawn``, see :data:`CTX`), so
every entry point lives at module level here: a child imports this module by name (pytest
puts the tests directory on ``sys.path`` and both start methods hand the parent's
``sys.path`` to the child). Each child opens
its own :class:`QueueDatabase` from the URL it is given and closes it before it returns;
nothing but plain data (ids, tokens, strings) crosses a process boundary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import multiprocessing.process
import os
import queue
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from prismq.queue import (
    LeaseLostError,
    NewTask,
    QueueDatabase,
    TaskStatus,
    claim_tasks,
    complete,
    enqueue,
    enqueue_many,
    fail,
    reclaim_expired_leases,
    renew_lease,
    set_progress,
)
from prismq.queue.models import task_table

#: Selects how children start: ``forkserver`` (default) or ``spawn``, never plain ``fork``
#: (a forked child would inherit the parent's open engines and SQLite handles).
START_METHOD_ENV = "PRISMQ_TEST_MP_START"
START_METHODS = ("forkserver", "spawn")
#: What the fork server imports once for all children: "__main__" (so that no child
#: re-runs pytest's main script), then what is slow to import. Python < 3.13 does not give
#: the server the parent's sys.path, so this test module itself cannot be listed.
_FORKSERVER_PRELOAD = (
    "__main__",
    "prismq.queue",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
)


def _context() -> Any:
    # Both methods start children from a fresh interpreter that never opened a database.
    # The fork server imports SQLAlchemy, psycopg and prismq.queue once and forks every
    # child from that clean state: a child starts in milliseconds instead of the 2-5 s a
    # spawned child spends importing them on a small, busy machine.
    method = os.environ.get(START_METHOD_ENV, "forkserver").strip().lower()
    if method not in START_METHODS:
        raise ValueError(f"{START_METHOD_ENV} must be one of {START_METHODS}, not {method!r}")
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(list(_FORKSERVER_PRELOAD))
    return context


CTX = _context()
STRATEGIES = ("fifo", "lifo", "priority", "weighted_random")
#: How long a child waits at a barrier or for a message before it gives up.
CHILD_WAIT_SECONDS = 60.0

_t = task_table.c


# --- parent side -------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.02, what: str
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def _child_main(target: Callable[..., Any], name: str, results: Any, args: tuple[Any, ...]) -> None:
    try:
        value = target(*args)
    except BaseException:
        # Reported to the parent, which fails the test with it; not printed here too.
        results.put((name, False, traceback.format_exc()))
        return
    results.put((name, True, value))


class Children:
    """Spawned child processes whose return values (or tracebacks) come back by queue.

    Use as a context manager: on exit every child still alive is killed and reaped, so a
    failing test never leaves processes behind.
    """

    def __init__(self) -> None:
        self.results: Any = CTX.Queue()
        self.processes: dict[str, multiprocessing.process.BaseProcess] = {}
        self._collected: dict[str, Any] = {}

    def start(self, name: str, target: Callable[..., Any], *args: Any) -> Any:
        """Start ``target(*args)`` in a new process called ``name``."""
        if name in self.processes:
            raise ValueError(f"a child called {name!r} was already started")
        process = CTX.Process(
            target=_child_main, args=(target, name, self.results, args), name=name, daemon=True
        )
        process.start()
        self.processes[name] = process
        return process

    def collect(self, names: list[str] | None = None, *, timeout: float) -> dict[str, Any]:
        """Wait for the named children (all by default) to return; their values by name.

        Fails with the child's traceback if one raised, and with a clear message if one
        died without reporting (killed, crashed) or did not finish within ``timeout``.
        """
        wanted = list(self.processes) if names is None else names
        deadline = time.monotonic() + timeout
        errors: dict[str, str] = {}
        while any(name not in self._collected and name not in errors for name in wanted):
            try:
                name, ok, value = self.results.get(timeout=0.1)
            except queue.Empty:
                dead = [
                    name
                    for name in wanted
                    if name not in self._collected
                    and name not in errors
                    and self.processes[name].exitcode is not None
                ]
                if dead:
                    # The result may still be in the pipe: give it a moment to arrive.
                    with contextlib.suppress(queue.Empty):
                        name, ok, value = self.results.get(timeout=2.0)
                        (self._collected if ok else errors)[name] = value
                        continue
                    for name in dead:
                        if name not in self._collected and name not in errors:
                            code = self.processes[name].exitcode
                            errors[name] = f"died without reporting (exit code {code})"
                if time.monotonic() >= deadline:
                    missing = [n for n in wanted if n not in self._collected and n not in errors]
                    raise AssertionError(
                        f"children {missing} did not finish within {timeout:.0f} s"
                        + "".join(f"\n--- {n} failed:\n{e}" for n, e in errors.items())
                    ) from None
                continue
            (self._collected if ok else errors)[name] = value
        if errors:
            raise AssertionError(
                "".join(f"\n--- child {name} failed:\n{error}" for name, error in errors.items())
            )
        for name in wanted:
            self.processes[name].join(timeout=10)
        return {name: self._collected[name] for name in wanted}

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in self.processes.values():
            if process.is_alive():
                process.kill()
        for process in self.processes.values():
            process.join(timeout=10)
        self.results.close()
        self.results.join_thread()


@dataclasses.dataclass(frozen=True)
class QueueCheck:
    """A Jepsen-style verdict over what the workers say they claimed and completed."""

    enqueued: int
    claimed: int
    completed: int
    lost: list[int]  # enqueued, never completed
    duplicated: list[int]  # claimed by two claims, or completed twice
    unexpected: list[int]  # completed, never enqueued

    @property
    def ok(self) -> bool:
        """No task lost, duplicated or unexpected."""
        return not (self.lost or self.duplicated or self.unexpected)

    def summary(self) -> str:
        """One line with the counts (and the first offending ids, if any)."""
        return (
            f"enqueued={self.enqueued} claimed={self.claimed} completed={self.completed}"
            f" lost={len(self.lost)} duplicated={len(self.duplicated)}"
            f" unexpected={len(self.unexpected)}"
            f" (first lost {self.lost[:10]}, duplicated {self.duplicated[:10]},"
            f" unexpected {self.unexpected[:10]})"
        )


def check_history(
    enqueued: Iterable[int], claimed: Iterable[int], completed: Iterable[int]
) -> QueueCheck:
    """Count lost, duplicated and unexpected tasks from every worker's claims and completions."""
    enqueued_ids = set(enqueued)
    claims = Counter(claimed)
    completions = Counter(completed)
    duplicated = {i for i, c in claims.items() if c > 1} | {
        i for i, c in completions.items() if c > 1
    }
    return QueueCheck(
        enqueued=len(enqueued_ids),
        claimed=sum(claims.values()),
        completed=sum(completions.values()),
        lost=sorted(enqueued_ids - set(completions)),
        duplicated=sorted(duplicated),
        unexpected=sorted(set(completions) - enqueued_ids),
    )


def task_states(db: QueueDatabase) -> dict[int, tuple[str, int, Any]]:
    """Every task's ``(status, attempts, result)`` by id, read straight from the table."""
    with db.read() as conn:
        rows = conn.execute(select(_t.id, _t.status, _t.attempts, _t.result)).all()
    return {row.id: (row.status, row.attempts, row.result) for row in rows}


def expired_lease_ids(db: QueueDatabase) -> set[int]:
    """Ids of leased tasks whose lease has expired on the database clock."""
    with db.read() as conn:
        return set(
            conn.execute(
                select(_t.id).where(
                    _t.status == TaskStatus.LEASED.value, _t.lease_until_utc < db.dialect.now()
                )
            ).scalars()
        )


# --- children ----------------------------------------------------------------------------


@contextlib.contextmanager
def _database(url: str) -> Iterator[QueueDatabase]:
    db = QueueDatabase(url)
    try:
        db.ping()  # connect before any barrier, so the race is not decided by connecting
        yield db
    finally:
        db.close()


def claim_complete_worker(
    url: str,
    worker_id: str,
    strategy: str,
    max_n: int,
    seed: int,
    barrier: Any,
    run_seconds: float,
) -> dict[str, Any]:
    """Claim ``random 1..max_n`` tasks at a time and complete each, until two empty claims.

    Returns what it claimed and completed, every claim's ``(n, rows returned)``, and
    whether it stopped on its deadline instead of on an empty queue.
    """
    rng = random.Random(seed)
    claimed: list[int] = []
    completed: list[int] = []
    not_completed: list[tuple[int, str]] = []
    claims: list[tuple[int, int]] = []
    with _database(url) as db:
        barrier.wait(CHILD_WAIT_SECONDS)
        started = time.monotonic()
        deadline = started + run_seconds
        empty_in_a_row = 0
        while empty_in_a_row < 2 and time.monotonic() < deadline:
            n = rng.randint(1, max_n)
            tasks = claim_tasks(db, worker_id, n, strategy=strategy)
            claims.append((n, len(tasks)))
            if not tasks:
                empty_in_a_row += 1
                time.sleep(0.02)
                continue
            empty_in_a_row = 0
            for task in tasks:
                claimed.append(task.id)
                try:
                    status = complete(db, task.id, task.lease_token, {"worker": worker_id})
                except LeaseLostError as error:
                    not_completed.append((task.id, str(error)))
                    continue
                if status is TaskStatus.COMPLETED:
                    completed.append(task.id)
                else:
                    not_completed.append((task.id, f"complete returned {status}"))
    return {
        "worker_id": worker_id,
        "strategy": strategy,
        "claimed": claimed,
        "completed": completed,
        "not_completed": not_completed,
        "claims": claims,
        "timed_out": empty_in_a_row < 2,
        "started": started,  # CLOCK_MONOTONIC: comparable between processes on Linux
        "finished": time.monotonic(),
    }


def enqueue_keys_worker(
    url: str, index: int, keys: list[str], barrier: Any, many: bool, shuffle: bool
) -> dict[str, Any]:
    """Enqueue a task for each key (one ``enqueue`` each, or one ``enqueue_many``).

    With ``shuffle`` the keys go in an order of this process's own.
    """
    if shuffle:
        keys = random.Random(index).sample(keys, len(keys))
    with _database(url) as db:
        barrier.wait(CHILD_WAIT_SECONDS)
        if many:
            ids = enqueue_many(
                db,
                [NewTask(type="idem", payload={"by": index}, idempotency_key=key) for key in keys],
            )
            return {"ids": dict(zip(keys, ids, strict=True)), "created": {}}
        ids_by_key: dict[str, int] = {}
        created: dict[str, bool] = {}
        for key in keys:
            result = enqueue(db, "idem", {"by": index}, idempotency_key=key)
            ids_by_key[key] = result.task_id
            created[key] = result.created
        return {"ids": ids_by_key, "created": created}


def enqueue_singles_worker(
    url: str, index: int, count: int, batch_size: int, barrier: Any
) -> dict[str, Any]:
    """Enqueue ``count`` unkeyed tasks, one ``enqueue`` each or ``enqueue_many`` in batches.

    Returns the id each task got, by its number, with what the returned record said.
    """
    ids: dict[int, int] = {}
    records: dict[int, dict[str, Any]] = {}
    with _database(url) as db:
        barrier.wait(CHILD_WAIT_SECONDS)
        if batch_size:
            for first in range(0, count, batch_size):
                numbers = range(first, min(first + batch_size, count))
                new = [NewTask(type="mp-enqueue", payload={"by": index, "n": n}) for n in numbers]
                ids.update(zip(numbers, enqueue_many(db, new), strict=True))
        else:
            for n in range(count):
                result = enqueue(db, "mp-enqueue", {"by": index, "n": n})
                ids[n] = result.task_id
                records[n] = {"created": result.created, "payload": result.task.payload}
    return {"ids": ids, "records": records}


def _stale_token_outcome(action: Callable[[], Any]) -> str:
    try:
        action()
    except LeaseLostError:
        return "LeaseLostError"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "succeeded"


def zombie_holder(
    url: str, worker_id: str, lease_seconds: float, outbox: Any, go: Any
) -> dict[str, Any]:
    """Claim one task, report it, then stall until told to go on with the stale token."""
    with _database(url) as db:
        tasks = claim_tasks(db, worker_id, 1, lease_seconds=lease_seconds)
        outbox.put([(task.id, task.lease_token) for task in tasks])
        if not tasks:
            return {"claimed": None}
        task = tasks[0]
        if not go.wait(CHILD_WAIT_SECONDS):
            raise TimeoutError("the parent never told the zombie to go on")
        token = task.lease_token
        return {
            "claimed": task.id,
            "complete": _stale_token_outcome(
                lambda: complete(db, task.id, token, {"by": worker_id})
            ),
            "fail": _stale_token_outcome(lambda: fail(db, task.id, token, "zombie")),
            "renew": _stale_token_outcome(lambda: renew_lease(db, task.id, token)),
            "progress": _stale_token_outcome(lambda: set_progress(db, task.id, token, 50)),
        }


def claim_one_and_complete(url: str, worker_id: str) -> dict[str, Any]:
    """Claim one task and complete it with ``{"by": worker_id}``."""
    with _database(url) as db:
        tasks = claim_tasks(db, worker_id, 1)
        if not tasks:
            return {"claimed": None}
        task = tasks[0]
        status = complete(db, task.id, task.lease_token, {"by": worker_id})
        return {"claimed": task.id, "attempt": task.attempt, "status": status.value}


def reclaim_worker(
    url: str, barrier: Any, go: Any, task_types: list[str], run_seconds: float
) -> dict[str, Any]:
    """Reclaim expired leases in a tight loop until no task of ``task_types`` is leased.

    Starts with the other reclaimers (``barrier``) once the parent has leased the tasks
    (``go``); returns every non-empty :class:`ReclaimResult` it got, as lists of ids.
    """
    outcomes = []
    leased = (
        select(func.count())
        .select_from(task_table)
        .where(_t.status == TaskStatus.LEASED.value, _t.type.in_(task_types))
    )
    with _database(url) as db:
        barrier.wait(CHILD_WAIT_SECONDS)
        if not go.wait(CHILD_WAIT_SECONDS):
            raise TimeoutError("the parent never leased the tasks")
        deadline = time.monotonic() + run_seconds
        while True:
            result = reclaim_expired_leases(db)
            if result.total:
                outcomes.append(
                    {
                        "requeued": result.requeued,
                        "failed": result.failed,
                        "cancelled": result.cancelled,
                    }
                )
            with db.read() as conn:
                if not conn.execute(leased).scalar_one():
                    return {"outcomes": outcomes, "timed_out": False}
            if time.monotonic() > deadline:
                return {"outcomes": outcomes, "timed_out": True}
            time.sleep(0.002)


def race_completer(url: str, inbox: Any, barrier: Any, outbox: Any) -> int:
    """For each ``(task_id, token)`` sent, meet the reclaimer at the barrier and complete."""
    rounds = 0
    with _database(url) as db:
        while True:
            item = inbox.get(timeout=CHILD_WAIT_SECONDS)
            if item is None:
                return rounds
            task_id, token = item
            barrier.wait(CHILD_WAIT_SECONDS)
            try:
                status = complete(db, task_id, token, {"by": "holder"})
            except LeaseLostError:
                outcome = "LeaseLostError"
            else:
                outcome = status.value
            outbox.put(("completer", task_id, outcome))
            rounds += 1


def race_reclaimer(url: str, inbox: Any, barrier: Any, outbox: Any) -> int:
    """For each round sent, meet the completer at the barrier and reclaim expired leases."""
    rounds = 0
    with _database(url) as db:
        while True:
            item = inbox.get(timeout=CHILD_WAIT_SECONDS)
            if item is None:
                return rounds
            barrier.wait(CHILD_WAIT_SECONDS)
            result = reclaim_expired_leases(db)
            outbox.put(("reclaimer", item, result.requeued + result.failed + result.cancelled))
            rounds += 1


def hold_until_killed(
    url: str, worker_id: str, n: int, lease_seconds: float, outbox: Any, holding: Any
) -> None:
    """Claim ``n`` tasks, tell the parent which, then block: the parent SIGKILLs us."""
    with _database(url) as db:
        tasks = claim_tasks(db, worker_id, n, lease_seconds=lease_seconds)
        outbox.put([task.id for task in tasks])
        holding.set()
        time.sleep(CHILD_WAIT_SECONDS)  # never returns normally: the parent kills us
    raise TimeoutError("the parent never killed this process")


def chaos_worker(
    url: str,
    worker_id: str,
    record_path: str,
    lease_seconds: float,
    seed: int,
    working: Any,
    stop: Any,
) -> int:
    """Claim, "work" a few milliseconds, complete; append each completed id to a file.

    The file is flushed after every completion, so a SIGKILL loses at most the id whose
    completion committed just before the kill (never invents one). Runs until ``stop``.
    """
    rng = random.Random(seed)
    done = 0
    with _database(url) as db, Path(record_path).open("a", encoding="utf-8") as record:
        working.set()
        deadline = time.monotonic() + CHILD_WAIT_SECONDS
        while not stop.is_set() and time.monotonic() < deadline:
            tasks = claim_tasks(
                db,
                worker_id,
                rng.randint(1, 5),
                strategy=rng.choice(STRATEGIES),
                lease_seconds=lease_seconds,
            )
            if not tasks:
                stop.wait(0.05)
                continue
            for task in tasks:
                time.sleep(rng.uniform(0.0, 0.01))
                try:
                    complete(db, task.id, task.lease_token, {"by": worker_id})
                except LeaseLostError:
                    continue
                record.write(f"{task.id}\n")
                record.flush()
                done += 1
    return done
