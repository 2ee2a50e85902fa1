"""``python -m benchmarks``: run the benchmark workloads and print one JSON line per figure.

The standard workloads of the benchmark page run by default (``--workload`` picks some);
``--scale`` runs the scale study instead and ``--profile`` a profiled drain. Exit status:
0 when every run was correct, 1 when one was not (a task not completed, a worker that did
not exit 0, a database that cannot be reached), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.comparison import summary_table, target_lines
from benchmarks.errors import BenchmarkError
from benchmarks.profiling import PROFILERS, run_profile
from benchmarks.results import ResultWriter, progress
from benchmarks.scale import run_scale
from benchmarks.scratch import BACKENDS, DEFAULT_POSTGRES_URL
from benchmarks.settings import BenchSettings
from benchmarks.sizes import FULL, FULL_SCALE, QUICK, QUICK_SCALE
from benchmarks.suite import WORKLOADS, run_suite
from benchmarks.workers import ROOT, WorkerFlags
from prismq.queue import PrismQError

PROG = "python -m benchmarks"
#: Handler slots per worker process: enough that a claim takes a batch, not one task.
DEFAULT_CONCURRENCY = 32
RESULTS_DIR = ROOT / "benchmarks" / "results"
SCALE_PLOT = ROOT / "docs" / "performance-scale.png"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _concurrency(text: str) -> tuple[str | None, int]:
    """``N`` (every backend) or ``BACKEND=N`` (that backend's workers)."""
    backend, sep, number = text.rpartition("=")
    if sep and backend not in BACKENDS:
        raise argparse.ArgumentTypeError(
            f"unknown backend {backend!r} in {text!r}; expected one of {', '.join(BACKENDS)}"
        )
    return (backend if sep else None), _positive_int(number)


def build_parser() -> argparse.ArgumentParser:
    """The command line of the harness."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Benchmark PrismQ on SQLite and PostgreSQL: the workloads of the project's"
        " benchmark page, with this machine's raw-driver figures and the peers measured"
        " beside them. JSON lines on stdout.",
    )
    add = parser.add_argument
    add("--backend", choices=[*BACKENDS, "all"], default="all", help="default: all")
    add(
        "--workload",
        action="append",
        choices=WORKLOADS,
        metavar="NAME",
        help=f"one of {', '.join(WORKLOADS)} (repeatable; default: all)",
    )
    add("--runs", type=_positive_int, default=3, help="runs per figure, medians reported (3)")
    add("--quick", action="store_true", help="each workload once with a few tasks (CI smoke)")
    add(
        "--postgres-url",
        default=os.environ.get("PRISMQ_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to create scratch databases on (default: $PRISMQ_BENCH_POSTGRES_URL or"
        f" {DEFAULT_POSTGRES_URL})",
    )
    add(
        "--sqlite-synchronous",
        type=str.upper,
        choices=["NORMAL", "FULL"],
        help="SQLite durability of the enqueue workloads (default: enqueue_single at both)",
    )
    add(
        "--concurrency",
        type=_concurrency,
        action="append",
        metavar="[BACKEND=]N",
        help="prismq-worker --concurrency, on every backend or on one (repeatable;"
        f" default: {DEFAULT_CONCURRENCY})",
    )
    add("--output", type=Path, metavar="FILE.jsonl", help="also write the JSON lines here")
    add("--no-raw", action="store_true", help="skip the raw-driver loops")
    add(
        "--no-peers",
        action="store_true",
        help="skip the peers (PgQueuer, Huey) measured beside PrismQ in the same run",
    )
    add("--workdir", type=Path, help="directory for SQLite scratch files (default: a temp dir)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--scale",
        action="store_true",
        help="instead of the workloads: figures against queue depth, worker processes and"
        f" completed rows; writes {RESULTS_DIR.relative_to(ROOT)}/scale.md and"
        f" {SCALE_PLOT.relative_to(ROOT)}",
    )
    mode.add_argument(
        "--profile",
        action="store_true",
        help="instead of the workloads: a drain with the worker under a profiler; writes"
        f" {RESULTS_DIR.relative_to(ROOT)}/profile-<backend>.txt",
    )
    add("--profiler", choices=PROFILERS, default=PROFILERS[0], help="with --profile (py-spy)")
    return parser


def _settings(args: argparse.Namespace, workdir: Path) -> BenchSettings:
    # The last value given for a backend (or for all: None) wins.
    chosen: dict[str | None, int] = dict(args.concurrency or [])
    return BenchSettings(
        sizes=QUICK if args.quick else FULL,
        scale_sizes=QUICK_SCALE if args.quick else FULL_SCALE,
        runs=1 if args.quick else args.runs,
        quick=args.quick,
        postgres_url=args.postgres_url,
        workdir=workdir,
        flags=WorkerFlags(concurrency=chosen.pop(None, DEFAULT_CONCURRENCY)),
        sqlite_synchronous=args.sqlite_synchronous,
        concurrency_by_backend={name: n for name, n in chosen.items() if name is not None},
    )


def _run(args: argparse.Namespace, workdir: Path, writer: ResultWriter) -> None:
    settings = _settings(args, workdir)
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    # A quick run's reports only show that they can be made: they stay in the temporary
    # work directory rather than replace the real ones.
    report_dir = workdir / "results" if settings.quick else RESULTS_DIR
    if args.scale:
        plot = report_dir / SCALE_PLOT.name if settings.quick else SCALE_PLOT
        run_scale(backends, settings, writer, report_dir=report_dir, plot_path=plot)
        return
    if args.profile:
        run_profile(backends, settings, writer, profiler=args.profiler, report_dir=report_dir)
        return
    workloads = tuple(args.workload or WORKLOADS)
    run_suite(backends, workloads, settings, writer, raw=not args.no_raw, peers=not args.no_peers)
    targets = ["(--quick: the figures only show the harness works; no targets compared)"]
    if not settings.quick:
        targets = target_lines(writer.records)
    for line in ["", *summary_table(writer.records), "", *targets]:
        print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.workdir is not None and not args.workdir.is_dir():
        print(f"{PROG}: error: --workdir {args.workdir} is not a directory", file=sys.stderr)
        return 2
    try:
        writer = ResultWriter(sys.stdout, args.output)
    except OSError as error:
        print(f"{PROG}: error: cannot write --output {args.output}: {error}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="prismq-bench-", dir=args.workdir) as workdir:
            _run(args, Path(workdir), writer)
    except (BenchmarkError, PrismQError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    finally:
        writer.close()
    progress(f"done: {len(writer.records)} figure(s)")
    return 0
