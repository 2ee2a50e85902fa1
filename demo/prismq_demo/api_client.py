"""A small client of the PrismQ REST API on the standard library alone (``urllib``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from prismq_demo.errors import DemoError

#: Newest-first page size used to read the demo's tasks back (the API's largest page).
PAGE_SIZE = 500


class ApiError(DemoError):
    """The API answered with an error, or did not answer."""


class ApiClient:
    """JSON requests to one PrismQ API, with one bearer token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str) -> Any:
        """``GET path`` and its decoded JSON body."""
        return self._request("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """``POST path`` with a JSON body, and the decoded JSON answer."""
        return self._request("POST", path, body)

    def is_ready(self) -> bool:
        """True when ``/readyz`` answers 200: the database is reachable and migrated."""
        request = urllib.request.Request(f"{self.base_url}/readyz")  # noqa: S310 - http://127.0.0.1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False  # not listening yet (refused), or 503: not ready

    def tasks(self, task_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The tasks with these ids, read newest first through ``GET /api/queue/tasks``.

        Reading stops at the oldest id wanted, so tasks enqueued before the demo (in a
        PostgreSQL database that already had some) are not read at all.
        """
        wanted = set(task_ids)
        if not wanted:
            return {}
        oldest = min(wanted)
        found: dict[int, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            query = f"?limit={PAGE_SIZE}" + (f"&cursor={cursor}" if cursor else "")
            page = self.get(f"/api/queue/tasks{query}")
            items: list[dict[str, Any]] = page["items"]
            found.update((item["id"], item) for item in items if item["id"] in wanted)
            cursor = page["next_cursor"]
            if cursor is None or not items or items[-1]["id"] <= oldest:
                return found

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the demo's own http://127.0.0.1
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ApiError(
                f"{method} {path} answered {error.code} {error.reason}: {_problem_detail(error)}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(
                f"{method} {path} got no answer from {self.base_url}: {reason}"
            ) from None
        except json.JSONDecodeError:
            raise ApiError(f"{method} {path} answered with a body that is not JSON") from None


def _problem_detail(error: urllib.error.HTTPError) -> str:
    """The ``detail`` of an ``application/problem+json`` body, else the body's start."""
    try:
        text = error.read().decode(errors="replace")
    except OSError:
        return "(no body)"
    try:
        problem = json.loads(text)
    except json.JSONDecodeError:
        return text[:200] or "(no body)"
    if isinstance(problem, dict) and "detail" in problem:
        return str(problem["detail"])
    return text[:200]
