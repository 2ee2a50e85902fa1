"""``python -m prismq.worker.demo`` runs to the end in a database of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SECTIONS = (
    "DEMO 1: Worker Database Creation",
    "DEMO 2: Running Tasks",
    "DEMO 3: Failures, Retries and Dead Letters",
    "DEMO 4: Multiple Worker Strategies",
    "DEMO 5: Worker Statistics",
)


def test_the_demo_runs_and_leaves_the_users_database_alone(tmp_path: Path) -> None:
    users_database = tmp_path / "users.db"
    env = dict(os.environ, PRISMQ_DATABASE_URL=f"sqlite:///{users_database}")
    result = subprocess.run(
        [sys.executable, "-m", "prismq.worker.demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for section in SECTIONS:
        assert section in result.stdout
    for line in (
        "✓ Worker ID: worker-01",
        "✓ Strategy: SchedulingStrategy.PRIORITY",
        "✓ Capabilities: {'type': 'processor'}",
        "(test_task): completed",
        "(send_email): completed",
        "flaky: completed after 2 attempts",
        "invalid_input: failed after 1 attempt",
        "priority        ran p50 p10 p90 p30 (enqueued in that order) as: p10 p30 p50 p90",
        "fifo            ran p50 p10 p90 p30 (enqueued in that order) as: p50 p10 p90 p30",
        "lifo            ran p50 p10 p90 p30 (enqueued in that order) as: p30 p90 p10 p50",
        "stopped cleanly: True",
        "Database closed cleanly",
    ):
        assert line in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    assert not users_database.exists()
