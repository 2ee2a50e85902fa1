"""Helpers shared by the API test modules (no tests here)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.testclient import TestClient

from prismq.api import ApiSettings
from prismq.api.auth import Scope
from prismq.api.tokens import create_token
from prismq.queue import QueueDatabase

T = TypeVar("T")

PROBLEM_JSON = "application/problem+json"


def api_settings(database_url: str, **overrides: Any) -> ApiSettings:
    """Settings for a test application; quick wait polling so waits end promptly."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "api_wait_poll_seconds": 0.01,
        "api_wait_max_poll_seconds": 0.1,
    }
    values.update(overrides)
    return ApiSettings(**values)


@dataclass
class Api:
    """An application under test, its client and its database."""

    app: FastAPI
    client: TestClient
    db: QueueDatabase
    _names: Iterator[int] = field(default_factory=itertools.count)

    def headers(self, *scopes: Scope | str) -> dict[str, str]:
        """``Authorization`` headers of a new token with ``scopes``."""
        _, token = create_token(self.db, f"test-token-{next(self._names)}", scopes)
        return {"Authorization": f"Bearer {token}"}

    @property
    def reader(self) -> dict[str, str]:
        """Headers of a new ``tasks:read`` token."""
        return self.headers(Scope.TASKS_READ)

    @property
    def writer(self) -> dict[str, str]:
        """Headers of a new ``tasks:write`` token."""
        return self.headers(Scope.TASKS_WRITE)

    @property
    def admin(self) -> dict[str, str]:
        """Headers of a new ``admin`` token."""
        return self.headers(Scope.ADMIN)


def enqueue_via_api(api: Api, headers: dict[str, str], **body: Any) -> int:
    """Enqueue a task over HTTP (type ``t`` unless given); returns its id."""
    response = api.client.post("/api/queue/enqueue", json={"type": "t", **body}, headers=headers)
    assert response.status_code == 201, response.text
    task_id: int = response.json()["task_id"]
    return task_id


def poll_until(probe: Callable[[], T], *, timeout: float = 30.0, what: str = "") -> T:
    """Call ``probe`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or probe}")
        time.sleep(0.01)
