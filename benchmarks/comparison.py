"""Figures read as ratios: against this run's raw-driver loops, the peers, the targets.

A peer counts twice: by the figures the benchmark page quotes (``vs_peers``), and, when the
peer ran in this run on this machine, by its figures here (``vs_peers_same_run``). The
second is the fairer reading, since the two were measured side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.peer_systems import PEER_SYSTEM_NAMES
from benchmarks.peers import (
    LATENCY_P50_PEER,
    LATENCY_TARGETS_MS,
    THROUGHPUT_TARGETS,
    PeerFigures,
    peer_named,
    peers_on,
)
from benchmarks.results import SYSTEM_PRISMQ, SYSTEM_RAW

#: The raw-driver loop each PrismQ workload is read against (the raw loops are one process).
RAW_COUNTERPART = {
    "enqueue_single": "enqueue_single",
    "enqueue_batch": "enqueue_batch",
    "drain": "drain",
    "drain_2w": "drain",
}


def _ratio(figure: float, reference: float) -> float:
    return float(f"{figure / reference:.3g}")


def _same_durability(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("sqlite_synchronous") == b.get("sqlite_synchronous")


def with_ratios(record: dict[str, Any], earlier: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``record`` plus its ratios to this run's raw loop and, for PrismQ, to the peers.

    ``vs_raw``: this run's raw loop (PrismQ's and the peers' lines); ``vs_peers``: the
    page's quoted figures; ``vs_peers_same_run``: the peers' lines of this run.
    """
    if record["system"] == SYSTEM_RAW:
        return record
    workload, backend = record["workload"], record["backend"]
    added: dict[str, Any] = {}
    raw_workload = RAW_COUNTERPART.get(workload)
    raw = _earlier(earlier, SYSTEM_RAW, backend, raw_workload, record)
    if raw is not None and record["jobs_per_s"] and raw["jobs_per_s"]:
        added["vs_raw"] = {
            "raw_workload": raw_workload,
            "raw_jobs_per_s": raw["jobs_per_s"],
            "ratio": _ratio(record["jobs_per_s"], raw["jobs_per_s"]),
        }
    if record["system"] != SYSTEM_PRISMQ:
        return {**record, **added}
    quoted = {
        peer.name: ratios
        for peer in peers_on(backend)
        if (ratios := _ratios(record, _quoted_line(peer, workload))) is not None
    }
    same_run = {
        name: ratios
        for name in sorted(PEER_SYSTEM_NAMES)
        if (peer_line := _earlier(earlier, name, backend, workload, record)) is not None
        and (ratios := _ratios(record, peer_line)) is not None
    }
    if quoted:
        added["vs_peers"] = quoted
    if same_run:
        added["vs_peers_same_run"] = same_run
    return {**record, **added}


def _earlier(
    earlier: Sequence[dict[str, Any]],
    system: str,
    backend: str,
    workload: str | None,
    record: dict[str, Any],
) -> dict[str, Any] | None:
    """The line of ``system`` on the same backend and workload, at comparable durability."""
    return next(
        (
            other
            for other in earlier
            if other["system"] == system
            and other["backend"] == backend
            and other["workload"] == workload
            and _comparable_durability(record, other)
        ),
        None,
    )


def _comparable_durability(record: dict[str, Any], other: dict[str, Any]) -> bool:
    # Raw loops run at each level PrismQ does: match exactly. A peer runs at one level;
    # only the enqueue workloads, where PrismQ runs at both, must match it.
    if other["system"] == SYSTEM_RAW or record["workload"].startswith("enqueue"):
        return _same_durability(record, other)
    return True


def _quoted_line(peer: PeerFigures, workload: str) -> dict[str, Any]:
    """The page's figure of ``peer`` as a line's figures."""
    if workload == "latency":
        return {"jobs_per_s": None, "p50_ms": peer.latency_p50_ms, "p99_ms": peer.latency_p99_ms}
    return {"jobs_per_s": peer.jobs_per_s.get(workload), "p50_ms": None, "p99_ms": None}


def _ratios(record: dict[str, Any], peer_line: dict[str, Any]) -> Any:
    """PrismQ over the peer: tasks/s, or latency p50 and p99 (lower is better there)."""
    if record["workload"] == "latency":
        if record["p50_ms"] is None or not peer_line["p50_ms"]:
            return None
        return {
            "p50_ratio": _ratio(record["p50_ms"], peer_line["p50_ms"]),
            "p99_ratio": _ratio(record["p99_ms"], peer_line["p99_ms"]),
        }
    if record["workload"] == "idle_cpu":
        return None
    if record["jobs_per_s"] and peer_line["jobs_per_s"]:
        return _ratio(record["jobs_per_s"], peer_line["jobs_per_s"])
    return None


def _find(
    records: Sequence[dict[str, Any]],
    backend: str,
    workload: str,
    synchronous: str | None,
    system: str = SYSTEM_PRISMQ,
) -> dict[str, Any] | None:
    for record in records:
        if (
            record["system"] == system
            and record["backend"] == backend
            and record["workload"] == workload
            and (synchronous is None or record.get("sqlite_synchronous") == synchronous)
        ):
            return record
    return None


def target_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """One line per target of the benchmark page that this run has a figure for.

    Each target is read against the page's quoted peer figure and, when the peer ran in
    this run, against its figure here ("here").
    """
    lines = []
    for target in THROUGHPUT_TARGETS:
        record = _find(records, target.backend, target.workload, target.sqlite_synchronous)
        if record is None or not record["jobs_per_s"]:
            continue
        quoted = peer_named(target.peer).jobs_per_s[target.workload]
        here = _find(
            records, target.backend, target.workload, target.sqlite_synchronous, target.peer
        )
        durability = f" at {target.sqlite_synchronous}" if target.sqlite_synchronous else ""
        what = f"{target.backend} {target.workload}{durability} >= {target.factor:g}x"
        references = [(f"{target.peer} quoted", quoted)]
        if here is not None and here["jobs_per_s"]:
            references.append((f"{target.peer} here", here["jobs_per_s"]))
        got = record["jobs_per_s"]
        for label, reference in references:
            needed = target.factor * reference
            lines.append(
                f"{'met ' if got >= needed else 'MISS'}  {what} {label} ({needed:,.0f}/s):"
                f" {got:,.0f}/s ({got / reference:.2f}x)"
            )
    for backend, (p50_limit, p99_limit) in LATENCY_TARGETS_MS.items():
        record = _find(records, backend, "latency", None)
        if record is None or record["p50_ms"] is None:
            continue
        limits = [("", p50_limit)]
        peer = LATENCY_P50_PEER.get(backend)
        peer_here = None if peer is None else _find(records, backend, "latency", None, peer)
        if peer_here is not None and peer_here["p50_ms"]:
            limits.append((f" ({peer}'s p50 here)", peer_here["p50_ms"]))
        for label, p50 in limits:
            met = record["p50_ms"] <= p50 and record["p99_ms"] <= p99_limit
            lines.append(
                f"{'met ' if met else 'MISS'}  {backend} latency p50 <= {p50:.2f} ms{label},"
                f" p99 <= {p99_limit} ms: {record['p50_ms']:.2f} / {record['p99_ms']:.2f} ms"
            )
    return lines


def summary_table(records: Sequence[dict[str, Any]]) -> list[str]:
    """A plain-text table of every JSON line, for a reader at the terminal."""
    lines = [
        f"{'system':<11} {'backend':<10} {'workload':<15} {'sync':<6} {'tasks/s':>10}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'vs raw':>7} {'start s':>7}  durability"
    ]
    for record in records:
        figure = record["jobs_per_s"]
        vs_raw = record.get("vs_raw", {}).get("ratio")
        if record["workload"] == "idle_cpu":
            shown = f"{record.get('cpu_percent', 0):.2f}% cpu"
        else:
            shown = f"{figure:,.0f}" if figure else "-"
        lines.append(
            f"{record['system']:<11} {record['backend']:<10} {record['workload']:<15}"
            f" {record.get('sqlite_synchronous') or '':<6} {shown:>10}"
            f" {_ms(record['p50_ms']):>8} {_ms(record['p99_ms']):>8}"
            f" {f'{vs_raw:.3g}' if vs_raw else '':>7} {_seconds(record.get('first_done_s')):>7}"
            f"  {record.get('durability', '')}"
        )
    return lines


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
