"""Task handlers for the real-process tests: ``prismq-worker --handlers process_handlers:registry``.

The worker processes import this module by name (the tests directory is on their
``PYTHONPATH``). Every handler first appends ``task_id attempt pid`` to the executions file
(``payload["executions_file"]``, else ``$PRISMQ_TEST_EXECUTIONS_FILE``): one ``write`` on
an ``O_APPEND`` descriptor, then ``fsync``, so the line is in the file before the handler
does anything else and a SIGKILL a moment later cannot take it back.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Protocol

from prismq.worker import PermanentTaskError, TaskHandlerRegistry

EXECUTIONS_FILE_ENV = "PRISMQ_TEST_EXECUTIONS_FILE"
NOTES_FILE_ENV = "PRISMQ_TEST_NOTES_FILE"
#: How often the long-running handlers wake up to look at ``ctx.cancelled``.
STEP_SECONDS = 0.02

registry = TaskHandlerRegistry()


class HandlerContext(Protocol):
    """The part of the worker's handler context these handlers use."""

    @property
    def task_id(self) -> int: ...

    @property
    def attempt(self) -> int: ...

    @property
    def cancelled(self) -> bool: ...


def append_line(path: Path, line: str) -> None:
    """Append one line durably: a single write on an O_APPEND descriptor, then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _file(payload: dict[str, Any], key: str, env: str) -> Path:
    name = payload.get(key) or os.environ.get(env)
    if not name:
        raise PermanentTaskError(f"no {key} in the payload and ${env} is not set")
    return Path(name)


def record_execution(payload: dict[str, Any], ctx: HandlerContext) -> None:
    """Note that this handler started on this attempt in this process."""
    path = _file(payload, "executions_file", EXECUTIONS_FILE_ENV)
    append_line(path, f"{ctx.task_id} {ctx.attempt} {os.getpid()}")


def note(payload: dict[str, Any], ctx: HandlerContext, what: str) -> None:
    """Append ``task_id pid what wall_clock`` to the notes file."""
    path = _file(payload, "notes_file", NOTES_FILE_ENV)
    append_line(path, f"{ctx.task_id} {os.getpid()} {what} {time.time():.6f}")


def identity(ctx: HandlerContext) -> dict[str, Any]:
    """The result every handler returns: which process ran which attempt."""
    return {"pid": os.getpid(), "attempt": ctx.attempt}


def sleep_unless_cancelled(seconds: float, ctx: HandlerContext) -> bool:
    """Sleep ``seconds`` in small steps; True if ``ctx.cancelled`` cut it short."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ctx.cancelled:
            return True
        time.sleep(min(STEP_SECONDS, max(deadline - time.monotonic(), 0.0)))
    return False


@registry.handler("record")
def record(payload: dict[str, Any], ctx: HandlerContext) -> dict[str, Any]:
    """Record the execution, sleep ``payload["sleep_s"]`` and say who ran it."""
    record_execution(payload, ctx)
    time.sleep(float(payload.get("sleep_s", 0.0)))
    return identity(ctx)


@registry.handler("sleepy")
def sleepy(payload: dict[str, Any], ctx: HandlerContext) -> dict[str, Any]:
    """Sleep up to ``payload["seconds"]``; stop early, noting when, once cancelled."""
    record_execution(payload, ctx)
    cancelled = sleep_unless_cancelled(float(payload.get("seconds", 60.0)), ctx)
    if cancelled:
        note(payload, ctx, "cancel_seen")
    return {**identity(ctx), "cancel_seen": cancelled}


@registry.handler("long")
def long(payload: dict[str, Any], ctx: HandlerContext) -> dict[str, Any]:
    """Run ``payload["seconds"]`` of wall-clock time, longer than the worker's lease.

    The deadline is on the monotonic clock, which keeps running while the process is
    stopped: a worker resumed after SIGSTOP finishes at once, with a stale lease.
    """
    record_execution(payload, ctx)
    deadline = time.monotonic() + float(payload.get("seconds", 6.0))
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(STEP_SECONDS * 5, left))
    return identity(ctx)


@registry.handler("gated")
def gated(payload: dict[str, Any], ctx: HandlerContext) -> dict[str, Any]:
    """Run until the file ``payload["gate"]`` exists (or ``payload["timeout_s"]`` passes).

    A test opens the gate when it wants the handler to finish, so "still running" and
    "done" are its decisions, not a race against a sleep.
    """
    record_execution(payload, ctx)
    gate = Path(payload["gate"])
    deadline = time.monotonic() + float(payload.get("timeout_s", 120.0))
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(STEP_SECONDS)
    return {**identity(ctx), "gate_opened": gate.exists()}


@registry.handler("flaky")
def flaky(payload: dict[str, Any], ctx: HandlerContext) -> dict[str, Any]:
    """Fail the first ``payload["fail_times"]`` attempts with a retryable error."""
    record_execution(payload, ctx)
    fail_times = int(payload.get("fail_times", 1))
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt} of the first {fail_times}")
    return identity(ctx)


@registry.handler("permanent")
def permanent(payload: dict[str, Any], ctx: HandlerContext) -> dict[str, Any]:
    """Fail without retry."""
    record_execution(payload, ctx)
    raise PermanentTaskError(str(payload.get("reason", "this task can never succeed")))
