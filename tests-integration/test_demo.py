"""The one-command demo (``demo/run.py``, what ``nox -s demo`` runs), end to end.

The runner starts the API and a worker as two processes, enqueues its workload over HTTP and,
with ``--exit-when-done``, stops both once every task is finished. The database is then read
through ``prismq.queue`` to check what the runner reported: every task finished, the retried
task completed on its second attempt, the delayed one started no earlier than it was due,
the always-failing one dead-lettered with all its attempts used.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from prismq.queue import (
    TERMINAL_STATUSES,
    QueueDatabase,
    TaskRecord,
    TaskStatus,
    list_tasks,
    list_workers,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "demo"
RUNNER = DEMO_DIR / "run.py"
sys.path.insert(0, str(DEMO_DIR))

from prismq_demo.workload import (  # noqa: E402 - importable once demo/ is on the path
    DEAD_LETTER_TYPE,
    DELAYED_TYPE,
    ORDINARY_TYPES,
    RETRIED_TYPE,
)

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(400)]

ORDINARY_TASKS = 12
RUN_TIMEOUT_SECONDS = 300
#: The runner's line for each child it stopped, e.g. "the worker (prismq-worker) exited with
#: status 0 (a clean stop)".
EXIT_LINE = re.compile(r"the (worker|API) \(.*\) exited with status (-?\d+)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the runner to its end, without the caller's PRISMQ_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRISMQ_")}
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # SIGTERM is the runner's stop: it stops its API and worker instead of orphaning them.
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=90)
        pytest.fail(f"the demo did not finish in {RUN_TIMEOUT_SECONDS} s\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _all_tasks(database_url: str) -> list[TaskRecord]:
    tasks: list[TaskRecord] = []
    cursor = None
    with QueueDatabase(database_url) as db:
        while True:
            page = list_tasks(db, limit=500, cursor=cursor)
            tasks += page.items
            cursor = page.next_cursor
            if cursor is None:
                return tasks


def _only(tasks: list[TaskRecord], task_type: str) -> TaskRecord:
    found = [task for task in tasks if task.type == task_type]
    assert len(found) == 1, f"expected one {task_type} task, found {found}"
    return found[0]


def test_demo_runs_its_workload_and_stops_cleanly(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    demo_dir = tmp_path / "demo"
    args = ["--exit-when-done", "--port", str(_free_port()), "--demo-dir", str(demo_dir)]
    args += ["--tasks", str(ORDINARY_TASKS), "--seed", "7"]
    if backend == "postgresql":
        args += ["--postgres", database_url]
    else:
        # The demo makes its own SQLite file in its folder.
        database_url = f"sqlite:///{demo_dir / 'prismq-demo.db'}"

    result = _run_demo(*args)
    output = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    assert "Traceback" not in result.stdout + result.stderr, output
    exits = dict(EXIT_LINE.findall(result.stdout))
    assert exits == {"worker": "0", "API": "0"}, output
    assert (demo_dir / "api.log").stat().st_size > 0, output
    assert (demo_dir / "worker.log").stat().st_size > 0, output

    tasks = _all_tasks(database_url)
    assert len(tasks) == ORDINARY_TASKS + 3, output
    assert all(task.status in TERMINAL_STATUSES for task in tasks), [
        (task.id, task.type, task.status) for task in tasks
    ]
    ordinary = [task for task in tasks if task.type in ORDINARY_TYPES]
    assert len(ordinary) == ORDINARY_TASKS
    assert all(task.status is TaskStatus.COMPLETED for task in ordinary), ordinary

    retried = _only(tasks, RETRIED_TYPE)
    assert retried.status is TaskStatus.COMPLETED, retried
    assert retried.attempts == 2, retried

    dead = _only(tasks, DEAD_LETTER_TYPE)
    assert dead.status is TaskStatus.FAILED, dead
    assert dead.attempts == dead.max_attempts, dead
    assert dead.max_attempts < 5, "the demo's dead letter should not need the default attempts"
    assert dead.error_message, dead

    delayed = _only(tasks, DELAYED_TYPE)
    assert delayed.status is TaskStatus.COMPLETED, delayed
    assert delayed.run_after_utc > delayed.created_at_utc, delayed
    assert delayed.processing_started_utc is not None, delayed
    assert delayed.processing_started_utc >= delayed.run_after_utc, delayed

    with QueueDatabase(database_url) as db:
        workers = list_workers(db)
    assert len(workers) == 1, workers
    assert workers[0].stopped_at_utc is not None, "the worker did not record a clean stop"
