"""The scale study's results as a Markdown table and a figure (matplotlib, Agg backend)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BACKEND_STYLE = {"postgresql": ("PostgreSQL", "tab:blue"), "sqlite": ("SQLite", "tab:orange")}


def _points(records: Sequence[dict[str, Any]], workload: str, backend: str) -> list[dict[str, Any]]:
    return [r for r in records if r["workload"] == workload and r["backend"] == backend]


def _backends(records: Sequence[dict[str, Any]]) -> list[str]:
    return [name for name in BACKEND_STYLE if any(r["backend"] == name for r in records)]


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def scale_markdown(records: Sequence[dict[str, Any]]) -> str:
    """The tables of ``benchmarks/results/scale.md``."""
    runs = max((len(r["runs"]) for r in records), default=0)
    lines = [
        "# PrismQ at scale",
        "",
        f"Measured by `python -m benchmarks --scale` on {dt.date.today().isoformat()}: medians"
        f" of {runs} run(s) per point, each on a fresh database. Claim latency is one"
        " `claim_tasks(n=1)` plus its `complete`, one after the other from one process. At"
        " each queue depth, one worker's drain rate is counted from its first completed task"
        " (start-up excluded); the drains against worker processes are the standard drain"
        " workload (start-up included).",
        "",
    ]
    durability = sorted({f"{r['backend']}: {r.get('durability', '?')}" for r in records})
    lines += [f"Durability — {'; '.join(durability)}.", ""]
    lines += [
        "## Queue depth",
        "",
        "| backend | queued tasks | drain, 1 worker (tasks/s) | claim p50 (ms) | claim p99 (ms) |"
        " filled by |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for backend in _backends(records):
        for r in _points(records, "scale_depth", backend):
            lines.append(
                f"| {BACKEND_STYLE[backend][0]} | {r['queued']:,} | {_number(r['jobs_per_s'])}"
                f" ({r['jobs']:,} tasks) | {_number(r['p50_ms'], 2)} | {_number(r['p99_ms'], 2)}"
                f" | {r['fill']} |"
            )
    lines += [
        "",
        "## Worker processes",
        "",
        "| backend | worker processes | drain (tasks/s) | tasks | flags |",
        "|---|---:|---:|---:|---|",
    ]
    for backend in _backends(records):
        for r in _points(records, "scale_workers", backend):
            lines.append(
                f"| {BACKEND_STYLE[backend][0]} | {r['worker_processes']} |"
                f" {_number(r['jobs_per_s'])} | {r['jobs']:,} | `{' '.join(r['worker_flags'])}` |"
            )
    lines += [
        "",
        "## Completed rows kept in the table",
        "",
        "| backend | completed rows | queued tasks | claim p50 (ms) | claim p99 (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for backend in _backends(records):
        for r in _points(records, "scale_completed_rows", backend):
            lines.append(
                f"| {BACKEND_STYLE[backend][0]} | {r['completed_rows']:,} | {r['queued']:,} |"
                f" {_number(r['p50_ms'], 2)} | {_number(r['p99_ms'], 2)} |"
            )
    return "\n".join(lines) + "\n"


def _row_counts(records: Sequence[dict[str, Any]], backends: Sequence[str]) -> list[str]:
    """The completed-row counts of each bar group, e.g. ``["0", "1,000,000 / 100,000"]``."""
    per_backend = [
        [r["completed_rows"] for r in _points(records, "scale_completed_rows", backend)]
        for backend in backends
    ]
    groups = max((len(counts) for counts in per_backend), default=0)
    return [
        " / ".join(dict.fromkeys(f"{counts[i]:,}" for counts in per_backend if i < len(counts)))
        for i in range(groups)
    ]


def scale_figure(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Three panels: against queue depth, worker processes and completed rows kept."""
    import matplotlib  # noqa: PLC0415 - only the scale study needs matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.lines import Line2D  # noqa: PLC0415

    figure, (depth_axis, workers_axis, rows_axis) = plt.subplots(1, 3, figsize=(15, 4.5))
    claim_axis = depth_axis.twinx()
    backends = _backends(records)
    bar_width = 0.8 / max(len(backends), 1)
    for index, backend in enumerate(backends):
        label, colour = BACKEND_STYLE[backend]
        depth = _points(records, "scale_depth", backend)
        queued = [r["queued"] for r in depth]
        depth_axis.plot(queued, [r["jobs_per_s"] for r in depth], "o-", color=colour)
        claim_axis.plot(queued, [r["p50_ms"] for r in depth], "s--", color=colour)
        workers = _points(records, "scale_workers", backend)
        workers_axis.plot(
            [r["worker_processes"] for r in workers],
            [r["jobs_per_s"] for r in workers],
            "o-",
            color=colour,
            label=label,
        )
        rows = _points(records, "scale_completed_rows", backend)
        positions = [number + index * bar_width for number in range(len(rows))]
        rows_axis.bar(positions, [r["p50_ms"] for r in rows], bar_width, color=colour, label=label)
    depth_axis.set(xscale="log", xlabel="queued tasks", ylabel="drain, 1 worker (tasks/s), solid")
    depth_axis.set_title("Queue depth")
    claim_axis.set_ylabel("claim + complete p50 (ms), dashed")
    depth_axis.legend(
        handles=[
            Line2D([], [], color=BACKEND_STYLE[backend][1], label=BACKEND_STYLE[backend][0])
            for backend in backends
        ],
        fontsize="small",
    )
    counts = sorted({r["worker_processes"] for r in records if r["workload"] == "scale_workers"})
    workers_axis.set_xticks(counts)
    workers_axis.set(xlabel="worker processes", ylabel="drain (tasks/s)")
    workers_axis.set_title("Worker processes")
    workers_axis.legend(fontsize="small")
    row_counts = _row_counts(records, backends)
    rows_axis.set_xticks(
        [number + bar_width * (len(backends) - 1) / 2 for number in range(len(row_counts))],
        [f"{label} completed rows" for label in row_counts],
    )
    rows_axis.set(ylabel="claim + complete p50 (ms)")
    rows_axis.set_title("Completed rows kept in the table")
    rows_axis.legend(fontsize="small")
    for axis in (depth_axis, claim_axis, workers_axis, rows_axis):
        axis.set_ylim(bottom=0)
    for axis in (depth_axis, workers_axis, rows_axis):
        axis.grid(alpha=0.3)
    figure.suptitle("PrismQ at scale (python -m benchmarks --scale)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_scale_report(
    records: Sequence[dict[str, Any]], table_path: Path, plot_path: Path
) -> None:
    """Write the Markdown table and the figure."""
    table_path.write_text(scale_markdown(records), encoding="utf-8")
    scale_figure(records, plot_path)
