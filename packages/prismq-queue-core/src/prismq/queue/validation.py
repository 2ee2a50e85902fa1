"""Checks on caller input, raised as typed errors before anything reaches the database."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any

from prismq.queue.errors import InvalidPayloadError, InvalidPriorityError, InvalidTaskError
from prismq.queue.tables import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PRIORITY,
    MAX_QUEUE_LENGTH,
    MAX_TYPE_LENGTH,
    MIN_PRIORITY,
)

#: Largest ``max_attempts`` accepted.
MAX_ATTEMPTS_LIMIT = 100

#: One encoder for every check: ``json.dumps`` with an option builds a new one per call.
_encode_json = json.JSONEncoder(allow_nan=False).encode


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_name(field: str, value: object, max_length: int) -> str:
    """A non-empty string of at most ``max_length`` characters, without surrounding spaces."""
    if not isinstance(value, str):
        raise InvalidTaskError(field, f"must be a string, not {type(value).__name__}")
    if not value or value.strip() != value:
        raise InvalidTaskError(field, "must be non-empty and have no leading/trailing spaces")
    if len(value) > max_length:
        raise InvalidTaskError(field, f"must be at most {max_length} characters")
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL; refuse it on every backend alike.
        raise InvalidTaskError(field, "must not contain the NUL character (\\x00)")
    return value


def check_type(value: object) -> str:
    """A valid task type."""
    return check_name("type", value, MAX_TYPE_LENGTH)


def check_queue(value: object) -> str:
    """A valid queue name."""
    return check_name("queue", value, MAX_QUEUE_LENGTH)


def check_idempotency_key(value: object) -> str | None:
    """None or a valid idempotency key."""
    if value is None:
        return None
    return check_name("idempotency_key", value, MAX_IDEMPOTENCY_KEY_LENGTH)


def check_names(field: str, value: object) -> list[str]:
    """A collection of names (queues, task types); a lone string is refused, not split."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise InvalidTaskError(field, f"must be a list of names, not {type(value).__name__}")
    names = list(value)
    if not all(isinstance(name, str) for name in names):
        raise InvalidTaskError(field, "every name must be a string")
    if any("\x00" in name for name in names):
        raise InvalidTaskError(field, "names must not contain the NUL character (\\x00)")
    return names


def check_priority(value: object) -> int:
    """An integer in ``[MIN_PRIORITY, MAX_PRIORITY]``; lower runs first."""
    if not _is_int(value) or not MIN_PRIORITY <= value <= MAX_PRIORITY:  # type: ignore[operator]
        raise InvalidPriorityError(
            "priority", f"must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY}, got {value!r}"
        )
    return value  # type: ignore[return-value]


def check_max_attempts(value: object) -> int:
    """An integer in ``[1, MAX_ATTEMPTS_LIMIT]``."""
    if not _is_int(value) or not 1 <= value <= MAX_ATTEMPTS_LIMIT:  # type: ignore[operator]
        raise InvalidTaskError(
            "max_attempts", f"must be an integer from 1 to {MAX_ATTEMPTS_LIMIT}, got {value!r}"
        )
    return value  # type: ignore[return-value]


def check_seconds(field: str, value: object, *, minimum: float = 0.0) -> float:
    """A finite number of seconds, at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTaskError(field, f"must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < minimum:
        raise InvalidTaskError(field, f"must be a finite number >= {minimum}, got {value!r}")
    return seconds


def check_json_object(field: str, value: object) -> dict[str, Any]:
    """A mapping with string keys that serialises to JSON; returned as a plain dict."""
    if value is None:
        return {}
    if type(value) is dict and not value:
        return {}  # the common case, and nothing in it to check
    if not isinstance(value, Mapping):
        raise InvalidPayloadError(field, f"must be a JSON object, not {type(value).__name__}")
    check_json_value(field, value)
    return dict(value)


def check_json_value(field: str, value: object) -> Any:
    """Any value that serialises to JSON without loss (no NaN, no non-string keys)."""
    json_text(field, value)
    return value


def json_text(field: str, value: object) -> str:
    """``value`` encoded as JSON text, once it passed the checks of :func:`check_json_value`.

    For callers that send the text on: the check and the encoding are one encoding pass.
    """
    if value is None:
        return "null"  # what a no-op handler returns: nothing to encode or check
    try:
        text = _encode_json(value)
    except (TypeError, ValueError) as error:
        raise InvalidPayloadError(field, f"is not JSON-serialisable: {error}") from None
    # dict first: for a dict it answers before the Mapping ABC is asked (a slow check).
    if isinstance(value, (dict, Mapping)) and not all(isinstance(k, str) for k in value):
        raise InvalidPayloadError(field, "object keys must be strings")
    # The encoder escapes NUL as \u0000 (ensure_ascii), so text without that sequence
    # holds no NUL; with it (or a string that spells it out), walk the value to be sure.
    if "\\u0000" in text and _holds_nul(value):
        # PostgreSQL's jsonb cannot hold \u0000; refuse it on every backend alike.
        raise InvalidPayloadError(field, "must not contain the NUL character (\\u0000)")
    return text


def _holds_nul(value: object) -> bool:
    """True if a string (or object key) anywhere inside ``value`` contains NUL."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return False


def printable_text(text: str) -> str:
    """``text`` with NUL replaced by U+FFFD, for free text (error messages, log lines) that
    must be stored rather than refused."""
    return text.replace("\x00", "\ufffd")


_SCALAR_TYPES = (str, int, float, bool, type(None))


def check_compatibility(value: object) -> dict[str, Any]:
    """A task's requirements: a JSON object of scalar values (no nested objects or arrays).

    Scalars compare the same way on every backend (numbers by value, so 1 matches 1.0);
    nested values would compare by structure on PostgreSQL but by text on SQLite.
    """
    requirements = check_json_object("compatibility", value)
    for key, requirement in requirements.items():
        if not isinstance(requirement, _SCALAR_TYPES):
            raise InvalidPayloadError(
                "compatibility",
                f"value of {key!r} must be a string, number, boolean or null,"
                f" not {type(requirement).__name__}",
            )
    return requirements
