"""The peers measured in the same run as PrismQ, on the same machine and workloads.

Each peer's adapter (``peer_pgqueuer``, ``peer_huey``) runs the workloads of the benchmark
page with the peer's own API and worker program, as the page's figures were measured. A
peer runs only where its package is installed (``nox -s bench`` installs each pinned
release, ``REQUIREMENTS``); otherwise the harness says so and reads PrismQ against the
page's quoted figures alone. A release other than the pinned one is not measured: its
figures would not be the page's peer.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import peer_huey, peer_pgqueuer
from benchmarks.results import Measurement
from benchmarks.sizes import WorkloadSizes


@dataclasses.dataclass(frozen=True, kw_only=True)
class PeerSystem:
    """One peer: where it runs, what it can run, and how to measure it."""

    system: str
    description: str
    backend: str
    requirements: tuple[str, ...]
    workloads: tuple[str, ...]
    available: Callable[[], bool]
    durability: Callable[[str], str]
    measure: Callable[[str, str, WorkloadSizes, Path], Measurement]
    #: Context recorded with each of its lines (e.g. SQLite's ``synchronous``).
    context: dict[str, Any] = dataclasses.field(default_factory=dict)


PEER_SYSTEMS = (
    PeerSystem(
        system=peer_pgqueuer.SYSTEM,
        description=peer_pgqueuer.DESCRIPTION,
        backend="postgresql",
        requirements=peer_pgqueuer.REQUIREMENTS,
        workloads=peer_pgqueuer.WORKLOADS,
        available=peer_pgqueuer.available,
        durability=peer_pgqueuer.durability,
        measure=peer_pgqueuer.measure,
    ),
    PeerSystem(
        system=peer_huey.SYSTEM,
        description=peer_huey.DESCRIPTION,
        backend="sqlite",
        requirements=peer_huey.REQUIREMENTS,
        workloads=peer_huey.WORKLOADS,
        available=peer_huey.available,
        durability=peer_huey.durability,
        measure=peer_huey.measure,
        # Huey's storage is opened at FULL, as the page's figures were measured.
        context={"sqlite_synchronous": "FULL"},
    ),
)

#: The system names of the peers, to tell their JSON lines from PrismQ's and the raw loops'.
PEER_SYSTEM_NAMES = frozenset(peer.system for peer in PEER_SYSTEMS)


def peer_systems_on(backend: str) -> list[PeerSystem]:
    """The peers that run on ``backend``."""
    return [peer for peer in PEER_SYSTEMS if peer.backend == backend]


def version_mismatches(peer: PeerSystem) -> list[str]:
    """How the installed packages differ from ``peer``'s pinned ``name==version``s."""
    problems = []
    for requirement in peer.requirements:
        spelled, _, pinned = requirement.partition("==")
        name = spelled.split("[", 1)[0]
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        if pinned and installed != pinned:
            problems.append(f"{name} {installed} is installed, not {pinned}")
    return problems
