"""The sample workload: ordinary tasks of four types, plus three tasks that show a retry, a
delayed run and a dead letter. Only the request bodies are built here; the runner sends them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

#: Seconds of pretend work per task type: (shortest, longest).
DURATION_RANGES: dict[str, tuple[float, float]] = {
    "resize_image": (0.2, 1.0),
    "send_email": (0.1, 0.5),
    "build_report": (0.4, 1.2),
    "transcode_video": (0.8, 2.0),
}
ORDINARY_TYPES = tuple(DURATION_RANGES)

RETRIED_TYPE = "flaky_upload"
DELAYED_TYPE = "nightly_digest"
DEAD_LETTER_TYPE = "corrupt_import"
#: How far in the future the delayed task is scheduled.
DELAY_SECONDS = 6.0
#: The failing task's attempts: with the worker's default backoff (1 s, then 2 s) it is
#: dead-lettered about three seconds after its first failure.
DEAD_LETTER_MAX_ATTEMPTS = 3

DEFAULT_ORDINARY_TASKS = 36
MAX_ORDINARY_TASKS = 1000  # the API's largest batch


@dataclasses.dataclass(frozen=True)
class SpecialTask:
    """One task enqueued on its own, and what it is there to show."""

    role: str
    body: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Workload:
    """What the runner enqueues: ``batch`` in one request, each special task in its own."""

    batch: list[dict[str, Any]]
    special: list[SpecialTask]

    @property
    def size(self) -> int:
        """How many tasks in all."""
        return len(self.batch) + len(self.special)


def _ordinary_payload(task_type: str, number: int, rng: random.Random) -> dict[str, Any]:
    shortest, longest = DURATION_RANGES[task_type]
    payload: dict[str, Any] = {
        "duration_s": round(rng.uniform(shortest, longest), 2),
        "steps": rng.randint(2, 5),
    }
    if task_type == "resize_image":
        payload |= {"image": f"photo-{number:03d}.jpg", "width": rng.choice([160, 320, 640])}
    elif task_type == "send_email":
        template = rng.choice(["welcome", "receipt", "password-reset"])
        payload |= {"to": f"user{number}@example.com", "template": template}
    elif task_type == "build_report":
        payload |= {"report": rng.choice(["sales", "traffic", "inventory", "churn"])}
    else:
        payload |= {"video": f"clip-{number:03d}.mov", "format": rng.choice(["mp4", "webm"])}
    return payload


def build_workload(
    rng: random.Random, *, ordinary_tasks: int = DEFAULT_ORDINARY_TASKS, now: dt.datetime
) -> Workload:
    """``ordinary_tasks`` tasks spread evenly over the four types, in random order, and the
    three special ones; ``now`` (UTC) anchors the delayed task's ``run_after_utc``."""
    types = [ORDINARY_TYPES[n % len(ORDINARY_TYPES)] for n in range(ordinary_tasks)]
    rng.shuffle(types)
    batch = []
    for number, task_type in enumerate(types, start=1):
        body: dict[str, Any] = {
            "type": task_type,
            "payload": _ordinary_payload(task_type, number, rng),
        }
        if number % 9 == 0:
            body["priority"] = 10  # lower runs first: these jump the queue
        batch.append(body)
    run_after = now + dt.timedelta(seconds=DELAY_SECONDS)
    special = [
        SpecialTask(
            "retried",
            # Ahead of the batch (lower priority runs first), so that its retry and the
            # dead letter's overlap with the ordinary tasks instead of trailing them.
            {
                "type": RETRIED_TYPE,
                "payload": {"file": "backup.tar", "duration_s": 0.3},
                "priority": 50,
            },
        ),
        SpecialTask(
            "delayed",
            {
                "type": DELAYED_TYPE,
                "payload": {"duration_s": 0.2, "steps": 1},
                "run_after_utc": run_after.isoformat(timespec="milliseconds"),
                "priority": 10,
            },
        ),
        SpecialTask(
            "dead-lettered",
            {
                "type": DEAD_LETTER_TYPE,
                "payload": {"file": "customers.csv", "duration_s": 0.2, "steps": 1},
                "max_attempts": DEAD_LETTER_MAX_ATTEMPTS,
                "priority": 50,
            },
        ),
    ]
    return Workload(batch=batch, special=special)
