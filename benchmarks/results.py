"""Figures: one run's measurement, and the JSON line that sums up several runs (medians)."""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

SYSTEM_PRISMQ = "prismq"
SYSTEM_RAW = "raw-driver"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Measurement:
    """What one run of a workload measured."""

    jobs: int
    seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    #: Further figures of this workload (e.g. ``cpu_percent``), medians taken like the rest.
    extra: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def jobs_per_s(self) -> float | None:
        """Tasks per second, when the workload is about throughput."""
        if self.jobs <= 0 or self.seconds <= 0:
            return None
        return self.jobs / self.seconds

    def as_dict(self) -> dict[str, Any]:
        """This run's figures, as listed under ``"runs"``."""
        return {
            "seconds": _rounded(self.seconds),
            "jobs_per_s": _rounded(self.jobs_per_s),
            "p50_ms": _rounded(self.p50_ms),
            "p99_ms": _rounded(self.p99_ms),
            **{name: _rounded(value) for name, value in self.extra.items()},
        }


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only the JSON lines)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def timed_steps(jobs: int, steps: Iterable[Callable[[], object]]) -> Measurement:
    """Run each step in turn: ``jobs`` over the total time, and p50/p99 of one step."""
    durations = []
    started = time.perf_counter()
    for step in steps:
        before = time.perf_counter()
        step()
        durations.append(time.perf_counter() - before)
    seconds = time.perf_counter() - started
    p50, p99 = percentiles_ms(durations)
    return Measurement(jobs=jobs, seconds=seconds, p50_ms=p50, p99_ms=p99)


def fixed_schedule(count: int, interval_seconds: float) -> Iterator[float]:
    """For each of ``count`` sends, the pause to take before it (0: it is due or late).

    The n-th send is due ``n * interval_seconds`` after the first: a slow send delays the
    next one, never the ones after it. Each pause is reckoned when asked for, just before
    its send.
    """
    start = time.perf_counter()
    for number in range(count):
        yield max(start + number * interval_seconds - time.perf_counter(), 0.0)


def batch_sizes(total: int, batch_size: int) -> list[int]:
    """``total`` split into batches of ``batch_size`` (the last one may be smaller)."""
    return [min(batch_size, total - first) for first in range(0, total, batch_size)]


def percentiles_ms(samples_seconds: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) of durations in seconds, in milliseconds (linear interpolation)."""
    if not samples_seconds:
        raise ValueError("no samples")
    if len(samples_seconds) == 1:
        only = samples_seconds[0] * 1000
        return only, only
    cuts = statistics.quantiles(samples_seconds, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def summarise(
    *,
    system: str,
    backend: str,
    workload: str,
    runs: Sequence[Measurement],
    context: dict[str, Any],
) -> dict[str, Any]:
    """The JSON line of one (system, backend, workload): medians of ``runs``, each run too."""
    extra_names = sorted({name for run in runs for name in run.extra})
    return {
        "system": system,
        "backend": backend,
        "workload": workload,
        "jobs": int(statistics.median(run.jobs for run in runs)),
        "seconds": _median([run.seconds for run in runs]),
        "jobs_per_s": _median([run.jobs_per_s for run in runs]),
        "p50_ms": _median([run.p50_ms for run in runs]),
        "p99_ms": _median([run.p99_ms for run in runs]),
        **{name: _median([run.extra.get(name) for run in runs]) for name in extra_names},
        "runs": [run.as_dict() for run in runs],
        **context,
    }


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return _rounded(statistics.median(present)) if present else None


def _rounded(value: float | None) -> float | None:
    # Four significant digits are more than these measurements can tell apart.
    return None if value is None else float(f"{value:.4g}")


class ResultWriter:
    """Prints each JSON line as soon as it is known, and keeps it (in ``--output`` too)."""

    def __init__(self, stdout: TextIO, output_path: Path | None) -> None:
        self._stdout = stdout
        self._file = output_path.open("w", encoding="utf-8") if output_path else None
        self.records: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        """Emit one record."""
        self.records.append(record)
        line = json.dumps(record, sort_keys=False)
        print(line, file=self._stdout, flush=True)
        if self._file is not None:
            print(line, file=self._file, flush=True)

    def close(self) -> None:
        """Close the output file."""
        if self._file is not None:
            self._file.close()
