"""The progress of the workload: one line redrawn in place on a terminal, plain lines
(one per change, at most one a second) when the output is a file or a pipe."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, TextIO

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
BAR_WIDTH = 30
#: Shortest time between two plain lines, so a log is not flooded.
PLAIN_LINE_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class ProgressCounts:
    """How many of the demo's tasks are in each state, as the API reported them."""

    total: int
    queued: int
    leased: int
    completed: int
    failed: int
    cancelled: int
    retries: int

    @property
    def finished(self) -> int:
        """Tasks in a final status."""
        return self.completed + self.failed + self.cancelled

    @property
    def done(self) -> bool:
        """True once every task is in a final status."""
        return self.finished == self.total

    @classmethod
    def of(cls, tasks: Iterable[dict[str, Any]], total: int) -> ProgressCounts:
        """Count ``tasks`` (the API's task objects) out of ``total`` enqueued."""
        statuses: Counter[str] = Counter()
        retries = 0
        for task in tasks:
            statuses[task["status"]] += 1
            # `attempts` counts the runs started; the one running now is not a retry yet.
            retries += max(task["attempts"] - 1, 0)
        return cls(
            total=total,
            queued=statuses["queued"],
            leased=statuses["leased"],
            completed=statuses["completed"],
            failed=statuses["failed"],
            cancelled=statuses["cancelled"],
            retries=retries,
        )


def describe(counts: ProgressCounts, elapsed: float) -> str:
    """The counts in words, e.g. ``30/39 finished: 29 completed, 1 failed | 4 running``."""
    finished = f"{counts.completed} completed, {counts.failed} failed"
    if counts.cancelled:
        finished += f", {counts.cancelled} cancelled"
    return (
        f"{counts.finished}/{counts.total} finished ({finished}) | {counts.leased} running,"
        f" {counts.queued} waiting | {counts.retries} retries | {elapsed:4.1f} s"
    )


class ProgressDisplay:
    """Shows :class:`ProgressCounts` on ``stream`` as they change."""

    def __init__(self, stream: TextIO, *, interactive: bool) -> None:
        self.stream = stream
        self.interactive = interactive
        self.started = time.monotonic()
        self._last_plain: tuple[ProgressCounts | None, float] = (None, 0.0)
        self._drawn = False

    def show(self, counts: ProgressCounts) -> None:
        """Redraw the bar (terminal), or print a line if the counts changed (otherwise)."""
        elapsed = time.monotonic() - self.started
        if self.interactive:
            self._redraw(counts, elapsed)
            return
        last_counts, last_time = self._last_plain
        changed = counts != last_counts
        if changed and (counts.done or elapsed - last_time >= PLAIN_LINE_SECONDS):
            print(f"  progress: {describe(counts, elapsed)}", file=self.stream, flush=True)
            self._last_plain = (counts, elapsed)

    def finish(self) -> None:
        """End the redrawn line, so what follows starts on a line of its own."""
        if self.interactive and self._drawn:
            print(file=self.stream, flush=True)
            self._drawn = False

    def _redraw(self, counts: ProgressCounts, elapsed: float) -> None:
        filled = BAR_WIDTH * counts.finished // max(counts.total, 1)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = f"  [{bar}] {describe(counts, elapsed)}"
        # A line longer than the terminal wraps, and "\r" would then redraw only its tail.
        columns = shutil.get_terminal_size().columns
        line = line[: max(columns - 3, 20)]  # room for the "^C" a terminal echoes
        # "\r" back to the line's start, then clear what is left of the previous line.
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self._drawn = True
