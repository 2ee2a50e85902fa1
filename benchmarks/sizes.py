"""How much work each workload does: the sizes of the benchmark page, or a few tasks (--quick)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkloadSizes:
    """Task counts and durations of the standard workloads."""

    enqueue_single: int
    enqueue_batch: int
    batch_size: int
    drain: int
    latency_tasks: int
    latency_interval_seconds: float
    latency_idle_seconds: float
    idle_cpu_seconds: float
    #: How long a started worker is left alone before its idle CPU is measured.
    idle_cpu_settle_seconds: float


FULL = WorkloadSizes(
    enqueue_single=5_000,
    enqueue_batch=50_000,
    batch_size=1_000,
    drain=20_000,
    latency_tasks=200,
    latency_interval_seconds=0.020,
    latency_idle_seconds=1.0,
    idle_cpu_seconds=20.0,
    idle_cpu_settle_seconds=2.0,
)

QUICK = WorkloadSizes(
    enqueue_single=200,
    enqueue_batch=200,
    batch_size=100,
    drain=200,
    latency_tasks=20,
    latency_interval_seconds=0.020,
    latency_idle_seconds=1.0,
    idle_cpu_seconds=2.0,
    idle_cpu_settle_seconds=0.5,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaleSizes:
    """The points of the scale study (``--scale``)."""

    queue_depths: dict[str, tuple[int, ...]]
    #: Tasks drained by one worker at each queue depth (at most half the queue).
    depth_drain: int
    worker_counts: tuple[int, ...]
    workers_drain: int
    completed_rows: dict[str, int]
    #: Queued tasks beside the completed rows, enough for every timed claim.
    queued_beside_completed: int
    claims: int


FULL_SCALE = ScaleSizes(
    queue_depths={"postgresql": (10_000, 100_000, 1_000_000), "sqlite": (10_000, 100_000)},
    depth_drain=5_000,
    worker_counts=(1, 2, 4, 8),
    workers_drain=20_000,
    completed_rows={"postgresql": 1_000_000, "sqlite": 1_000_000},
    queued_beside_completed=1_000,
    claims=200,
)

QUICK_SCALE = ScaleSizes(
    queue_depths={"postgresql": (1_000, 10_000), "sqlite": (1_000, 10_000)},
    depth_drain=200,
    worker_counts=(1, 2),
    workers_drain=500,
    completed_rows={"postgresql": 10_000, "sqlite": 10_000},
    queued_beside_completed=100,
    claims=20,
)
