"""Run PrismQ's services as real processes for a test, and always clean them up.

A :class:`Services` starts ``prismq-api serve`` and ``prismq-worker`` processes from the
environments built from the wheels, each in a process group of its own with its output in
a log file. Leaving the ``with`` block (passed or failed) kills every group still running,
and an ``atexit`` hook does the same should pytest itself be interrupted. Waiting is always
a poll with a deadline whose failure shows the services' logs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import httpx
from environments import InstalledCommands
from integration_handlers import EXECUTIONS_FILE_ENV, HANDLERS, Execution, read_executions
from queue_client import QueueClient

HANDLERS_DIR = Path(__file__).resolve().parent
#: How many lines of each log a failure message shows.
LOG_TAIL_LINES = 30
_UVICORN_ADDRESS = re.compile(r"Uvicorn running on (https?://[^\s]+)")

T = TypeVar("T")

_RUNNING_GROUPS: set[int] = set()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@atexit.register
def _kill_forgotten_groups() -> None:
    for pid in list(_RUNNING_GROUPS):
        _kill_group(pid)


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """This environment without PrismQ settings or Python paths, plus ``extra``.

    A developer's ``PRISMQ_*`` variables would change what the services do, and the
    session's ``PYTHONPATH``/``VIRTUAL_ENV`` would mix its editable installs into theirs.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PRISMQ_") and name not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def poll_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] = str,
    pause: float = 0.05,
) -> T:
    """Call ``condition`` until it returns something truthy, and return that.

    After ``timeout`` seconds fail, naming ``what`` was awaited and adding ``diagnostics()``.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up after {timeout:.0f} s waiting for {what}\n{diagnostics()}"
            )
        time.sleep(pause)
    return value


def run_command(*args: str, what: str) -> str:
    """Run a command to completion (e.g. ``prismq db upgrade``); its stdout.

    A non-zero exit fails the test with the command's output.
    """
    result = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        env=child_environment({}),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"{what}: {' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


class ServiceProcess:
    """One service process and its log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path
        #: Set when the test stopped or killed it: only then is its exit no failure.
        self.exit_expected = False

    @property
    def pid(self) -> int:
        """The process id (also its process group's)."""
        return self.popen.pid

    def is_alive(self) -> bool:
        """True until the process has exited."""
        return self.popen.poll() is None

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self) -> str:
        """The end of the log, under a line naming the process and its state."""
        lines = self.log().splitlines()[-LOG_TAIL_LINES:]
        return "\n".join([f"--- {self.name} (pid {self.pid}, exit {self.popen.poll()})", *lines])

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``signum`` and return the exit code; fail with the log if it does not exit."""
        self.exit_expected = True
        self.popen.send_signal(signum)
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {timeout:.0f} s of signal {signum}\n"
                f"{self.log_tail()}"
            ) from None
        _RUNNING_GROUPS.discard(self.pid)
        return code

    def kill_group(self) -> None:
        """SIGKILL the whole process group and reap the process."""
        self.exit_expected = True
        _kill_group(self.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)
        _RUNNING_GROUPS.discard(self.pid)


class Services:
    """The API and worker processes of one test, on one database; a context manager."""

    def __init__(self, installed: InstalledCommands, database_url: str, run_dir: Path) -> None:
        self.installed = installed
        self.database_url = database_url
        self.run_dir = run_dir
        self.executions_file = run_dir / "executions.log"
        self.processes: list[ServiceProcess] = []
        run_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill_group()

    def _start(self, name: str, args: list[str], extra_env: dict[str, str]) -> ServiceProcess:
        log_path = self.run_dir / f"{name}.log"
        with log_path.open("wb") as log_file:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=child_environment(extra_env),
                cwd=self.run_dir,
                start_new_session=True,
            )
        _RUNNING_GROUPS.add(popen.pid)
        process = ServiceProcess(name, popen, log_path)
        self.processes.append(process)
        return process

    def process(self, name: str) -> ServiceProcess:
        """The process started as ``name`` (``api`` or a worker id)."""
        return next(process for process in self.processes if process.name == name)

    def logs(self) -> str:
        """The end of every service's log, for failure messages."""
        return "\n".join(process.log_tail() for process in self.processes)

    def executions(self) -> list[Execution]:
        """Every handler start the workers recorded so far."""
        return read_executions(self.executions_file)

    def wait_until(self, condition: Callable[[], T | None], *, timeout: float, what: str) -> T:
        """:func:`poll_until`, failing at once if a service exited that nobody stopped."""

        def checked() -> T | None:
            dead = [p for p in self.processes if not (p.is_alive() or p.exit_expected)]
            assert not dead, f"while waiting for {what}, {dead[0].name} exited\n{self.logs()}"
            return condition()

        return poll_until(checked, timeout=timeout, what=what, diagnostics=self.logs)

    # -- the services -----------------------------------------------------------------

    def start_api(self) -> ServiceProcess:
        """Start ``prismq-api serve`` on a free port (see :meth:`wait_api_ready`)."""
        args = [self.installed.api("prismq-api"), "serve", "--host", "127.0.0.1", "--port", "0"]
        args += ["--database-url", self.database_url, "--shutdown-timeout", "5"]
        return self._start("api", args, {})

    def wait_api_ready(self, api: ServiceProcess) -> str:
        """Wait until ``api`` listens and ``/readyz`` answers 200; its base URL."""

        def address() -> str | None:
            found = _UVICORN_ADDRESS.search(api.log())
            return found.group(1) if found else None

        api_url = self.wait_until(address, timeout=60, what="the API to listen")
        self.wait_until(lambda: self._ready(api_url), timeout=60, what="the API's /readyz")
        return api_url

    @staticmethod
    def _ready(base_url: str) -> bool:
        try:
            return httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def start_worker(
        self,
        worker_id: str,
        *,
        concurrency: int = 4,
        lease_seconds: float = 10.0,
        heartbeat_seconds: float = 0.5,
        shutdown_grace: float = 10.0,
    ) -> ServiceProcess:
        """Start ``prismq-worker`` serving every queue with the integration handlers.

        A short heartbeat makes cancel requests (learnt at lease renewal) and reclaims of
        expired leases quick.
        """
        args = [self.installed.worker("prismq-worker"), "--worker-id", worker_id]
        args += ["--database-url", self.database_url, "--handlers", HANDLERS]
        args += ["--concurrency", str(concurrency), "--lease-seconds", str(lease_seconds)]
        args += ["--heartbeat-interval", str(heartbeat_seconds), "--poll-interval", "0.2"]
        args += ["--shutdown-grace", str(shutdown_grace)]
        env = {"PYTHONPATH": str(HANDLERS_DIR), EXECUTIONS_FILE_ENV: str(self.executions_file)}
        return self._start(worker_id, args, env)

    def migrate(self) -> None:
        """``prismq db upgrade`` from the worker's environment."""
        prismq = self.installed.worker("prismq")
        run_command(prismq, "db", "upgrade", "--database-url", self.database_url, what="migrate")

    def create_token(self, name: str = "integration") -> str:
        """A new ``admin`` token, made with ``prismq-api tokens create``."""
        output = run_command(
            self.installed.api("prismq-api"),
            *("tokens", "create", name, "--scope", "admin"),
            *("--database-url", self.database_url),
            what="create a token",
        )
        return output.strip()


@contextlib.contextmanager
def running_api(
    installed: InstalledCommands,
    database_url: str,
    run_dir: Path,
    *,
    migrate: bool = True,
    workers: Sequence[str] = (),
) -> Iterator[tuple[Services, QueueClient]]:
    """Migrate (unless told not to), start the API and ``workers``; the services and a client.

    The token is made and the workers start while the API starts up: each command spends
    seconds importing, and they need not wait for one another.
    """
    with Services(installed, database_url, run_dir) as services:
        if migrate:
            services.migrate()
        api = services.start_api()
        for worker_id in workers:
            services.start_worker(worker_id)
        token = services.create_token()
        with QueueClient(services.wait_api_ready(api), token) as client:
            yield services, client
