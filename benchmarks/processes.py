"""Worker processes of any system under test: logged, stopped by a signal, required to exit 0.

PrismQ's workers, PgQueuer's and Huey's consumers all run as their own processes, as in
production. A run fails when one of them dies early, does not stop on its system's graceful
signal, or stops with a status other than 0; the end of its log is then part of the error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from benchmarks.errors import BenchmarkError

STOP_TIMEOUT_SECONDS = 60.0
_LOG_TAIL_LINES = 15


class LoggedProcess:
    """One worker process; its stdout and stderr go to ``<log_dir>/<name>.log``."""

    #: What the process is called in errors ("worker", "consumer").
    kind = "worker"

    def __init__(
        self,
        command: Sequence[str],
        *,
        name: str,
        log_dir: Path,
        cwd: Path,
        env: Mapping[str, str],
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._stop_signal = stop_signal
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self._process.pid

    def ensure_running(self) -> None:
        """Raise if the process has exited (it should run until it is stopped)."""
        status = self._process.poll()
        if status is not None:
            raise BenchmarkError(
                f"{self.kind} {self.name} exited early with status {status}{self.log_tail()}"
            )

    def send_stop(self) -> None:
        """The system's graceful stop signal: finish what runs, then exit."""
        self.ensure_running()
        self._process.send_signal(self._stop_signal)

    def wait_stopped(self) -> None:
        """Wait for the exit that :meth:`send_stop` asked for; require status 0."""
        signal_name = self._stop_signal.name
        try:
            status = self._process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchmarkError(
                f"{self.kind} {self.name} did not exit within {STOP_TIMEOUT_SECONDS:.0f} s"
                f" of {signal_name}{self.log_tail()}"
            ) from None
        if status != 0:
            raise BenchmarkError(
                f"{self.kind} {self.name} exited with status {status} after {signal_name}"
                f" (expected 0){self.log_tail()}"
            )

    def kill(self) -> None:
        """End the process at once if it still runs (clean-up after a failed run)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far, all its threads included.

        The process line of ``/proc/<pid>/stat`` sums every thread of the process, the
        exited ones too, which is what an idle worker costs the machine.
        """
        self.ensure_running()
        stat = Path(f"/proc/{self.pid}/stat").read_text(encoding="ascii")
        # The command name (field 2) may contain spaces: split after its closing paren.
        fields = stat[stat.rindex(")") + 2 :].split()
        user_ticks, system_ticks = int(fields[11]), int(fields[12])
        return (user_ticks + system_ticks) / os.sysconf("SC_CLK_TCK")

    def log_tail(self) -> str:
        """The last lines of the log, as the end of an error message."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        if not lines:
            return " (its log is empty)"
        return "; last lines of its log:\n" + "\n".join(lines[-_LOG_TAIL_LINES:])


Process = TypeVar("Process", bound=LoggedProcess)


@contextlib.contextmanager
def started(start: Callable[[int], Process], count: int) -> Iterator[list[Process]]:
    """``count`` processes, ``start(1)`` to ``start(count)``; none outlives the block."""
    processes: list[Process] = []
    try:
        for number in range(1, count + 1):
            processes.append(start(number))
        yield processes
    finally:
        for process in processes:
            process.kill()


def stop_all(processes: Sequence[LoggedProcess]) -> None:
    """Signal every process to stop at once, then require each to exit 0."""
    for process in processes:
        process.send_stop()
    for process in processes:
        process.wait_stopped()
