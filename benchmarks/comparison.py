"""PrismQ's figures read as ratios: against this run's raw-driver loops, the peers, the targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.peers import LATENCY_TARGETS_MS, THROUGHPUT_TARGETS, peer_named, peers_on
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
    """``record`` plus ``vs_raw`` (this run's raw loop) and ``vs_peers`` (the page's peers)."""
    if record["system"] != SYSTEM_PRISMQ:
        return record
    workload, backend = record["workload"], record["backend"]
    added: dict[str, Any] = {}
    raw_workload = RAW_COUNTERPART.get(workload)
    raw = next(
        (
            other
            for other in earlier
            if other["system"] == SYSTEM_RAW
            and other["backend"] == backend
            and other["workload"] == raw_workload
            and _same_durability(record, other)
        ),
        None,
    )
    if raw is not None and record["jobs_per_s"] and raw["jobs_per_s"]:
        added["vs_raw"] = {
            "raw_workload": raw_workload,
            "raw_jobs_per_s": raw["jobs_per_s"],
            "ratio": _ratio(record["jobs_per_s"], raw["jobs_per_s"]),
        }
    peers: dict[str, Any] = {}
    for peer in peers_on(backend):
        if workload == "latency" and record["p50_ms"] is not None:
            peers[peer.name] = {
                "p50_ratio": _ratio(record["p50_ms"], peer.latency_p50_ms),
                "p99_ratio": _ratio(record["p99_ms"], peer.latency_p99_ms),
            }
        elif workload in peer.jobs_per_s and record["jobs_per_s"]:
            peers[peer.name] = _ratio(record["jobs_per_s"], peer.jobs_per_s[workload])
    if peers:
        added["vs_peers"] = peers
    return {**record, **added}


def _find(
    records: Sequence[dict[str, Any]], backend: str, workload: str, synchronous: str | None
) -> dict[str, Any] | None:
    for record in records:
        if (
            record["system"] == SYSTEM_PRISMQ
            and record["backend"] == backend
            and record["workload"] == workload
            and (synchronous is None or record.get("sqlite_synchronous") == synchronous)
        ):
            return record
    return None


def target_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """One line per target of the benchmark page that this run has a figure for."""
    lines = []
    for target in THROUGHPUT_TARGETS:
        record = _find(records, target.backend, target.workload, target.sqlite_synchronous)
        if record is None or not record["jobs_per_s"]:
            continue
        peer = peer_named(target.peer)
        needed = target.factor * peer.jobs_per_s[target.workload]
        got = record["jobs_per_s"]
        durability = f" at {target.sqlite_synchronous}" if target.sqlite_synchronous else ""
        lines.append(
            f"{'met ' if got >= needed else 'MISS'}  {target.backend} {target.workload}{durability}"
            f" >= {target.factor:g}x {peer.name} ({needed:,.0f}/s): {got:,.0f}/s"
            f" ({got / peer.jobs_per_s[target.workload]:.2f}x)"
        )
    for backend, (p50_limit, p99_limit) in LATENCY_TARGETS_MS.items():
        record = _find(records, backend, "latency", None)
        if record is None or record["p50_ms"] is None:
            continue
        met = record["p50_ms"] <= p50_limit and record["p99_ms"] <= p99_limit
        lines.append(
            f"{'met ' if met else 'MISS'}  {backend} latency p50 <= {p50_limit} ms, p99 <= "
            f"{p99_limit} ms: {record['p50_ms']:.2f} / {record['p99_ms']:.2f} ms"
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
