"""The standard workloads of the benchmark page on one backend: PrismQ, the peers, the raw loops.

Each run of each workload gets a fresh scratch database; a workload's JSON line holds the
medians of its runs. The systems measured on a workload take turns, run by run (raw loop,
peer, PrismQ, then again), so that a slow spell of a shared machine falls on all of them
rather than on one; the raw loop's and the peer's lines are written first, so that
PrismQ's line can carry its ratios to them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Sequence
from typing import Any

from benchmarks import enqueue_workloads, raw_postgres, raw_sqlite, worker_workloads
from benchmarks.comparison import with_ratios
from benchmarks.durability import prismq_durability, server_version
from benchmarks.peer_systems import PeerSystem, peer_systems_on, version_mismatches
from benchmarks.results import (
    SYSTEM_PRISMQ,
    SYSTEM_RAW,
    Measurement,
    ResultWriter,
    progress,
    summarise,
)
from benchmarks.scratch import scratch_database
from benchmarks.settings import BenchSettings, environment
from benchmarks.workers import WORKER_SQLITE_SYNCHRONOUS

WORKLOADS = ("enqueue_single", "enqueue_batch", "drain", "drain_2w", "latency", "idle_cpu")
#: Context values that tell the lines (and the progress messages) of one workload apart.
_DISTINGUISHING = ("sqlite_synchronous", "queued", "worker_processes", "completed_rows")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Case:
    """One JSON line to produce: a workload of one system, measured ``runs`` times."""

    system: str
    workload: str
    measure: Callable[[str], Measurement]
    durability: Callable[[str], str]
    migrated: bool = True
    context: dict[str, Any] = dataclasses.field(default_factory=dict)


def _single_levels(settings: BenchSettings) -> tuple[str, ...]:
    given = settings.sqlite_synchronous
    return (given,) if given else ("NORMAL", "FULL")


def _batch_level(settings: BenchSettings) -> str:
    return settings.sqlite_synchronous or "NORMAL"


def prismq_cases(backend: str, workloads: Collection[str], settings: BenchSettings) -> list[Case]:
    """PrismQ's cases of ``workloads`` on ``backend``."""
    sizes, flags, logs = settings.sizes, settings.flags, settings.log_dir
    sqlite = backend == "sqlite"

    def synchronous(level: str) -> dict[str, str]:
        return {"sqlite_synchronous": level} if sqlite else {}

    def producer(workload: str, level: str, measure: Callable[[str], Measurement]) -> Case:
        return Case(
            system=SYSTEM_PRISMQ,
            workload=workload,
            measure=measure,
            durability=lambda url: prismq_durability(url, sqlite_synchronous=level),
            context=synchronous(level),
        )

    def with_workers(workload: str, processes: int, measure: Callable[[str], Measurement]) -> Case:
        return Case(
            system=SYSTEM_PRISMQ,
            workload=workload,
            measure=measure,
            durability=prismq_durability,
            context={
                **synchronous(WORKER_SQLITE_SYNCHRONOUS),
                **settings.worker_context(processes),
            },
        )

    cases = []
    if "enqueue_single" in workloads:
        for level in _single_levels(settings) if sqlite else ("NORMAL",):
            cases.append(
                producer(
                    "enqueue_single",
                    level,
                    functools.partial(
                        enqueue_workloads.enqueue_single,
                        tasks=sizes.enqueue_single,
                        sqlite_synchronous=level,
                    ),
                )
            )
    if "enqueue_batch" in workloads:
        batch_level = _batch_level(settings)
        cases.append(
            producer(
                "enqueue_batch",
                batch_level,
                lambda url: enqueue_workloads.enqueue_batch(
                    url,
                    sizes.enqueue_batch,
                    batch_size=sizes.batch_size,
                    sqlite_synchronous=batch_level,
                ),
            )
        )
    for workload, processes in (("drain", 1), ("drain_2w", 2)):
        if workload in workloads:
            cases.append(
                with_workers(
                    workload,
                    processes,
                    functools.partial(
                        worker_workloads.drain,
                        tasks=sizes.drain,
                        workers=processes,
                        flags=flags,
                        log_dir=logs,
                    ),
                )
            )
    if "latency" in workloads:
        cases.append(
            with_workers(
                "latency",
                1,
                lambda url: worker_workloads.pickup_latency(
                    url,
                    sizes.latency_tasks,
                    interval_seconds=sizes.latency_interval_seconds,
                    idle_seconds=sizes.latency_idle_seconds,
                    flags=flags,
                    log_dir=logs,
                ),
            )
        )
    if "idle_cpu" in workloads:
        cases.append(
            with_workers(
                "idle_cpu",
                1,
                lambda url: worker_workloads.idle_cpu(
                    url,
                    seconds=sizes.idle_cpu_seconds,
                    settle_seconds=sizes.idle_cpu_settle_seconds,
                    flags=flags,
                    log_dir=logs,
                ),
            )
        )
    return cases


def raw_cases(backend: str, workloads: Collection[str], settings: BenchSettings) -> list[Case]:
    """The raw-driver loops that PrismQ's selected ``workloads`` are read against."""
    sizes = settings.sizes
    wanted = {"enqueue_single", "enqueue_batch", "drain"} & {
        "drain" if workload == "drain_2w" else workload for workload in workloads
    }
    cases = []
    if backend == "postgresql":
        measures: dict[str, Callable[[str], Measurement]] = {
            "enqueue_single": lambda url: raw_postgres.enqueue_single(url, sizes.enqueue_single),
            "enqueue_batch": lambda url: raw_postgres.enqueue_batch(
                url, sizes.enqueue_batch, batch_size=sizes.batch_size
            ),
            "drain": lambda url: raw_postgres.drain(url, sizes.drain),
        }
        for workload in ("enqueue_single", "enqueue_batch", "drain"):
            if workload in wanted:
                cases.append(
                    Case(
                        system=SYSTEM_RAW,
                        workload=workload,
                        measure=measures[workload],
                        durability=raw_postgres.durability,
                        migrated=False,
                    )
                )
        return cases
    levels = {
        "enqueue_single": _single_levels(settings),
        "enqueue_batch": (_batch_level(settings),),
        "drain": (WORKER_SQLITE_SYNCHRONOUS,),
    }
    for workload in ("enqueue_single", "enqueue_batch", "drain"):
        if workload not in wanted:
            continue
        for level in levels[workload]:
            cases.append(
                Case(
                    system=SYSTEM_RAW,
                    workload=workload,
                    measure=functools.partial(
                        _raw_sqlite, workload=workload, settings=settings, level=level
                    ),
                    durability=functools.partial(raw_sqlite.durability, synchronous=level),
                    migrated=False,
                    context={"sqlite_synchronous": level},
                )
            )
    return cases


def peer_cases(backend: str, workloads: Collection[str], settings: BenchSettings) -> list[Case]:
    """The peers' cases of ``workloads`` on ``backend`` (those whose package is installed)."""
    cases = []
    for peer in peer_systems_on(backend):
        wanted = [workload for workload in peer.workloads if workload in workloads]
        if not wanted:
            continue
        problems = version_mismatches(peer) or ([] if peer.available() else ["cannot import it"])
        if problems:
            progress(
                f"{peer.system} not measured ({'; '.join(problems)}): PrismQ is read against"
                f" the page's quoted figures only (pip install {' '.join(peer.requirements)})"
            )
            continue
        cases += [
            Case(
                system=peer.system,
                workload=workload,
                measure=functools.partial(_measure_peer, peer, workload, settings),
                durability=peer.durability,
                migrated=False,
                context={**peer.context, "peer": peer.description},
            )
            for workload in wanted
        ]
    return cases


def _measure_peer(
    peer: PeerSystem, workload: str, settings: BenchSettings, url: str
) -> Measurement:
    return peer.measure(workload, url, settings.sizes, settings.log_dir)


def _raw_sqlite(url: str, *, workload: str, settings: BenchSettings, level: str) -> Measurement:
    sizes = settings.sizes
    if workload == "enqueue_single":
        return raw_sqlite.enqueue_single(url, sizes.enqueue_single, synchronous=level)
    if workload == "enqueue_batch":
        return raw_sqlite.enqueue_batch(
            url, sizes.enqueue_batch, batch_size=sizes.batch_size, synchronous=level
        )
    return raw_sqlite.drain(url, sizes.drain, synchronous=level)


def _describe(case: Case, backend: str) -> str:
    """E.g. ``"prismq sqlite drain_2w worker_processes=2"``."""
    details = [
        f"{name}={value:,}" if isinstance(value, int) else f"{name}={value}"
        for name in _DISTINGUISHING
        if (value := case.context.get(name)) is not None
    ]
    return " ".join([case.system, backend, case.workload, *details])


def _measure_once(
    case: Case, backend: str, settings: BenchSettings, number: int, context: dict[str, Any]
) -> Measurement:
    """Run ``case`` once on a fresh database; fills ``context`` on the first run."""
    progress(f"{_describe(case, backend)}: run {number}/{settings.runs}")
    with scratch_database(
        backend,
        postgres_url=settings.postgres_url,
        workdir=settings.workdir,
        migrated=case.migrated,
    ) as url:
        measurement = case.measure(url)
        if not context:
            context.update(durability=case.durability(url), env=environment(server_version(url)))
        return measurement


def run_cases(cases: Sequence[Case], backend: str, settings: BenchSettings) -> list[dict[str, Any]]:
    """Measure each of ``cases`` ``settings.runs`` times, taking turns; their JSON lines."""
    runs: list[list[Measurement]] = [[] for _ in cases]
    contexts: list[dict[str, Any]] = [{} for _ in cases]
    for number in range(1, settings.runs + 1):
        for index, case in enumerate(cases):
            runs[index].append(_measure_once(case, backend, settings, number, contexts[index]))
    return [
        summarise(
            system=case.system,
            backend=backend,
            workload=case.workload,
            runs=case_runs,
            context={**case.context, **context, "quick": settings.quick},
        )
        for case, case_runs, context in zip(cases, runs, contexts, strict=True)
    ]


def run_case(case: Case, backend: str, settings: BenchSettings) -> dict[str, Any]:
    """Measure ``case`` ``settings.runs`` times, each on a fresh database; its JSON line."""
    [record] = run_cases([case], backend, settings)
    return record


def _turns(cases: Sequence[Case]) -> list[list[Case]]:
    """The cases grouped by workload, in order: each group takes turns run by run.

    The one-process raw drain, the counterpart of both drain and drain_2w, takes turns
    with the drain.
    """
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.workload, []).append(case)
    return list(groups.values())


def run_suite(
    backends: Collection[str],
    workloads: Collection[str],
    settings: BenchSettings,
    writer: ResultWriter,
    *,
    raw: bool = True,
    peers: bool = True,
) -> None:
    """Every selected workload on every selected backend: raw loop, peer, PrismQ in turns."""
    base_settings = settings
    for backend in backends:
        settings = base_settings.for_backend(backend)
        cases = raw_cases(backend, workloads, settings) if raw else []
        cases += peer_cases(backend, workloads, settings) if peers else []
        cases += prismq_cases(backend, workloads, settings)
        for group in _turns(cases):
            for record in run_cases(group, backend, settings):
                writer.write(with_ratios(record, writer.records))
