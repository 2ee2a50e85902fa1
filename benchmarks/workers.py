"""Real ``prismq-worker`` processes: started with explicit flags, stopped with SIGTERM.

A benchmark worker must stop on SIGTERM with exit status 0, like in production; any other
ending makes the run fail. Its environment carries no ``PRISMQ_WORKER_*`` or
``PRISMQ_DATABASE_URL`` variable, so every setting is a flag recorded with the figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks.errors import BenchmarkError

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = "benchmarks.handlers:registry"
#: ``prismq-worker`` has no SQLite ``synchronous`` setting: it opens the core's default.
WORKER_SQLITE_SYNCHRONOUS = "NORMAL"
STOP_TIMEOUT_SECONDS = 60.0
_LOG_TAIL_LINES = 15
_worker_numbers = itertools.count(1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkerFlags:
    """The ``prismq-worker`` flags a workload runs with (everything else: the defaults)."""

    concurrency: int
    log_level: str = "warning"

    def argv(self) -> list[str]:
        """The flags, as passed on the command line (and recorded in the results)."""
        return [
            "--handlers",
            HANDLERS,
            "--concurrency",
            str(self.concurrency),
            "--log-level",
            self.log_level,
        ]


def worker_program() -> list[str]:
    """The ``prismq-worker`` command of this Python environment."""
    beside_python = Path(sys.executable).with_name("prismq-worker")
    if beside_python.is_file():
        return [str(beside_python)]
    found = shutil.which("prismq-worker")
    if found is None:
        raise BenchmarkError(
            "prismq-worker not found: install prismq-client-backend-worker-model in this venv"
        )
    return [found]


def _worker_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PRISMQ_WORKER_") and name != "PRISMQ_DATABASE_URL"
    }
    # The handlers module lives in this repository, not in an installed package.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class WorkerProcess:
    """One running worker; its stderr goes to a log file shown when something goes wrong."""

    def __init__(
        self,
        database_url: str,
        worker_id: str,
        flags: WorkerFlags,
        *,
        log_dir: Path,
        program: Sequence[str] | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.log_path = log_dir / f"{worker_id}.log"
        command = [
            *(program or worker_program()),
            *flags.argv(),
            "--worker-id",
            worker_id,
            "--database-url",
            database_url,
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=_worker_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._process.pid

    def ensure_running(self) -> None:
        """Raise if the worker has exited (it should run until we stop it)."""
        status = self._process.poll()
        if status is not None:
            raise BenchmarkError(
                f"worker {self.worker_id} exited early with status {status}{self._log_tail()}"
            )

    def send_stop(self) -> None:
        """SIGTERM: the worker stops claiming, finishes what it runs and exits."""
        self.ensure_running()
        self._process.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> None:
        """Wait for the exit that :meth:`send_stop` asked for; require status 0."""
        try:
            status = self._process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchmarkError(
                f"worker {self.worker_id} did not exit within {STOP_TIMEOUT_SECONDS:.0f} s"
                f" of SIGTERM{self._log_tail()}"
            ) from None
        if status != 0:
            raise BenchmarkError(
                f"worker {self.worker_id} exited with status {status} after SIGTERM"
                f" (expected 0){self._log_tail()}"
            )

    def kill(self) -> None:
        """End the worker at once if it still runs (clean-up after a failed run)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time the worker used so far, all its threads included.

        The process line of ``/proc/<pid>/stat`` sums every thread of the process, the
        exited ones too, which is what an idle worker costs the machine.
        """
        self.ensure_running()
        stat = Path(f"/proc/{self.pid}/stat").read_text(encoding="ascii")
        # The command name (field 2) may contain spaces: split after its closing paren.
        fields = stat[stat.rindex(")") + 2 :].split()
        user_ticks, system_ticks = int(fields[11]), int(fields[12])
        return (user_ticks + system_ticks) / os.sysconf("SC_CLK_TCK")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        if not lines:
            return " (its log is empty)"
        return "; last lines of its log:\n" + "\n".join(lines[-_LOG_TAIL_LINES:])


@contextlib.contextmanager
def started_workers(
    database_url: str,
    count: int,
    flags: WorkerFlags,
    *,
    log_dir: Path,
    program: Sequence[str] | None = None,
) -> Iterator[list[WorkerProcess]]:
    """Start ``count`` workers; whatever happens, none outlives the block."""
    workers: list[WorkerProcess] = []
    try:
        for number in range(1, count + 1):
            worker_id = f"bench-{os.getpid()}-{next(_worker_numbers)}-w{number}"
            workers.append(
                WorkerProcess(database_url, worker_id, flags, log_dir=log_dir, program=program)
            )
        yield workers
    finally:
        for worker in workers:
            worker.kill()


def stop_all(workers: Sequence[WorkerProcess]) -> None:
    """SIGTERM every worker at once, then require each to exit 0."""
    for worker in workers:
        worker.send_stop()
    for worker in workers:
        worker.wait_stopped()
