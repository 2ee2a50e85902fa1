"""A small HTTP client of the PrismQ REST API, as a producer or an operator would use it.

Every call checks the status code it expects and fails with the response body otherwise,
so a test's failure message shows what the server said.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

import httpx

TERMINAL = frozenset({"completed", "failed", "cancelled"})
#: Longest single long-poll; a longer wait is several of them.
LONG_POLL_SECONDS = 20.0


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    """``response`` if its status is one of ``statuses``; else fail with its body."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url} answered {response.status_code},"
        f" expected {' or '.join(map(str, statuses))}: {response.text}"
    )
    return response


def timestamp(value: str) -> dt.datetime:
    """A date-time of the API's JSON (RFC 3339, ``Z`` or an offset)."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class QueueClient:
    """The API at ``base_url``, called with the bearer ``token``."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            # Long enough for the longest long-poll plus the server's own pause.
            timeout=httpx.Timeout(LONG_POLL_SECONDS + 30.0),
        )

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def __enter__(self) -> QueueClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- producing --------------------------------------------------------------------

    def enqueue(self, task_type: str, **fields: Any) -> httpx.Response:
        """``POST /api/queue/enqueue``; the response (201 or 200), checked."""
        response = self.http.post("/api/queue/enqueue", json={"type": task_type, **fields})
        return expect(response, 201, 200)

    def enqueue_batch(self, tasks: Iterable[dict[str, Any]]) -> list[int]:
        """``POST /api/queue/enqueue/batch``; the new tasks' ids in order."""
        response = self.http.post("/api/queue/enqueue/batch", json={"tasks": list(tasks)})
        ids = expect(response, 201).json()["task_ids"]
        return [int(task_id) for task_id in ids]

    # -- reading ----------------------------------------------------------------------

    def task(self, task_id: int) -> dict[str, Any]:
        """``GET /api/queue/tasks/{id}``."""
        task: dict[str, Any] = expect(self.http.get(f"/api/queue/tasks/{task_id}"), 200).json()
        return task

    def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        """Every task matching ``filters`` (``status``, ``type``, ``queue``), all pages."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {**filters, "limit": 500}
        while True:
            page = expect(self.http.get("/api/queue/tasks", params=params), 200).json()
            items.extend(page["items"])
            if page["next_cursor"] is None:
                return items
            params["cursor"] = page["next_cursor"]

    def wait(self, task_id: int, timeout: float) -> dict[str, Any]:
        """One long-poll ``GET /api/queue/tasks/{id}/wait``: the task, finished or not."""
        response = self.http.get(f"/api/queue/tasks/{task_id}/wait", params={"timeout": timeout})
        task: dict[str, Any] = expect(response, 200).json()
        return task

    def wait_finished(self, task_id: int, timeout: float = 60.0) -> dict[str, Any]:
        """Long-poll until the task is completed, failed or cancelled; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            task = self.wait(task_id, max(min(left, LONG_POLL_SECONDS), 0.1))
            if task["status"] in TERMINAL:
                return task
            assert left > 0, f"task {task_id} did not finish within {timeout:.0f} s: {task}"

    def wait_all_finished(
        self, task_ids: Iterable[int], timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """:meth:`wait_finished` for each id, within one shared ``timeout``."""
        deadline = time.monotonic() + timeout
        return [
            self.wait_finished(task_id, max(deadline - time.monotonic(), 0.1))
            for task_id in task_ids
        ]

    def logs(self, task_id: int) -> list[dict[str, Any]]:
        """The task's log lines, oldest first."""
        response = self.http.get(f"/api/queue/tasks/{task_id}/logs", params={"limit": 1000})
        items: list[dict[str, Any]] = expect(response, 200).json()["items"]
        return items

    def stats(self) -> dict[str, Any]:
        """``GET /api/queue/stats``."""
        stats: dict[str, Any] = expect(self.http.get("/api/queue/stats"), 200).json()
        return stats

    def workers(self) -> dict[str, dict[str, Any]]:
        """``GET /api/queue/workers`` (stopped ones included), by worker id."""
        response = self.http.get("/api/queue/workers", params={"include_stopped": True})
        return {item["worker_id"]: item for item in expect(response, 200).json()["items"]}

    def metrics_text(self) -> str:
        """``GET /metrics``, the Prometheus text."""
        return expect(self.http.get("/metrics"), 200).text

    # -- operating --------------------------------------------------------------------

    def cancel(self, task_id: int) -> httpx.Response:
        """``POST /api/queue/tasks/{id}/cancel``, unchecked (200 or 409 are both answers)."""
        return self.http.post(f"/api/queue/tasks/{task_id}/cancel")

    def retry(self, task_id: int) -> httpx.Response:
        """``POST /api/queue/tasks/{id}/retry``, unchecked."""
        return self.http.post(f"/api/queue/tasks/{task_id}/retry")
