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
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks.errors import BenchmarkError
from benchmarks.processes import STOP_TIMEOUT_SECONDS, LoggedProcess, started, stop_all

__all__ = [
    "STOP_TIMEOUT_SECONDS",
    "WorkerFlags",
    "WorkerProcess",
    "started_workers",
    "stop_all",
    "worker_program",
]

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = "benchmarks.handlers:registry"
#: ``prismq-worker`` has no SQLite ``synchronous`` setting: it opens the core's default.
WORKER_SQLITE_SYNCHRONOUS = "NORMAL"
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


class WorkerProcess(LoggedProcess):
    """One running ``prismq-worker``; its output goes to a log file shown when it misbehaves."""

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
        command = [
            *(program or worker_program()),
            *flags.argv(),
            "--worker-id",
            worker_id,
            "--database-url",
            database_url,
        ]
        super().__init__(
            command, name=worker_id, log_dir=log_dir, cwd=ROOT, env=_worker_environment()
        )


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
    batch = f"bench-{os.getpid()}-{next(_worker_numbers)}"

    def start(number: int) -> WorkerProcess:
        return WorkerProcess(
            database_url, f"{batch}-w{number}", flags, log_dir=log_dir, program=program
        )

    with started(start, count) as workers:
        yield workers
