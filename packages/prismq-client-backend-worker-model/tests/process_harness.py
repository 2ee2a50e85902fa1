"""Run real ``prismq-worker`` processes from tests, and wait on them without sleeping blind.

A :class:`WorkerFleet` starts workers as child processes in sessions of their own (a
Ctrl-C or a signal meant for pytest never reaches them), sends each one's stderr to its
own log file, and on exit kills and reaps every child still running, so a failing test
leaves no process behind. Waiting is always a poll of the database or of a file until a
condition holds, with a deadline whose failure message says what was awaited and shows
the workers' logs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from process_handlers import EXECUTIONS_FILE_ENV, NOTES_FILE_ENV

from prismq.queue import (
    TERMINAL_STATUSES,
    QueueDatabase,
    TaskRecord,
    TaskStatus,
    WorkerRecord,
    get_task,
    list_tasks,
    list_workers,
    queue_stats,
)

TESTS_DIR = Path(__file__).resolve().parent
HANDLERS = "process_handlers:registry"
#: Environment variables a developer's shell may set that would change what a worker
#: under test does; the children never inherit them.
_INHERITED_PREFIXES = ("PRISMQ_WORKER_",)
_INHERITED_NAMES = ("PRISMQ_DATABASE_URL",)
#: How many lines of each worker's log a failure message shows.
LOG_TAIL_LINES = 40

T = TypeVar("T")

# Every child ever started and not yet reaped; killed at interpreter exit as a last resort
# (e.g. pytest interrupted between a start and the fixture's finaliser).
_LIVE: set[subprocess.Popen[bytes]] = set()


def _kill_leftovers() -> None:
    for popen in list(_LIVE):
        with contextlib.suppress(ProcessLookupError, OSError):
            popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=10)
        _LIVE.discard(popen)


atexit.register(_kill_leftovers)


def worker_command() -> list[str]:
    """The ``prismq-worker`` script of this interpreter's environment, else ``-m``."""
    script = Path(sys.executable).with_name("prismq-worker")
    if script.is_file():
        return [str(script)]
    found = shutil.which("prismq-worker")
    return [found] if found else [sys.executable, "-m", "prismq.worker"]


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without worker settings, with the tests directory importable."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_INHERITED_PREFIXES) and name not in _INHERITED_NAMES
    }
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if part
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# --- waiting -----------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    After ``timeout`` seconds fail with ``what`` and, if given, ``on_timeout()`` (e.g. the
    workers' logs).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            details = f"\n{on_timeout()}" if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{details}")
        time.sleep(interval)


_KEY_VALUE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_event_line(line: str) -> dict[str, str]:
    """The ``key=value`` fields of a log line (quotes around a value are removed)."""
    fields = {}
    for key, raw in _KEY_VALUE.findall(line):
        quoted = len(raw) >= 2 and raw[0] == raw[-1] == '"'
        fields[key] = raw[1:-1] if quoted else raw
    return fields


def parse_events(text: str) -> list[dict[str, str]]:
    """Every log line that has an ``event=`` field, parsed, in order."""
    return [parse_event_line(line) for line in text.splitlines() if "event=" in line]


def read_lines(path: Path) -> list[str]:
    """The non-empty lines of ``path``; none if it does not exist yet."""
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- database views ----------------------------------------------------------------------


def all_tasks(db: QueueDatabase) -> list[TaskRecord]:
    """Every task, through the public paginated listing."""
    tasks: list[TaskRecord] = []
    cursor: str | None = None
    while True:
        page = list_tasks(db, limit=500, cursor=cursor)
        tasks.extend(page.items)
        if page.next_cursor is None:
            return tasks
        cursor = page.next_cursor


def all_terminal(db: QueueDatabase) -> bool:
    """True when no task is queued or leased."""
    stats = queue_stats(db)
    return stats.total_tasks > 0 and stats.queued_tasks == stats.processing_tasks == 0


def task_in(db: QueueDatabase, task_id: int, *statuses: TaskStatus) -> TaskRecord | None:
    """The task if it is in one of ``statuses``, else None (for :func:`wait_until`)."""
    task = get_task(db, task_id)
    return task if task.status in statuses else None


def terminal_task(db: QueueDatabase, task_id: int) -> TaskRecord | None:
    """The task once it is completed, failed or cancelled; None before."""
    return task_in(db, task_id, *TERMINAL_STATUSES)


def worker_row(db: QueueDatabase, worker_id: str) -> WorkerRecord | None:
    """The worker's registry row, if it registered."""
    return next((w for w in list_workers(db) if w.worker_id == worker_id), None)


# --- processes ---------------------------------------------------------------------------


class WorkerProcess:
    """One running (or finished) ``prismq-worker`` child and its log file."""

    def __init__(self, worker_id: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.worker_id = worker_id
        self.popen = popen
        self.log_path = log_path
        #: Set when the test signalled this worker, so its exit is not a surprise.
        self.exit_expected = False
        self.killed = False

    def __repr__(self) -> str:
        return f"WorkerProcess({self.worker_id!r}, pid={self.pid}, exit={self.popen.poll()})"

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.popen.pid

    def is_alive(self) -> bool:
        """True until the process has exited."""
        return self.popen.poll() is None

    def log(self) -> str:
        """Everything the worker wrote to stderr so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log under a header naming the worker."""
        header = f"--- {self.worker_id} (pid {self.pid}, exit code {self.popen.poll()}) ---"
        return "\n".join([header, *self.log().splitlines()[-lines:]])

    def events(self, event: str | None = None, task_id: int | None = None) -> list[dict[str, str]]:
        """The worker's ``event=`` log lines, optionally of one event and one task."""
        return [
            fields
            for fields in parse_events(self.log())
            if (event is None or fields.get("event") == event)
            and (task_id is None or fields.get("task_id") == str(task_id))
        ]

    def send(self, signum: int) -> None:
        """Send a signal; a stop or kill marks the coming exit as expected."""
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            self.exit_expected = True
        self.killed = self.killed or signum == signal.SIGKILL
        self.popen.send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        """The exit code, waiting up to ``timeout`` seconds; fails with the log otherwise."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.worker_id} did not exit within {timeout:.0f} s\n{self.log_tail()}"
            ) from None
        _LIVE.discard(self.popen)
        return code


class WorkerFleet:
    """The worker processes of one test, all on one database; a context manager.

    ``executions_file`` and ``notes_file`` are handed to the handlers through the
    environment (see :mod:`process_handlers`).
    """

    def __init__(self, database_url: str, run_dir: Path) -> None:
        self.database_url = database_url
        self.run_dir = run_dir
        self.executions_file = run_dir / "executions.log"
        self.notes_file = run_dir / "notes.log"
        self.workers: list[WorkerProcess] = []
        run_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> WorkerFleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill_all()

    def start(
        self,
        worker_id: str,
        *,
        queues: Sequence[str] | None = None,
        strategy: str | None = None,
        concurrency: int | None = None,
        lease_seconds: float | None = None,
        poll_interval: float | None = 0.1,
        heartbeat_interval: float | None = None,
        shutdown_grace: float | None = None,
        capabilities: str | None = None,
        handlers: Iterable[str] = (HANDLERS,),
        log_level: str = "info",
        extra_args: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        """Start one ``prismq-worker``; options left ``None`` keep the worker's default."""
        if any(worker.worker_id == worker_id for worker in self.workers):
            raise ValueError(f"worker id {worker_id!r} was already used in this test")
        args = [*worker_command(), "--worker-id", worker_id]
        args += ["--database-url", self.database_url, "--log-level", log_level]
        for handler in handlers:
            args += ["--handlers", handler]
        options: dict[str, Any] = {
            "--queues": ",".join(queues) if queues is not None else None,
            "--strategy": strategy,
            "--concurrency": concurrency,
            "--lease-seconds": lease_seconds,
            "--poll-interval": poll_interval,
            "--heartbeat-interval": heartbeat_interval,
            "--shutdown-grace": shutdown_grace,
            "--capabilities": capabilities,
        }
        for flag, value in options.items():
            if value is not None:
                args += [flag, str(value)]
        args += list(extra_args)
        log_path = self.run_dir / f"{worker_id}.log"
        env = child_environment(
            {
                EXECUTIONS_FILE_ENV: str(self.executions_file),
                NOTES_FILE_ENV: str(self.notes_file),
                **(extra_env or {}),
            }
        )
        with log_path.open("wb") as log_file:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.run_dir,
                start_new_session=True,
            )
        _LIVE.add(popen)
        worker = WorkerProcess(worker_id, popen, log_path)
        self.workers.append(worker)
        return worker

    def live(self) -> list[WorkerProcess]:
        """Workers still running."""
        return [worker for worker in self.workers if worker.is_alive()]

    def killed_pids(self) -> set[int]:
        """Pids of the workers this test SIGKILLed."""
        return {worker.pid for worker in self.workers if worker.killed}

    def kill(self, worker: WorkerProcess) -> None:
        """SIGKILL ``worker`` and reap it."""
        worker.send(signal.SIGKILL)
        worker.wait_exit(timeout=30)

    def stop(self, worker: WorkerProcess, *, timeout: float = 60) -> int:
        """SIGTERM ``worker`` and return its exit code once it has exited."""
        worker.send(signal.SIGTERM)
        return worker.wait_exit(timeout=timeout)

    def kill_all(self) -> None:
        """Kill and reap every worker still running (the finaliser: never leave orphans)."""
        for worker in self.workers:
            if worker.is_alive():
                worker.exit_expected = True
                # The whole session: the worker and anything it may have started. SIGKILL
                # also ends a process that a test left stopped with SIGSTOP.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.popen.wait(timeout=30)
            _LIVE.discard(worker.popen)

    def unexpected_exits(self) -> list[WorkerProcess]:
        """Workers that exited although the test sent them no stop or kill."""
        return [w for w in self.workers if not w.exit_expected and w.popen.poll() is not None]

    def logs(self) -> str:
        """The tail of every worker's log, for failure messages."""
        return "\n".join(worker.log_tail() for worker in self.workers)

    def wait_until(
        self,
        predicate: Callable[[], T | None],
        *,
        timeout: float,
        what: str,
        interval: float = 0.05,
    ) -> T:
        """:func:`wait_until` that also fails at once if a worker died unexpectedly."""

        def check() -> T | None:
            if dead := self.unexpected_exits():
                raise AssertionError(
                    f"while waiting for {what}, worker(s) exited unexpectedly:"
                    f" {dead}\n{self.logs()}"
                )
            return predicate()

        return wait_until(
            check, timeout=timeout, what=what, interval=interval, on_timeout=self.logs
        )

    def executions(self, task_id: int | None = None) -> list[list[int]]:
        """``[task_id, attempt, pid]`` per recorded handler start, optionally of one task."""
        rows = [[int(field) for field in line.split()] for line in read_lines(self.executions_file)]
        return [row for row in rows if task_id is None or row[0] == task_id]

    def notes(self, task_id: int, what: str) -> list[float]:
        """Wall-clock times at which handlers noted ``what`` for ``task_id``."""
        times = []
        for line in read_lines(self.notes_file):
            noted_task, _pid, noted, at = line.split()
            if int(noted_task) == task_id and noted == what:
                times.append(float(at))
        return times

    def wait_for_execution(self, task_id: int, *, timeout: float = 60) -> list[int]:
        """Wait until a handler started on ``task_id``; its ``[task_id, attempt, pid]``."""
        return self.wait_until(
            lambda: next(reversed(self.executions(task_id)), None),
            timeout=timeout,
            what=f"a handler to start on task {task_id}",
        )

    def wait_for_terminal(
        self, db: QueueDatabase, task_id: int, *, timeout: float = 60
    ) -> TaskRecord:
        """Wait until ``task_id`` is completed, failed or cancelled; the task then."""
        return self.wait_until(
            lambda: terminal_task(db, task_id),
            timeout=timeout,
            what=f"task {task_id} to finish",
        )

    def wait_for_event(
        self, worker: WorkerProcess, event: str, *, task_id: int | None = None, timeout: float = 60
    ) -> dict[str, str]:
        """Wait until ``worker`` logs ``event`` (for ``task_id``); the parsed line."""
        return wait_until(
            lambda: next(iter(worker.events(event, task_id)), None),
            timeout=timeout,
            what=f"event={event} (task {task_id}) in {worker.worker_id}'s log",
            on_timeout=self.logs,
        )


def run_worker_to_exit(
    database_url: str, *args: str, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``prismq-worker`` with ``args`` until it exits by itself (e.g. on bad input)."""
    command = [*worker_command(), "--database-url", database_url, *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_environment(),
        cwd=cwd,
        start_new_session=True,
        check=False,
    )
