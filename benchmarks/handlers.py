"""The handlers benchmark workers run (``--handlers benchmarks.handlers:registry``).

Both return at once, so what is measured is the queue, not the work.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.task_types import NOOP, STAMP
from prismq.worker import TaskHandlerRegistry

registry = TaskHandlerRegistry()


@registry.handler(NOOP, description="returns at once")
def noop(payload: dict[str, Any]) -> None:
    """Do nothing: the no-op task of the throughput workloads."""


@registry.handler(STAMP, description="returns the wall-clock time its handler started")
def stamp(payload: dict[str, Any]) -> dict[str, float]:
    """Return when the handler started (``time.time()``), for the pickup-latency workload."""
    return {"started_at": time.time()}
