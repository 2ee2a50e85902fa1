"""The demo, step by step: database, token, API and worker, workload, progress, summary,
then serving until Ctrl-C and stopping the children in order."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from prismq_demo import commands
from prismq_demo.access import access_lines
from prismq_demo.api_client import ApiClient, ApiError
from prismq_demo.children import describe_exit
from prismq_demo.errors import DemoError
from prismq_demo.options import Target, choose_port, choose_target, parse_arguments
from prismq_demo.progress import ProgressCounts, ProgressDisplay
from prismq_demo.run_folder import RunFolder, shown_path
from prismq_demo.services import WORKER_CONCURRENCY, Interrupted, Services
from prismq_demo.stopping import StopRequest
from prismq_demo.summary import special_lines, type_table
from prismq_demo.workload import Workload, build_workload

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNSUPPORTED = 2
PROGRESS_POLL_SECONDS = 0.5

T = TypeVar("T")


def say(text: str = "") -> None:
    """Print a line at once (the output may be a pipe, e.g. under nox or a test)."""
    print(text, flush=True)


class DemoRun:
    """One run of the demo and what it has started, so that it can be stopped at any point."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.folder = RunFolder(args.demo_dir)
        self.target: Target = choose_target(args.postgres, args.demo_dir)
        self.services: Services | None = None
        self.token_name = ""
        self.stop = StopRequest(on_force=self.kill_children)

    # -- the steps -----------------------------------------------------------------------

    def run(self) -> None:
        """Every step up to the end of the workload (and serving, unless told to exit)."""
        self.folder.claim()
        port = choose_port(self.args.port)  # before anything else: a busy port fails fast
        say("PrismQ demo: the REST API and a worker, two processes that meet only in the database.")
        say()
        token = self.prepare_database()
        services = self.start_services(port)
        client = ApiClient(services.base_url, token)
        worker = services.wait_ready(client, self.stop, self.args.ready_timeout)
        say(f"Ready: the API answers /readyz and worker {worker['worker_id']} is active.")
        say()
        for line in access_lines(services.base_url, token):
            say(line)
        say()
        roles, task_ids = self.enqueue(client)
        tasks = self.follow_progress(client, task_ids)
        self.summarise(client, tasks, roles)
        if not self.args.exit_when_done:
            self.serve_until_stopped()

    def prepare_database(self) -> str:
        """Make or reuse the database, migrate it, create the token; returns the token."""
        if self.target.is_postgres:
            say(f"Database  PostgreSQL {self.target.shown_url}")
            say("          (`prismq db upgrade` creates PrismQ's tables there if they are missing;")
            say("          the demo's tasks stay in that database afterwards)")
        else:
            self.folder.remove_sqlite_database(self.target)
            say(f"Database  SQLite, a fresh file: {shown_path(self.target.sqlite_path)}")
        commands.migrate(self.target.url)
        say("          migrated with `prismq db upgrade`")
        # Token names are unique among active tokens, and a PostgreSQL database outlives runs.
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        self.token_name = f"demo-{stamp}-{os.getpid()}" if self.target.is_postgres else "demo"
        token = commands.create_token(self.target.url, self.token_name)
        scopes = " ".join(f"--scope {scope}" for scope in commands.TOKEN_SCOPES)
        say(f"Token     `prismq-api tokens create {self.token_name} {scopes}`")
        self._check_stop()
        return token

    def start_services(self, port: int) -> Services:
        """Start the API (on ``port``) and the worker."""
        self.services = Services(
            self.target, port, self.folder.path, worker_id=f"demo-worker-{os.getpid()}"
        )
        self.services.start()
        say(f"API       {self.services.base_url}, log: {shown_path(self.services.api_log)}")
        say(
            f"Worker    {WORKER_CONCURRENCY} tasks at a time,"
            f" log: {shown_path(self.services.worker_log)}"
        )
        say("Waiting for both to be ready ...")
        return self.services

    def enqueue(self, client: ApiClient) -> tuple[dict[int, str], list[int]]:
        """Enqueue the workload over HTTP: the ordinary tasks in one batch, the special ones
        one by one. Returns the special tasks' roles by id, and every id."""
        rng = random.Random(self.args.seed)
        workload: Workload = build_workload(
            rng, ordinary_tasks=self.args.tasks, now=dt.datetime.now(dt.timezone.utc)
        )
        say(f"Enqueueing {workload.size} tasks over HTTP:")
        batch_ids = self._api(
            lambda: client.post("/api/queue/enqueue/batch", {"tasks": workload.batch})
        )["task_ids"]
        types = len({body["type"] for body in workload.batch})
        say(
            f"  POST /api/queue/enqueue/batch  {len(batch_ids)} tasks of {types} types"
            f" -> ids {_id_range(batch_ids)}"
        )
        roles: dict[int, str] = {}
        for special in workload.special:
            answer = self._api(partial(client.post, "/api/queue/enqueue", special.body))
            roles[answer["task_id"]] = special.role
            extra = {
                k: v
                for k, v in special.body.items()
                if k in ("priority", "max_attempts", "run_after_utc")
            }
            settings = ", ".join(f"{key}={value}" for key, value in extra.items())
            say(
                f"  POST /api/queue/enqueue        {special.body['type']} ({special.role}"
                + (f"; {settings}" if settings else "")
                + f") -> id {answer['task_id']}"
            )
        self._check_stop()
        return roles, [*batch_ids, *roles]

    def follow_progress(self, client: ApiClient, task_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Poll the tasks until all are finished, showing the progress; the tasks at the end."""
        say()
        say(f"Progress (GET /api/queue/tasks every {PROGRESS_POLL_SECONDS} s):")
        display = ProgressDisplay(sys.stdout, interactive=sys.stdout.isatty())
        deadline = time.monotonic() + self.args.timeout
        try:
            while True:
                self._services().check()
                tasks = self._api(lambda: client.tasks(task_ids))
                counts = ProgressCounts.of(tasks.values(), total=len(task_ids))
                display.show(counts)
                if counts.done:
                    return tasks
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"The workload was not finished after {self.args.timeout:g} s"
                        f" ({counts.finished} of {counts.total} tasks). The worker's log"
                        f" {shown_path(self._services().worker_log)} tells what it is doing.",
                        log=self._services().worker_log,
                    )
                if self.stop.sleep(PROGRESS_POLL_SECONDS):
                    raise Interrupted
        finally:
            display.finish()

    def summarise(
        self, client: ApiClient, tasks: dict[int, dict[str, Any]], roles: dict[int, str]
    ) -> None:
        """The summary table, the special tasks, and the queue's statistics."""
        say()
        say("Summary of the demo's tasks (from GET /api/queue/tasks):")
        say()
        for line in type_table(list(tasks.values())):
            say(line)
        logs = {task_id: self._log_lines(client, task_id) for task_id in roles}
        say()
        say("The special tasks:")
        for line in special_lines(roles, tasks, logs):
            say(line)
        stats = self._api(lambda: client.get("/api/queue/stats"))
        scope = "every task in the database" if self.target.is_postgres else "the whole queue"
        say()
        say(
            f"GET /api/queue/stats ({scope}): {stats['total_tasks']} tasks,"
            f" {stats['completed_tasks']} completed, {stats['failed_tasks']} failed,"
            f" {stats['cancelled_tasks']} cancelled, {stats['queued_tasks']} queued,"
            f" {stats['processing_tasks']} processing"
        )

    def serve_until_stopped(self) -> None:
        """Keep the API and the worker running until a stop signal (or one of them exits)."""
        services = self._services()
        say()
        say(
            "The API and the worker keep running: enqueue more tasks with the curl commands"
            f" above, open {services.base_url}/docs, or follow the worker with"
            f" `tail -f {shown_path(services.worker_log)}`. Press Ctrl-C to stop them."
        )
        while not self.stop.sleep(1.0):
            services.check()
        raise Interrupted

    # -- stopping ------------------------------------------------------------------------

    def stop_children(self) -> bool:
        """Stop the worker, then the API, reporting each exit status; True if both stopped
        cleanly."""
        if self.services is None or not self.services.running:
            return True
        say()
        say(
            "Stopping the worker, then the API (SIGTERM: each finishes its work first;"
            " Ctrl-C again kills them at once):"
        )
        clean = True
        for child, status in self.services.stop_in_order():
            if status == -signal.SIGTERM:
                # Both children turn SIGTERM into a graceful stop (status 0) once they run;
                # ended by it, a child had not got that far: no task was its yet.
                ended = "ended at SIGTERM while still starting (it had nothing to finish)"
            elif status == 0:
                ended = f"{describe_exit(status)} (a clean stop)"
            else:
                ended = f"{describe_exit(status)} (see {shown_path(child.log_path)})"
            say(f"  the {child.name} {ended}")
            clean = clean and status in (0, -signal.SIGTERM)
        return clean

    def kill_children(self) -> None:
        """SIGKILL the children (a second Ctrl-C)."""
        if self.services is not None:
            self.services.kill()

    def finish(self, *, failed: bool) -> None:
        """Revoke the token of a PostgreSQL run (it would outlive the demo), free the folder."""
        if not self.folder.claimed:
            return  # another demo holds the folder: nothing here is this run's
        if self.target.is_postgres and self.token_name:
            try:
                commands.revoke_token(self.target.url, self.token_name)
                say(f"Revoked the demo's token {self.token_name!r} in the PostgreSQL database.")
            except DemoError as error:
                say(f"Note: the demo's token was left active: {error.message}")
        self.folder.release()
        if failed:
            return  # the error named the file to look at
        what = "the logs are" if self.target.is_postgres else "the database file and the logs are"
        say(f"Demo finished: {what} in {shown_path(self.folder.path)}.")

    # -- helpers -------------------------------------------------------------------------

    def _services(self) -> Services:
        assert self.services is not None, "the services start before anything uses them"
        return self.services

    def _api(self, call: Callable[[], T]) -> T:
        """``call()``, an API request; if it fails because a child died, say that instead."""
        try:
            return call()
        except ApiError as error:
            services = self._services()
            services.check()
            error.log = services.api_log
            raise

    def _log_lines(self, client: ApiClient, task_id: int) -> list[str]:
        """The task's log (``GET .../logs``), one ``[level] message`` string per line."""
        page = self._api(partial(client.get, f"/api/queue/tasks/{task_id}/logs"))
        return [f"[{item['level']}] {item['message']}" for item in page["items"]]

    def _check_stop(self) -> None:
        if self.stop.requested:
            raise Interrupted


def _id_range(ids: list[int]) -> str:
    if ids == list(range(ids[0], ids[0] + len(ids))):
        return f"{ids[0]}..{ids[-1]}"
    return ", ".join(map(str, ids))


def _report_failure(error: DemoError) -> None:
    message = error.message
    if error.log is not None and str(error.log) not in message:
        message += f" More in {shown_path(error.log)}."
    print(f"\nThe demo stopped: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status (0 after a clean stop)."""
    args = parse_arguments(argv)
    if os.name != "posix":
        print("The demo runs on Linux and macOS (or WSL) only.", file=sys.stderr)
        return EXIT_UNSUPPORTED
    try:
        demo = DemoRun(args)
    except DemoError as error:
        _report_failure(error)
        return EXIT_FAILED
    demo.stop.install()
    failed = False
    try:
        demo.run()
    except Interrupted:
        say(f"\n{demo.stop.signal_name} received.")
    except DemoError as error:
        if demo.stop.requested:
            # The terminal's Ctrl-C also reached a command the demo was running (they share
            # its process group), which then failed: that is the stop asked for, not a fault.
            say(f"\n{demo.stop.signal_name} received.")
        else:
            _report_failure(error)
            failed = True
    finally:
        clean = demo.stop_children()
        demo.finish(failed=failed or not clean)
    return EXIT_FAILED if failed or not clean else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
