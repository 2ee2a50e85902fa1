"""The API under a real server: many long-polls at once, and concurrent idempotent enqueues.

The server is uvicorn in a thread of this process, on a free port, so the test can look at
the application's own count of waiting requests instead of guessing with sleeps.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from api_support import Api, api_settings, poll_until
from fastapi import FastAPI

from prismq.api import create_app
from prismq.api.wait import TaskWaiters
from prismq.queue import QueueDatabase, claim_tasks, complete, enqueue, get_task, list_tasks

WAITERS = 200
CONCURRENT_ENQUEUES = 20

pytestmark = pytest.mark.timeout(180)


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free local port; yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        poll_until(lambda: server.started or not thread.is_alive(), what="uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


async def poll_until_async(probe: Callable[[], bool], *, timeout: float = 60.0, what: str) -> None:
    """Await until ``probe()`` is true; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def _claim_and_complete(db: QueueDatabase, task_id: int) -> None:
    [claimed] = claim_tasks(db, "worker-1", task_types=["slow"])
    assert claimed.id == task_id
    complete(db, task_id, claimed.lease_token, {"done": True})


@pytest.fixture
def live(api: Api, database_url: str) -> Iterator[tuple[Api, FastAPI, str]]:
    """A second application on the test's database, served by uvicorn."""
    app = create_app(api_settings(database_url), database=api.db)
    with serving(app) as base_url:
        yield api, app, base_url


def test_many_waiters_do_not_hold_up_other_requests(live: tuple[Api, FastAPI, str]) -> None:
    api, app, base_url = live
    reader, writer = api.reader, api.writer
    task_id = enqueue(api.db, "slow").task_id
    waiters: TaskWaiters = app.state.task_waiters

    async def scenario() -> tuple[list[httpx.Response], int]:
        limits = httpx.Limits(max_connections=WAITERS + 10, max_keepalive_connections=WAITERS + 10)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
            waiting = [
                asyncio.create_task(
                    client.get(
                        f"/api/queue/tasks/{task_id}/wait",
                        params={"timeout": 60},
                        headers=reader,
                    )
                )
                for _ in range(WAITERS)
            ]
            await poll_until_async(
                lambda: waiters.waiting == WAITERS, what=f"{WAITERS} requests to be waiting"
            )

            # While all of them wait, the service still answers other requests.
            read = await client.get(f"/api/queue/tasks/{task_id}", headers=reader)
            assert (read.status_code, read.json()["status"]) == (200, "queued")
            added = await client.post("/api/queue/enqueue", json={"type": "other"}, headers=writer)
            assert added.status_code == 201
            stats = await client.get("/api/queue/stats", headers=reader)
            assert stats.json()["total_tasks"] == 2
            assert not any(request.done() for request in waiting)
            assert waiters.waiting == WAITERS

            await asyncio.to_thread(_claim_and_complete, api.db, task_id)
            return await asyncio.gather(*waiting), added.json()["task_id"]

    responses, other_id = asyncio.run(scenario())

    assert [response.status_code for response in responses] == [200] * WAITERS
    assert {response.json()["status"] for response in responses} == {"completed"}
    assert {str(response.json()["result"]) for response in responses} == {"{'done': True}"}
    assert get_task(api.db, other_id).type == "other"
    poll_until(lambda: waiters.waiting == 0, what="the waiters to be gone")


def test_concurrent_enqueues_with_one_key_make_one_task(live: tuple[Api, FastAPI, str]) -> None:
    api, _, base_url = live
    writer = api.writer
    body = {"type": "t", "idempotency_key": "same-key", "payload": {"n": 1}}
    start = threading.Barrier(CONCURRENT_ENQUEUES)

    def enqueue_once() -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            start.wait(timeout=30)
            return client.post("/api/queue/enqueue", json=body, headers=writer)

    with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENT_ENQUEUES) as pool:
        results = [pool.submit(enqueue_once) for _ in range(CONCURRENT_ENQUEUES)]
        responses = [result.result(timeout=90) for result in results]

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (CONCURRENT_ENQUEUES - 1) + [201]
    assert len({response.json()["task_id"] for response in responses}) == 1
    assert len(list_tasks(api.db).items) == 1


def test_a_waiter_that_disconnects_stops_waiting(live: tuple[Api, FastAPI, str]) -> None:
    api, app, base_url = live
    reader = api.reader
    task_id = enqueue(api.db, "slow").task_id
    waiters: TaskWaiters = app.state.task_waiters

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
            request = asyncio.create_task(
                client.get(
                    f"/api/queue/tasks/{task_id}/wait", params={"timeout": 60}, headers=reader
                )
            )
            await poll_until_async(lambda: waiters.waiting == 1, what="the request to wait")
            request.cancel()  # closes the connection, well before the 60 s timeout
            with contextlib.suppress(asyncio.CancelledError):
                await request
        await poll_until_async(
            lambda: waiters.waiting == 0, timeout=20, what="the server to notice"
        )

    asyncio.run(scenario())
