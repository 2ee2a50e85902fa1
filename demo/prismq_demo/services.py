"""Start the API and the worker, wait until both are up, and stop them in order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prismq_demo.api_client import ApiClient, ApiError
from prismq_demo.children import Child, check_running, kill_child, start_child, stop_child
from prismq_demo.commands import find_command
from prismq_demo.errors import DemoError
from prismq_demo.options import HOST, Target
from prismq_demo.stopping import StopRequest

WORKER_CONCURRENCY = 4
#: Seconds the worker's handlers may finish after SIGTERM; the demo's take two at most.
WORKER_SHUTDOWN_GRACE = 10
#: Seconds the API gives requests in flight after SIGTERM.
API_SHUTDOWN_TIMEOUT = 5
#: Beyond its own grace, how long a child may take to exit before it is killed.
STOP_MARGIN_SECONDS = 15
HANDLERS = "prismq_demo.handlers:registry"
_POLL_SECONDS = 0.2


class Interrupted(Exception):  # noqa: N818 - a stop the user asked for, not an error
    """A stop signal arrived: the runner skips to stopping the children."""


class Services:
    """The API (``prismq-api serve``) and one worker (``prismq-worker``) on one database."""

    def __init__(self, target: Target, port: int, demo_dir: Path, worker_id: str) -> None:
        self.target = target
        self.port = port
        self.worker_id = worker_id
        self.api_log = demo_dir / "api.log"
        self.worker_log = demo_dir / "worker.log"
        self.api: Child | None = None
        self.worker: Child | None = None

    @property
    def base_url(self) -> str:
        """Where the API listens."""
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> list[Child]:
        """The children started so far (running or not)."""
        return [child for child in (self.api, self.worker) if child is not None]

    def start(self) -> None:
        """Start the API, then the worker, each with its log file."""
        self.api = start_child(
            "API (prismq-api serve)",
            [
                find_command("prismq-api"),
                "serve",
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--database-url",
                self.target.url,
                "--shutdown-timeout",
                str(API_SHUTDOWN_TIMEOUT),
            ],
            self.api_log,
        )
        self.worker = start_child(
            "worker (prismq-worker)",
            [
                find_command("prismq-worker"),
                "--handlers",
                HANDLERS,
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--worker-id",
                self.worker_id,
                "--database-url",
                self.target.url,
                "--shutdown-grace",
                str(WORKER_SHUTDOWN_GRACE),
            ],
            self.worker_log,
        )

    def check(self) -> None:
        """Raise :class:`DemoError` if the API or the worker has exited."""
        check_running(self.running)

    def wait_ready(self, client: ApiClient, stop: StopRequest, timeout: float) -> dict[str, Any]:
        """Wait for ``/readyz``, then for the worker to show up active in ``/api/queue/workers``;
        returns the worker as the API lists it."""
        deadline = time.monotonic() + timeout
        while not client.is_ready():
            self._wait_a_little(stop, deadline, "the API to answer /readyz", self.api_log)
        while True:
            worker = self._listed_worker(client)
            if worker is not None and worker["state"] == "active":
                return worker
            what = f"worker {self.worker_id} to show up in /api/queue/workers"
            self._wait_a_little(stop, deadline, what, self.worker_log)

    def _listed_worker(self, client: ApiClient) -> dict[str, Any] | None:
        try:
            workers = client.get("/api/queue/workers?include_stopped=false")["items"]
        except ApiError:
            self.check()  # an API that died says more than the refused request
            raise
        return next((item for item in workers if item["worker_id"] == self.worker_id), None)

    def _wait_a_little(self, stop: StopRequest, deadline: float, what: str, log: Path) -> None:
        self.check()
        if time.monotonic() > deadline:
            raise DemoError(
                f"Gave up waiting for {what} within the --ready-timeout (a slow machine may"
                f" need more). Look for the reason in {log}.",
                log=log,
            )
        if stop.sleep(_POLL_SECONDS):
            raise Interrupted

    def stop_in_order(self) -> Iterator[tuple[Child, int]]:
        """Stop the worker (it finishes or releases its tasks), then the API; yields each
        child with its exit status as it exits."""
        if self.worker is not None:
            yield self.worker, stop_child(self.worker, WORKER_SHUTDOWN_GRACE + STOP_MARGIN_SECONDS)
        if self.api is not None:
            yield self.api, stop_child(self.api, API_SHUTDOWN_TIMEOUT + STOP_MARGIN_SECONDS)

    def kill(self) -> None:
        """Kill both at once (a second Ctrl-C)."""
        for child in self.running:
            kill_child(child)
