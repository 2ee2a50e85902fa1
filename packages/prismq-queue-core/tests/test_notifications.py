"""Wake-up hints: a waiting listener returns early when tasks may have become ready."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from prismq.queue import (
    NewTask,
    QueueDatabase,
    claim_tasks,
    enqueue,
    enqueue_many,
    fail,
    reclaim_expired_leases,
    release,
)
from prismq.queue.notifications import (
    NOTIFY_CHANNEL,
    PostgreSQLTaskListener,
    TaskListener,
    open_task_listener,
)

WAIT_SECONDS = 10.0


@pytest.fixture
def listener(db: QueueDatabase) -> Iterator[TaskListener]:
    with open_task_listener(db, queues=["default"]) as opened:
        # Prime: the first wait settles the listener's starting point.
        opened.wait(0.05)
        yield opened


def after(delay: float, action: Callable[[], object]) -> threading.Thread:
    """Run ``action`` in another thread ``delay`` seconds from now."""

    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_for_wake(listener: TaskListener) -> float:
    started = time.monotonic()
    assert listener.wait(WAIT_SECONDS), "the listener was not woken"
    return time.monotonic() - started


def test_wait_times_out_quietly_when_nothing_happens(listener: TaskListener) -> None:
    started = time.monotonic()
    assert listener.wait(0.3) is False
    assert time.monotonic() - started >= 0.29


def test_an_interrupt_ends_a_wait_at_once(listener: TaskListener) -> None:
    thread = after(0.1, listener.interrupt)
    started = time.monotonic()
    assert listener.wait(WAIT_SECONDS) is False  # not a hint: nothing was enqueued
    thread.join()
    assert time.monotonic() - started < WAIT_SECONDS / 2


def test_an_interrupt_before_the_wait_is_not_lost(listener: TaskListener) -> None:
    listener.interrupt()
    started = time.monotonic()
    assert listener.wait(WAIT_SECONDS) is False
    assert time.monotonic() - started < WAIT_SECONDS / 2
    # Used up: the next wait waits again.
    assert listener.wait(0.2) is False
    assert time.monotonic() - started >= 0.19


def test_an_interrupted_listener_still_hears_a_later_enqueue(
    db: QueueDatabase, listener: TaskListener
) -> None:
    listener.interrupt()
    assert listener.wait(WAIT_SECONDS) is False
    thread = after(0.1, lambda: enqueue(db, "t"))
    elapsed = wait_for_wake(listener)
    thread.join()
    assert elapsed < WAIT_SECONDS / 2


def test_a_listener_quiet_for_a_while_still_hears_an_enqueue(
    db: QueueDatabase, listener: TaskListener
) -> None:
    # Past a quiet second the SQLite listener checks less often; it must still hear.
    thread = after(1.5, lambda: enqueue(db, "t"))
    elapsed = wait_for_wake(listener)
    thread.join()
    assert 1.4 <= elapsed < WAIT_SECONDS / 2


def test_an_enqueue_wakes_a_waiting_listener(db: QueueDatabase, listener: TaskListener) -> None:
    thread = after(0.1, lambda: enqueue(db, "t"))
    elapsed = wait_for_wake(listener)
    thread.join()
    # Woken by the enqueue, long before the wait's own timeout.
    assert elapsed < WAIT_SECONDS / 2


def test_a_bulk_enqueue_wakes_a_waiting_listener(db: QueueDatabase, listener: TaskListener) -> None:
    thread = after(0.1, lambda: enqueue_many(db, [NewTask(type="t") for _ in range(500)]))
    wait_for_wake(listener)
    thread.join()


@pytest.mark.parametrize("back_to_queued", ["release", "fail", "reclaim"])
def test_a_task_going_back_to_queued_wakes_a_waiting_listener(
    db: QueueDatabase, listener: TaskListener, back_to_queued: str
) -> None:
    enqueue(db, "t")
    [task] = claim_tasks(db, "w", lease_seconds=0.05 if back_to_queued == "reclaim" else 30)
    # Drain the hints of the enqueue and the claim before the change under test.
    while listener.wait(0.2):
        pass
    actions: dict[str, Callable[[], object]] = {
        "release": lambda: release(db, task.id, task.lease_token),
        "fail": lambda: fail(db, task.id, task.lease_token, "boom"),
        "reclaim": lambda: reclaim_expired_leases(db),
    }
    thread = after(0.1, actions[back_to_queued])
    wait_for_wake(listener)
    thread.join()


@pytest.mark.backend("postgresql")
def test_postgresql_notifies_once_per_queue_per_bulk_insert(db: QueueDatabase) -> None:
    import psycopg  # noqa: PLC0415 - the PostgreSQL driver is only needed in its own run

    conninfo = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as raw:
        raw.execute(f"LISTEN {NOTIFY_CHANNEL}")
        enqueue_many(
            db,
            [NewTask(type="t", queue="a") for _ in range(300)]
            + [NewTask(type="t", queue="b") for _ in range(300)],
        )
        payloads = sorted(n.payload for n in raw.notifies(timeout=1.0))
    assert payloads == ["a", "b"]


@pytest.mark.backend("postgresql")
def test_postgresql_listener_ignores_other_queues(db: QueueDatabase) -> None:
    with open_task_listener(db, queues=["emails"]) as emails:
        emails.wait(0.05)
        enqueue(db, "t", queue="reports")
        assert emails.wait(0.5) is False
        enqueue(db, "t", queue="emails")
        assert emails.wait(WAIT_SECONDS) is True


@pytest.mark.backend("postgresql")
def test_postgresql_listener_on_an_unreachable_server_times_out_without_raising(
    db: QueueDatabase,
) -> None:
    unreachable = db.url.set(host="127.0.0.1", port=1)
    with PostgreSQLTaskListener(unreachable, connect_timeout_seconds=1) as dead:
        started = time.monotonic()
        assert dead.wait(0.5) is False
        assert time.monotonic() - started >= 0.49
