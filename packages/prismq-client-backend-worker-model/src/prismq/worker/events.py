"""The worker's log: one line per event, as ``key=value`` pairs.

``event=claimed task_id=12 type=resize attempt=1``, ``event=done task_id=12 ms=35``, ...
Values with spaces, quotes or line breaks are quoted and escaped, so every event stays on
one line that a log shipper can split without guessing. Formatting is skipped entirely
when the level is disabled: the hot path pays one ``isEnabledFor`` check per event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prismq.queue import ClaimedTask

logger = logging.getLogger("prismq.worker")

#: Longest value written into a log line; longer ones (tracebacks) are cut.
MAX_VALUE_LENGTH = 500


def format_value(value: object) -> str:
    """``value`` as it appears after ``key=``: bare when safe, else double-quoted."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_VALUE_LENGTH:
        text = text[:MAX_VALUE_LENGTH] + "..."
    if text and not any(char in text for char in ' "=\\\n\r\t'):
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def format_event(event: str, fields: dict[str, Any]) -> str:
    """``event=NAME key=value ...`` in the order the fields were given."""
    parts = [f"event={event}"]
    parts.extend(f"{key}={format_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def log_event(level: int, event: str, **fields: Any) -> None:
    """Log one event line at ``level`` (nothing is formatted when the level is off)."""
    if logger.isEnabledFor(level):
        logger.log(level, format_event(event, fields))


def log_claimed(tasks: Iterable[ClaimedTask]) -> None:
    """One ``claimed`` event per task, the level checked once for the whole batch."""
    if logger.isEnabledFor(logging.INFO):
        for task in tasks:
            log_event(
                logging.INFO, "claimed", task_id=task.id, type=task.type, attempt=task.attempt
            )


def describe_error(error: BaseException) -> str:
    """``"ValueError: boom"``: the error's type and its message's first line."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
