"""What one invocation of the harness runs with: sizes, run count, database server, flags."""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.sizes import ScaleSizes, WorkloadSizes
from benchmarks.workers import WorkerFlags
from prismq.queue import __version__ as core_version


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchSettings:
    """Everything a workload needs besides its database."""

    sizes: WorkloadSizes
    scale_sizes: ScaleSizes
    runs: int
    quick: bool
    postgres_url: str
    #: Where SQLite scratch files and worker logs go.
    workdir: Path
    flags: WorkerFlags
    #: SQLite ``synchronous`` of the producer workloads; None: both for enqueue_single.
    sqlite_synchronous: str | None
    #: ``--concurrency`` of the workers on one backend, where it differs from ``flags``.
    concurrency_by_backend: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def for_backend(self, backend: str) -> BenchSettings:
        """These settings with the worker flags of ``backend``."""
        concurrency = self.concurrency_by_backend.get(backend, self.flags.concurrency)
        return dataclasses.replace(
            self, flags=dataclasses.replace(self.flags, concurrency=concurrency)
        )

    @property
    def log_dir(self) -> Path:
        """Where the workers' logs go (shown when a worker misbehaves)."""
        path = self.workdir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def worker_context(self, processes: int) -> dict[str, Any]:
        """The worker settings recorded with a figure."""
        return {"worker_processes": processes, "worker_flags": self.flags.argv()}


def environment(server: str) -> dict[str, Any]:
    """Where a figure was measured, recorded with it."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "prismq_queue_core": core_version,
        "server": server,
    }
