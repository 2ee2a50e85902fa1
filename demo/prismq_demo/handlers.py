"""The demo's task handlers, served by ``prismq-worker --handlers prismq_demo.handlers:registry``.

Each ordinary handler pretends to work for ``payload["duration_s"]`` seconds (default 1),
in ``payload["steps"]`` steps (default 4), reporting its progress after each step. It
sleeps with ``ctx.wait_cancelled``, so a task cancelled through the API stops at the next
step. The three special handlers show a retry, a delayed run and a dead letter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prismq.worker import PermanentTaskError, TaskContext, TaskHandlerRegistry

registry = TaskHandlerRegistry()

#: Longest pretend work a payload may ask for, so a typo cannot hold a slot for hours.
MAX_DURATION_SECONDS = 60.0
MAX_STEPS = 100


def _number(payload: dict[str, Any], key: str, default: float, upper: float) -> float:
    value = payload.get(key, default)
    # bool is an int in Python, but {"steps": true} is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= upper:
        # Retrying would fail the same way: a permanent failure goes straight to `failed`.
        raise PermanentTaskError(f"payload.{key} must be a number from 0 to {upper:g}")
    return float(value)


def simulate_work(payload: dict[str, Any], ctx: TaskContext) -> bool:
    """Pretend to work, reporting progress; False if the task was cancelled meanwhile."""
    duration = _number(payload, "duration_s", 1.0, MAX_DURATION_SECONDS)
    steps = max(int(_number(payload, "steps", 4, MAX_STEPS)), 1)
    for step in range(1, steps + 1):
        if ctx.wait_cancelled(duration / steps):
            return False
        ctx.progress({"step": step, "of": steps, "percent": round(100 * step / steps)})
    return True


def _stopped_early() -> dict[str, Any]:
    # Returning after a cancel request ends the task `cancelled`; the result is informative.
    return {"stopped_early": True}


@registry.handler("resize_image", description="make a thumbnail (pretend)")
def resize_image(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Pretend to resize ``payload["image"]`` to ``payload["width"]`` pixels."""
    if not simulate_work(payload, ctx):
        return _stopped_early()
    image = str(payload.get("image", "image.jpg"))
    return {"thumbnail": f"{image.rsplit('.', 1)[0]}-{payload.get('width', 320)}w.jpg"}


@registry.handler("send_email", description="send an e-mail (pretend)")
def send_email(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Pretend to send ``payload["template"]`` to ``payload["to"]``."""
    if not simulate_work(payload, ctx):
        return _stopped_early()
    return {"sent_to": payload.get("to", "nobody@example.com"), "template": payload.get("template")}


@registry.handler("build_report", description="build a report (pretend), logging its steps")
def build_report(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Pretend to build ``payload["report"]``, writing to the task's log (see the logs API)."""
    report = str(payload.get("report", "summary"))
    ctx.log(f"building the {report} report", details={"attempt": ctx.attempt})
    if not simulate_work(payload, ctx):
        return _stopped_early()
    ctx.log(f"{report} report ready")
    return {"report": report, "pages": 1 + len(report) % 5}


@registry.handler("transcode_video", description="transcode a video (pretend, slower)")
def transcode_video(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Pretend to transcode ``payload["video"]`` to ``payload["format"]``."""
    if not simulate_work(payload, ctx):
        return _stopped_early()
    video = str(payload.get("video", "video.mov"))
    return {"output": f"{video.rsplit('.', 1)[0]}.{payload.get('format', 'mp4')}"}


@registry.handler("flaky_upload", description="fails on its first attempt, then succeeds")
def flaky_upload(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Fail the first attempt as a network error would; the worker retries it after a backoff."""
    if not simulate_work(payload, ctx):
        return _stopped_early()
    if ctx.attempt == 1:
        # The task's error_message is cleared when a retry succeeds; its log keeps the story.
        ctx.log("attempt 1: the connection dropped; raising, so that the worker retries", "warning")
        # Any exception but PermanentTaskError is retried, until max_attempts is reached.
        raise ConnectionError("connection reset by the storage server (the demo's first attempt)")
    ctx.log(f"attempt {ctx.attempt}: uploaded")
    return {"uploaded": payload.get("file", "file.bin"), "attempt": ctx.attempt}


@registry.handler("nightly_digest", description="a task enqueued to run a few seconds later")
def nightly_digest(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Report when it ran, to compare with the ``run_after_utc`` it was enqueued with."""
    if not simulate_work(payload, ctx):
        return _stopped_early()
    return {"ran_at_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}


@registry.handler("corrupt_import", description="always fails: ends dead-lettered (`failed`)")
def corrupt_import(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Fail every attempt; once its ``max_attempts`` are used up the task stays ``failed``."""
    if not simulate_work(payload, ctx):
        return _stopped_early()
    source = payload.get("file", "import.csv")
    raise ValueError(f"{source}: line 3 is not a valid record (attempt {ctx.attempt})")
