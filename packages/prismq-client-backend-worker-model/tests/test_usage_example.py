"""The usage example of the original worker layer still runs, word for word.

Only its import line changes (``from src.worker_model import`` → ``from prismq.worker
import``); the caller supplies ``my_handler`` and a migrated database in
``$PRISMQ_DATABASE_URL``. ``worker.run_loop()`` runs until SIGTERM, then the script ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from worker_support import DEADLINE_SECONDS, wait_for_status

from prismq.queue import QueueDatabase, TaskStatus, enqueue, list_workers

CALLER_PRELUDE = """
def my_handler(payload):
    return {"handled": payload["value"]}
"""

# Verbatim from the original summary, import line changed.
USAGE_EXAMPLE = """
from prismq.worker import (
    WorkerDatabase,
    TaskHandlerRegistry,
    WorkerConfig,
    SchedulingStrategy
)

# Create worker database
worker_db = WorkerDatabase()

# Setup handlers
registry = TaskHandlerRegistry()
registry.register_handler("my_task", my_handler)

# Create worker
config = WorkerConfig(
    worker_id="worker-01",
    scheduling_strategy=SchedulingStrategy.PRIORITY
)

worker = worker_db.create_worker(
    worker_id="worker-01",
    config=config,
    handler_registry=registry
)

# Run worker
worker.run_loop()
"""


def test_the_usage_example_runs_verbatim(database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "usage_example.py"
    script.write_text(textwrap.dedent(CALLER_PRELUDE) + USAGE_EXAMPLE)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PRISMQ_")}
    env["PRISMQ_DATABASE_URL"] = database_url
    log_path = tmp_path / "usage_example.log"
    with QueueDatabase(database_url) as db:
        task_id = enqueue(db, "my_task", {"value": 7}).task_id
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(script)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                task = wait_for_status(db, task_id, TaskStatus.COMPLETED, timeout=60)
                process.send_signal(signal.SIGTERM)
                assert process.wait(DEADLINE_SECONDS) == 0, log_path.read_text()
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        assert task.result == {"handled": 7}
        [row] = [w for w in list_workers(db) if w.worker_id == "worker-01"]
        assert row.stopped_at_utc is not None
