"""Our peers' figures and PrismQ's targets, as given on the project's benchmark page (bench.md).

The peers were measured on a machine of the same kind as ours (2 cores, 24 GiB,
PostgreSQL 15 on the same machine, ``fsync=on``, ``synchronous_commit=on``), each worker
logging at WARNING; medians of 3 runs. These are the quoted figures; PgQueuer and Huey are
also measured in each run beside PrismQ (``peer_systems``), and every target is read
against both.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class PeerFigures:
    """One peer's figures on the benchmark page."""

    name: str
    system: str
    backend: str
    durability: str
    #: Tasks per second by workload.
    jobs_per_s: dict[str, float]
    latency_p50_ms: float
    latency_p99_ms: float


PEERS = (
    PeerFigures(
        name="procrastinate",
        system="Procrastinate 3.10.0 (concurrency 10)",
        backend="postgresql",
        durability="postgresql fsync=on synchronous_commit=on",
        jobs_per_s={"enqueue_single": 724, "enqueue_batch": 14_951, "drain": 528, "drain_2w": 668},
        latency_p50_ms=4.6,
        latency_p99_ms=9.8,
    ),
    PeerFigures(
        name="pgqueuer",
        system="PgQueuer 1.6.0 (asyncpg, batch 10)",
        backend="postgresql",
        durability="postgresql fsync=on synchronous_commit=on",
        jobs_per_s={
            "enqueue_single": 1_660,
            "enqueue_batch": 45_113,
            "drain": 3_735,
            "drain_2w": 4_866,
        },
        latency_p50_ms=3.2,
        latency_p99_ms=5.4,
    ),
    PeerFigures(
        name="huey",
        system="Huey 3.5.4 (4 threads)",
        backend="sqlite",
        durability="sqlite WAL synchronous=FULL",
        # Huey has no bulk API: its enqueue_batch is one task per call.
        jobs_per_s={
            "enqueue_single": 4_979,
            "enqueue_batch": 5_310,
            "drain": 2_941,
            "drain_2w": 3_009,
        },
        latency_p50_ms=32.1,
        latency_p99_ms=100.4,
    ),
)

#: The page's raw-driver figures for its machine (this harness measures its own each run).
PAGE_RAW_FIGURES = {
    ("postgresql", "drain"): 39_000,
    ("postgresql", "enqueue_batch"): 300_000,
    ("sqlite", "drain"): 186_000,
    ("sqlite", "enqueue_single"): 44_000,
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ThroughputTarget:
    """PrismQ's tasks/s on ``workload`` must reach ``factor`` times the peer's."""

    backend: str
    workload: str
    peer: str
    factor: float
    #: SQLite: the durability the comparison must be made at (None: any).
    sqlite_synchronous: str | None = None


THROUGHPUT_TARGETS = (
    ThroughputTarget(backend="postgresql", workload="drain", peer="pgqueuer", factor=3),
    ThroughputTarget(backend="postgresql", workload="drain_2w", peer="pgqueuer", factor=3),
    ThroughputTarget(backend="postgresql", workload="enqueue_batch", peer="pgqueuer", factor=2),
    ThroughputTarget(backend="postgresql", workload="enqueue_single", peer="pgqueuer", factor=1.2),
    ThroughputTarget(backend="sqlite", workload="drain", peer="huey", factor=5),
    ThroughputTarget(
        backend="sqlite",
        workload="enqueue_single",
        peer="huey",
        factor=2,
        sqlite_synchronous="FULL",
    ),
)

#: Pickup latency limits, (p50, p99) in ms: PostgreSQL's p50 is PgQueuer's own.
LATENCY_TARGETS_MS = {"postgresql": (3.2, 6.0), "sqlite": (5.0, 20.0)}
#: Whose pickup latency p50 PrismQ's must not exceed, by backend.
LATENCY_P50_PEER = {"postgresql": "pgqueuer"}


def peers_on(backend: str) -> list[PeerFigures]:
    """The peers measured on ``backend``."""
    return [peer for peer in PEERS if peer.backend == backend]


def peer_named(name: str) -> PeerFigures:
    """The peer called ``name``."""
    return next(peer for peer in PEERS if peer.name == name)
