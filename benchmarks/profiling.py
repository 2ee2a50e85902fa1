"""``--profile``: the drain workload with its worker under a sampling profiler.

``py-spy`` (the default) samples every thread of the worker, where the handlers and the
batched completions run; it attaches to the running worker, which needs permission to
trace it (root, or ``kernel.yama.ptrace_scope = 0``). ``pyinstrument`` needs no such
permission but sees the main thread only (the claim loop). The figure of a profiled drain
is slower than an unprofiled one: it is reported, flagged ``"profiled"``, for context only.
"""

from __future__ import annotations

import collections
import functools
import re
import shutil
import subprocess
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from benchmarks.durability import prismq_durability
from benchmarks.errors import BenchmarkError
from benchmarks.results import SYSTEM_PRISMQ, ResultWriter, progress, summarise
from benchmarks.scratch import scratch_database
from benchmarks.settings import BenchSettings
from benchmarks.worker_workloads import drain
from benchmarks.workers import WorkerProcess

PROFILERS = ("py-spy", "pyinstrument")
SAMPLES_PER_SECOND = 250
TOP_FUNCTIONS = 40
_PY_SPY_EXIT_TIMEOUT_SECONDS = 60.0


def _py_spy() -> str:
    beside_python = Path(sys.executable).with_name("py-spy")
    found = str(beside_python) if beside_python.is_file() else shutil.which("py-spy")
    if found is None:
        raise BenchmarkError("py-spy not found: pip install py-spy, or use --profiler pyinstrument")
    return found


class _PySpy:
    """``py-spy record`` attached to each worker; it stops by itself when the worker exits."""

    def __init__(self, raw_path: Path) -> None:
        self.raw_path = raw_path
        self._recorders: list[subprocess.Popen[bytes]] = []

    def attach(self, workers: Sequence[WorkerProcess]) -> None:
        for worker in workers:
            command = [
                _py_spy(),
                "record",
                "--pid",
                str(worker.pid),
                "--threads",
                "--function",
                "--nonblocking",
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--format",
                "raw",
                "--output",
                str(self.raw_path),
            ]
            self._recorders.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            )

    def finish(self) -> None:
        for recorder in self._recorders:
            try:
                _, errors = recorder.communicate(timeout=_PY_SPY_EXIT_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                recorder.kill()
                raise BenchmarkError("py-spy did not stop after the worker exited") from None
            if recorder.returncode != 0 or not self.raw_path.is_file():
                detail = errors.decode(errors="replace").strip()
                raise BenchmarkError(
                    f"py-spy could not profile the worker ({detail or recorder.returncode});"
                    " it needs permission to trace processes: try --profiler pyinstrument"
                )


def _thread_group(name: str) -> str:
    # "prismq-handler-bench-1-2-w1_7" and its siblings are one pool.
    return re.sub(r"bench-[\w-]*?w\d+", "<worker>", re.sub(r"[_-]\d+$", "", name))


def collapsed_report(raw: str, *, title: str) -> str:
    """A text summary of py-spy's collapsed stacks: time by thread, then by function."""
    by_thread: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        total += count
        by_thread[_thread_group(thread.partition(": ")[2] or thread)] += count
        if frames:
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    if total == 0:
        return f"{title}\n\nno samples were taken\n"

    def table(counter: collections.Counter[str], limit: int) -> list[str]:
        return [f"{100 * n / total:6.1f}%  {name}" for name, n in counter.most_common(limit)]

    return "\n".join(
        [
            title,
            f"{total} samples of busy threads ({SAMPLES_PER_SECOND} per second; idle waits"
            " are not sampled). Percentages are of all samples.",
            "",
            "Threads:",
            *table(by_thread, 20),
            "",
            "Functions by own time (the frame on top of the stack):",
            *table(own, TOP_FUNCTIONS),
            "",
            "Functions by time including what they call:",
            *table(inclusive, TOP_FUNCTIONS),
            "",
        ]
    )


def run_profile(
    backends: Collection[str],
    settings: BenchSettings,
    writer: ResultWriter,
    *,
    profiler: str,
    report_dir: Path,
) -> None:
    """A profiled drain on each backend; the report goes to ``profile-<backend>.txt``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    tasks = settings.sizes.drain
    base_settings = settings
    for backend in backends:
        settings = base_settings.for_backend(backend)
        report = report_dir / f"profile-{backend}.txt"
        progress(f"profile {backend}: drain of {tasks} tasks under {profiler}")
        with scratch_database(
            backend, postgres_url=settings.postgres_url, workdir=settings.workdir
        ) as url:
            run_drain = functools.partial(
                drain, url, tasks, workers=1, flags=settings.flags, log_dir=settings.log_dir
            )
            if profiler == "pyinstrument":
                program = [sys.executable, "-m", "pyinstrument", "--renderer", "text"]
                program += ["--no-color", "--outfile", str(report), "-m", "prismq.worker"]
                measurement = run_drain(program=program)
            else:
                recorder = _PySpy(settings.workdir / f"profile-{backend}.raw")
                measurement = run_drain(on_started=recorder.attach)
                recorder.finish()
                title = (
                    f"py-spy profile of one prismq-worker draining {tasks} no-op tasks"
                    f" ({backend}; flags: {' '.join(settings.flags.argv())})"
                )
                raw = recorder.raw_path.read_text(encoding="utf-8", errors="replace")
                report.write_text(collapsed_report(raw, title=title), encoding="utf-8")
            durability = prismq_durability(url)
        progress(f"wrote {report}")
        writer.write(
            summarise(
                system=SYSTEM_PRISMQ,
                backend=backend,
                workload="drain",
                runs=[measurement],
                context={
                    "profiled": profiler,
                    **settings.worker_context(1),
                    "durability": durability,
                    "quick": settings.quick,
                },
            )
        )
