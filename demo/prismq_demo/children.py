"""The demo's two long-running child processes: the API and the worker.

Each runs in a session of its own, so the Ctrl-C a terminal sends to its foreground
process group reaches only the runner, which then stops the children in order. Each
writes its output to a log file of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from prismq_demo.commands import child_environment
from prismq_demo.errors import DemoError

#: Lines of a child's log shown when it stopped the demo.
LOG_TAIL_LINES = 8


@dataclasses.dataclass
class Child:
    """A started child process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def exit_status(self) -> int | None:
        """Its exit status once it has exited, else None."""
        return self.process.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of its log, indented, for an error message."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = text.strip().splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in tail)


def start_child(name: str, argv: Sequence[str], log_path: Path) -> Child:
    """Start ``argv`` in a new session with stdout and stderr going to ``log_path``."""
    log_file = log_path.open("wb")
    try:
        process = subprocess.Popen(  # noqa: S603 - our own installed commands, as a list
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_environment(),
            start_new_session=True,
        )
    except OSError as error:
        log_file.close()
        raise DemoError(f"Could not start the {name} ({argv[0]}): {error}") from None
    return Child(name=name, process=process, log_path=log_path, log_file=log_file)


def describe_exit(status: int | None) -> str:
    """``exited with status N``, or ``was killed by SIGNAL`` (Popen's negative statuses)."""
    if status is not None and status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def exited_early(child: Child) -> DemoError:
    """The error for a child that exited while the demo still needed it."""
    tail = child.log_tail()
    return DemoError(
        f"The {child.name} {describe_exit(child.exit_status)} while the demo still"
        f" needed it. Its output is in {child.log_path}"
        + (f"; the last lines:\n{tail}" if tail else " (empty)."),
        log=child.log_path,
    )


def check_running(children: Sequence[Child]) -> None:
    """Raise :class:`DemoError` naming the first child that is no longer running."""
    for child in children:
        if child.exit_status is not None:
            raise exited_early(child)


def stop_child(child: Child, timeout: float) -> int:
    """SIGTERM the child (its graceful stop), wait up to ``timeout`` s; its exit status.

    A child still running after ``timeout`` is killed (SIGKILL, with whatever it started).
    """
    if child.exit_status is None:
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_child(child)
    child.log_file.close()
    return child.process.wait()


def kill_child(child: Child) -> None:
    """SIGKILL the child's whole process group at once (it leads its own session)."""
    if child.exit_status is None:
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()
