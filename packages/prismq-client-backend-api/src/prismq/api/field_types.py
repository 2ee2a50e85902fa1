"""The types of request fields, and the checks behind them.

Bounds are the core's own constants, so the API refuses (422, naming the field) exactly
what the core would refuse, before any database work. Beyond the core's rules, strings and
JSON values must be storable by every backend: no NUL characters (PostgreSQL refuses them
in text and ``jsonb``) and no lone surrogates, and JSON nested at most
:data:`MAX_JSON_DEPTH` levels deep. Each type also carries the JSON Schema that documents
it, written so that the OpenAPI document and the server agree on every value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StringConstraints, WithJsonSchema

from prismq.queue import InvalidTaskError
from prismq.queue.tables import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_QUEUE_LENGTH, MAX_TYPE_LENGTH
from prismq.queue.validation import check_compatibility

#: Most tasks one batch enqueue takes (the core allows more; one request should not).
MAX_API_BATCH_SIZE = 1000
#: Longest delay a task can be given, in seconds (one year).
MAX_DELAY_SECONDS = 366 * 24 * 3600
#: Deepest nesting of a payload or compatibility object.
MAX_JSON_DEPTH = 64
#: Largest task id (the id column is a signed 64-bit integer).
MAX_TASK_ID = 2**63 - 1

#: Every character ``str.strip()`` removes (``str.isspace()``), spelt out: regex engines
#: disagree on what ``\s`` covers (e.g. U+001C-U+001F), and the core strips with Python's.
WHITESPACE_CLASS = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Not blank, not padded, no NUL: what the core's name check accepts and every backend
# stores. The trailing (?!\n) stops "$" (in Python's reading) from accepting a final
# newline; the request models check patterns with Python's engine, as OpenAPI tools do.
NAME_PATTERN = rf"^[^{WHITESPACE_CLASS}\x00](?:[^\x00]*[^{WHITESPACE_CLASS}\x00])?$(?!\n)"


def check_storable_text(value: str) -> str:
    """Refuse what no backend stores faithfully: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain lone surrogates (invalid Unicode)") from None
    return value


def check_storable_json(value: Any) -> Any:
    """:func:`check_storable_text` on every key and string of a JSON value, bounded in depth.

    Iterative, so a deeply nested value cannot exhaust the interpreter's stack.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"must not be nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, str):
            check_storable_text(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                check_storable_text(str(key))
                pending.append((item, depth + 1))
        elif isinstance(node, list):
            pending.extend((item, depth + 1) for item in node)
    return value


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _json_integer(value: Any) -> Any:
    """What JSON Schema calls an integer: no booleans or strings; 3.0 is 3."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("Input should be a valid integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("Input should be a valid integer, without a fractional part")
        return int(value)
    return value


def rfc3339_text(value: Any) -> Any:
    """Only an RFC 3339 date-time string with its UTC offset (no numbers, no bare dates)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(
            "Input should be an RFC 3339 date-time with a UTC offset, e.g. 2030-01-01T12:00:00Z"
        )
    return value


JsonInteger = Annotated[int, BeforeValidator(_json_integer)]


def _core_check(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A pydantic validator running a core check, its message without the field prefix."""

    def validate(value: Any) -> Any:
        try:
            return check(value)
        except InvalidTaskError as error:
            raise ValueError(error.message) from None

    return validate


_StorableText = AfterValidator(check_storable_text)
TaskTypeName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TYPE_LENGTH, pattern=NAME_PATTERN),
    _StorableText,
]
QueueName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_QUEUE_LENGTH, pattern=NAME_PATTERN),
    _StorableText,
]
IdempotencyKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH, pattern=NAME_PATTERN),
    _StorableText,
]
#: A string without NUL, in a JSON Schema pattern ("$" before a final newline is harmless).
NO_NUL_PATTERN = r"^[^\x00]*$"
JSON_VALUE_SCHEMA_NAME = "JsonValue"
_JSON_VALUE_REF = {"$ref": f"#/components/schemas/{JSON_VALUE_SCHEMA_NAME}"}
#: The OpenAPI component describing what a payload may hold (added by the app factory).
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": (
        f"Any JSON value whose strings and keys hold no NUL (\\u0000) character, nested at"
        f" most {MAX_JSON_DEPTH} levels deep."
    ),
    "anyOf": [
        {"type": "string", "pattern": NO_NUL_PATTERN},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": _JSON_VALUE_REF},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL_PATTERN},
            "additionalProperties": _JSON_VALUE_REF,
        },
    ],
}

JsonObject = Annotated[
    dict[str, Any],
    AfterValidator(check_storable_json),
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL_PATTERN},
            "additionalProperties": _JSON_VALUE_REF,
        }
    ),
]
Compatibility = Annotated[
    dict[str, Any],
    AfterValidator(check_storable_json),
    AfterValidator(_core_check(check_compatibility)),
    # Checked by the core's rule above; documented here, as one error per field is clearer
    # than pydantic's one per member of a union.
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL_PATTERN},
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "pattern": NO_NUL_PATTERN},
                    {"type": ["number", "boolean", "null"]},
                ]
            },
        }
    ),
]
