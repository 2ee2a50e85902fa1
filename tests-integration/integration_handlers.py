"""The task handlers the workers of the integration tests run.

The workers run from the worker's own environment and import this module by name (the
tests put this directory on their ``PYTHONPATH``), so it needs only ``prismq.worker``.

Each handler first appends ``task_id attempt pid`` to the file named by
``$PRISMQ_IT_EXECUTIONS_FILE``: one write on an ``O_APPEND`` descriptor, then fsync, so the
line survives a SIGKILL a moment later. The tests read it back with :func:`read_executions`
to count how often, in which attempt and in which process each task ran.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Protocol

from prismq.worker import PermanentTaskError, TaskHandlerRegistry

EXECUTIONS_FILE_ENV = "PRISMQ_IT_EXECUTIONS_FILE"
HANDLERS = "integration_handlers:registry"
#: How often a waiting handler looks at its gate file and at ``ctx.cancelled``.
CHECK_EVERY_SECONDS = 0.02
#: The message a cancelled ``hold`` task logs, read back through ``GET .../logs``.
CANCEL_SEEN_MESSAGE = "cancel request seen; stopping early"

registry = TaskHandlerRegistry()


class Context(Protocol):
    """What these handlers use of the worker's task context."""

    @property
    def task_id(self) -> int: ...

    @property
    def attempt(self) -> int: ...

    @property
    def cancelled(self) -> bool: ...

    def log(
        self, message: str, level: str = "info", *, details: dict[str, Any] | None = None
    ) -> None: ...


@dataclasses.dataclass(frozen=True)
class Execution:
    """One start of a handler."""

    task_id: int
    attempt: int
    pid: int


def read_executions(path: Path) -> list[Execution]:
    """Every handler start recorded in ``path``, in order (none before the first)."""
    if not path.exists():
        return []
    executions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            task_id, attempt, pid = (int(field) for field in line.split())
            executions.append(Execution(task_id=task_id, attempt=attempt, pid=pid))
    return executions


def _record_start(ctx: Context) -> None:
    path = os.environ[EXECUTIONS_FILE_ENV]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.task_id} {ctx.attempt} {os.getpid()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _ran_by(ctx: Context) -> dict[str, Any]:
    return {"pid": os.getpid(), "attempt": ctx.attempt}


@registry.handler("echo")
def echo(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Return ``payload["value"]``, after ``payload["sleep_seconds"]`` if given."""
    _record_start(ctx)
    time.sleep(float(payload.get("sleep_seconds", 0.0)))
    return {"echo": payload.get("value"), **_ran_by(ctx)}


@registry.handler("flaky")
def flaky(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Fail (retryably) in the first ``payload["fail_times"]`` attempts, then succeed."""
    _record_start(ctx)
    if ctx.attempt <= int(payload["fail_times"]):
        raise RuntimeError(f"flaky: attempt {ctx.attempt} fails on purpose")
    return _ran_by(ctx)


@registry.handler("broken")
def broken(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Fail every attempt with a retryable error saying ``payload["message"]``."""
    _record_start(ctx)
    raise RuntimeError(str(payload["message"]))


@registry.handler("needs_file")
def needs_file(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Fail for good unless the file ``payload["path"]`` exists (a retry may find it)."""
    _record_start(ctx)
    if not Path(payload["path"]).exists():
        raise PermanentTaskError(f"{payload['path']} does not exist")
    return _ran_by(ctx)


@registry.handler("hold")
def hold(payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Run until the file ``payload["gate"]`` exists or the task is cancelled.

    The test decides when the task finishes by creating the gate, instead of racing a
    sleep. ``payload["timeout_seconds"]`` bounds the wait should a test never open it.
    """
    _record_start(ctx)
    gate = Path(payload["gate"])
    deadline = time.monotonic() + float(payload.get("timeout_seconds", 120.0))
    while not gate.exists() and not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(CHECK_EVERY_SECONDS)
    if ctx.cancelled:
        ctx.log(CANCEL_SEEN_MESSAGE, details={"attempt": ctx.attempt})
    return {"gate_opened": gate.exists(), "cancel_seen": ctx.cancelled, **_ran_by(ctx)}
